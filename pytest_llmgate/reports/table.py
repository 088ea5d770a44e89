"""Plain-text tables for the terminal summary and the ``llmgate`` command."""

from __future__ import annotations

from collections.abc import Collection, Sequence


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


def ms(value: float) -> str:
    """A latency in milliseconds: whole from 10 ms, else two significant digits."""
    return f"{value:.0f}ms" if value >= 10 else f"{value:.2g}ms"
