"""The Markdown summary of a session: for a CI job summary (``$GITHUB_STEP_SUMMARY``) or any file."""

from __future__ import annotations

from ._decision import decision_text
from ._session import SessionResult
from ._terminal import COST_COLUMNS, cost_cells, shows_costs
from ._table import rate
from ._terminal import run_notes
from ._vocab import Outcome

FAILING = (Outcome.UNSAFE_CLAIM_SERVED, Outcome.UNNECESSARY_ABSTENTION, Outcome.ERROR, Outcome.NOT_RUN)


def markdown_summary(result: SessionResult) -> str:
    """Per experiment: the table, fingerprints, decision, and the failing cases with their guardrail."""
    lines = ["## pytest-llmgate", ""]
    for outcome in result.outcomes:
        experiment = outcome.experiment
        costs = shows_costs(outcome)
        lines += [f"### {experiment.name}", "",
                  "| template | role | unsafe | unnecessary | exact | "
                  + "".join(f"{column} | " for column in (COST_COLUMNS if costs else ())) + "status |",
                  "|---|---|---:|---:|---:|" + ("---:|" * len(COST_COLUMNS) if costs else "") + "---|"]
        for record in outcome.records:
            metrics = record.metrics
            cells = "".join(f"{cell} | " for cell in (cost_cells(metrics.cost) if costs else ()))
            lines.append(f"| `{record.template_id}` | {record.role.value} | {metrics.unsafe_claim_served} | "
                         f"{metrics.unnecessary_abstention} | {rate(metrics.exact_route_rate)} | {cells}"
                         f"{record.status.value} |")
        for record in outcome.records:
            if record.over_budget:
                lines += ["", f"**Over budget:** `{record.template_id}`: {'; '.join(record.over_budget)}"]
        notes = [note for record in outcome.records for note in run_notes(record)]
        if notes:
            lines += [""] + [f"- {note}" for note in notes]
        prints = ", ".join(f"{name} `{value}`" for name, value in experiment.short_fingerprints.items())
        lines += ["", f"**Fingerprints:** {prints}" + ("" if outcome.frozen else " (not frozen: no `llmgate.lock`)"),
                  "", f"**Decision:** {decision_text(outcome.verdict)}", ""]
        failing = [(record, case) for record in outcome.records for case in record.cases if case.outcome in FAILING]
        if failing:
            lines += ["| template | case | suite | slice | evidence | outcome |", "|---|---|---|---|---|---|"]
            for record, case in failing:
                lines.append(f"| `{record.template_id}` ({record.role.value}) | `{case.case_id}` | {case.suite} | "
                             f"{case.slice_name} | {case.evidence_state} | {case.outcome.value} |")
            lines.append("")
    for note in result.notes:
        lines.append(f"> **note:** {note.removeprefix('llmgate: ')}")
    for error in result.errors:
        lines.append(f"> **error:** {error.message()}")
    return "\n".join(lines).rstrip() + "\n"
