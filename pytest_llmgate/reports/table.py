"""Plain-text tables and the cells they share with the HTML pages: the terminal summary, the ``llmgate`` command,
the reports."""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence

from pytest_llmgate.model.costs import CostMetrics, usd


def format_table(rows: Sequence[Sequence[str]], right: Collection[int] = (), indent: str = "") -> list[str]:
    """Columns padded to their widest cell; the columns in ``right`` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def rate(value: float) -> str:
    """A rate as a percentage, without a decimal when it is whole."""
    percent = value * 100
    return f"{percent:.0f}%" if percent == int(percent) else f"{percent:.1f}%"


def ms(value: float | None, space: str = "") -> str:
    """A latency in milliseconds: whole from 10 ms, else two significant digits; ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:.0f}{space}ms" if value >= 10 else f"{value:.2g}{space}ms"


def count(value: float | None) -> str:
    """A count, or a per-case figure; ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def money(value: float | None, cost: CostMetrics) -> str:
    """An amount of ``cost`` in dollars; ``?``: its model has no known price; ``-``: no tokens were reported."""
    if value is not None:
        return usd(value)
    return "?" if cost.input_tokens is not None or cost.output_tokens is not None else "-"


def escape(value: object) -> str:
    """A value as HTML text or attribute."""
    return html.escape(str(value), quote=True)
