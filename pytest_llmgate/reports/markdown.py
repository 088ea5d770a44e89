"""The Markdown summary of a session: for a CI job summary (``$GITHUB_STEP_SUMMARY``), a pull-request comment,
or any file. It stays under GitHub's comment limit however many cases there are: rows beyond a few go into a
collapsed ``<details>``, rows beyond the budget are left out and counted, never cut silently."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_llmgate.model.decision import decision_text
from pytest_llmgate.records.diff import ALL_CASES, CHANGE_ORDER, CaseDelta, StoredComparison, delta_text, headline
from pytest_llmgate.records.run import CaseEntry, RunRecord
from pytest_llmgate.records.outcome import SessionResult
from pytest_llmgate.reports.table import rate
from pytest_llmgate.reports.terminal import COST_COLUMNS, cost_cells, run_notes, shows_costs
from pytest_llmgate.model.vocab import CaseChange, Outcome

FAILING = (Outcome.UNSAFE_CLAIM_SERVED, Outcome.UNNECESSARY_ABSTENTION, Outcome.ERROR, Outcome.NOT_RUN)
#: GitHub's limit on a comment body (characters); the summary stays below it with room to spare.
COMMENT_LIMIT = 65_536
BUDGET = 60_000
#: Rows of a table shown open; the rest go into a collapsed ``<details>``.
OPEN_ROWS = 5
#: The first line of every summary: a pull-request workflow finds its own comment by it.
MARKER = "<!-- pytest-llmgate summary -->"


@dataclass
class _Rows:
    """A table whose rows share the remaining budget with every other table; ``what`` names its rows."""

    what: str
    header: list[str]
    rows: list[str]
    kept: int = 0
    overhead: int = field(init=False)

    def __post_init__(self) -> None:
        # header twice (open and collapsed parts), the <details> wrapper and the "left out" line
        self.overhead = 2 * sum(len(line) + 1 for line in self.header) + 300


def markdown_summary(result: SessionResult, budget: int = BUDGET) -> str:
    """Per experiment: the table, fingerprints, decision, the changes against stored runs (broken first) and the
    failing cases with their guardrail; within ``budget`` characters."""
    blocks: list[str | _Rows] = [MARKER, "## pytest-llmgate", ""]
    for outcome in result.outcomes:
        experiment = outcome.experiment
        compared = any(record.comparison is not None for record in outcome.records)
        costs = shows_costs(outcome)
        blocks += [f"### {_cell(experiment.name)}", "",
                   "| template | role | unsafe | unnecessary | exact | "
                   + "".join(f"{column} | " for column in (COST_COLUMNS if costs else ())) + "status |"
                   + (" vs stored run |" if compared else ""),
                   "|---|---|---:|---:|---:|" + ("---:|" * len(COST_COLUMNS) if costs else "") + "---|"
                   + ("---|" if compared else "")]
        for record in outcome.records:
            metrics = record.metrics
            cells = "".join(f"{cell} | " for cell in (cost_cells(metrics.cost) if costs else ()))
            vs = f" {_short(record.comparison)} |" if compared else ""
            blocks.append(f"| `{record.template_id}` | {record.role.value} | {metrics.unsafe_claim_served} | "
                          f"{metrics.unnecessary_abstention} | {rate(metrics.exact_route_rate)} | {cells}"
                          f"{record.status.value} |" + vs)
        for record in outcome.records:
            if record.over_budget:
                blocks += ["", f"**Over budget:** `{record.template_id}`: {_text('; '.join(record.over_budget))}"]
        notes = [note for record in outcome.records for note in run_notes(record)]
        if notes:
            blocks += [""] + [f"- {_text(note)}" for note in notes]
        prints = ", ".join(f"{name} `{value}`" for name, value in experiment.short_fingerprints.items())
        blocks += ["", f"**Fingerprints:** {prints}" + ("" if outcome.frozen else " (not frozen: no `llmgate.lock`)"),
                   "", f"**Decision:** {_text(decision_text(outcome.verdict))}", ""]
        if compared:
            blocks += ["#### Changes against the stored runs", ""]
            changes: list[tuple[RunRecord, CaseDelta]] = []
            for record in outcome.records:
                if record.comparison is None:
                    continue
                blocks.append(f"- `{record.template_id}` ({record.role.value}): {_text(headline(record.comparison))}"
                              + (f"; {delta_text(record.comparison)}" if record.comparison.comparable else ""))
                changes += [(record, delta) for delta in record.comparison.cases]
            blocks.append("")
            if changes:
                changes.sort(key=lambda pair: CHANGE_ORDER.index(pair[1].change))  # broken first, stable within
                blocks.append(_Rows("changed cases", ["| template | case | suite | change | before | after |",
                                                      "|---|---|---|---|---|---|"],
                                    [_change_row(record, delta) for record, delta in changes]))
        failing = [_failing_row(record, case) for record in outcome.records for case in record.cases
                   if case.outcome in FAILING]
        if failing:
            blocks.append(_Rows("failing cases", ["| template | case | suite | slice | evidence | outcome |",
                                                  "|---|---|---|---|---|---|"], failing))
    for note in result.notes:
        blocks.append(f"> **note:** {_text(note.removeprefix('llmgate: '))}")
    for error in result.errors:
        blocks.append(f"> **error:** {_text(error.message())}")
    _share(blocks, budget)
    return "\n".join(_render(blocks)).rstrip() + "\n"


def _share(blocks: list[str | _Rows], budget: int) -> None:
    """Give each table as many rows as fit, changed cases before failing cases, in order."""
    tables = [block for block in blocks if isinstance(block, _Rows)]
    left = budget - sum(len(block) + 1 for block in blocks if isinstance(block, str))
    left -= sum(table.overhead for table in tables)
    for table in sorted(tables, key=lambda table: table.what != "changed cases"):
        for row in table.rows:
            if len(row) + 1 > left:
                break
            left -= len(row) + 1
            table.kept += 1


def _render(blocks: list[str | _Rows]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            lines.append(block)
            continue
        shown = block.rows[:min(block.kept, OPEN_ROWS)]
        hidden = block.rows[len(shown):block.kept]
        left_out = len(block.rows) - block.kept
        if shown:
            lines += [*block.header, *shown, ""]
        if hidden:
            lines += [f"<details><summary>{len(hidden)} more {block.what}</summary>", "", *block.header, *hidden, "",
                      "</details>", ""]
        if left_out:
            lines += [f"> {left_out} more {block.what} left out of this summary to stay under GitHub's "
                      f"{COMMENT_LIMIT:,}-character limit; every case is in the run records and the HTML report.", ""]
    return lines


def _short(comparison: StoredComparison | None) -> str:
    if comparison is None:
        return "-"
    if not comparison.comparable:
        return "not comparable" if comparison.comparability_issues else "no stored run"
    counts = comparison.counts
    parts = [f"{counts.get(change, 0)} {change.value}" for change in (CaseChange.BROKEN, CaseChange.FIXED)]
    delta = comparison.metric_deltas.get(ALL_CASES)
    if delta is not None and delta.exact_route_rate:
        parts.append(f"exact {delta.exact_route_rate * 100:+.1f} pt")
    return ", ".join(parts)


def _change_row(record: RunRecord, delta: CaseDelta) -> str:
    before = delta.before.value if delta.before is not None else "-"
    after = delta.after.value if delta.after is not None else "-"
    return (f"| `{record.template_id}` | `{_cell(delta.case_id)}` | {_cell(delta.suite)} | {delta.change.value} | "
            f"{before} | {after} |")


def _failing_row(record: RunRecord, case: CaseEntry) -> str:
    return (f"| `{record.template_id}` ({record.role.value}) | `{_cell(case.case_id)}` | {_cell(case.suite)} | "
            f"{_cell(case.slice_name)} | {_cell(case.evidence_state)} | {case.outcome.value} |")


def _text(text: str) -> str:
    """Text safe in a comment: no HTML tag, one line."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", " ")


def _cell(text: str) -> str:
    """Text safe in a table cell of a comment: no column break either."""
    return _text(text).replace("|", "\\|")
