"""What the gate prints: the fingerprints in the header, and a table, fingerprints and decision per experiment."""

from __future__ import annotations

from ._decision import decision_text
from ._diff import comparison_lines
from ._errors import display_path
from ._session import ExperimentOutcome, SessionResult
from ._table import format_table, rate

COLUMNS = ("template", "role", "unsafe", "unnecessary", "exact", "status")
#: Shown after ``unnecessary`` when a run is incomplete, so the table says why at a glance.
INCOMPLETE_COLUMNS = ("errors", "not run")


def experiment_lines(outcome: ExperimentOutcome) -> list[str]:
    """The experiment's table (SPEC §5.4; with errors and not-run counts when a run is incomplete), the
    templates that did not run, the fingerprints, the lock state and the decision."""
    experiment = outcome.experiment
    why = any(not record.complete for record in outcome.records)
    rows = [(*COLUMNS[:4], *(INCOMPLETE_COLUMNS if why else ()), *COLUMNS[4:])] + [
        (
            record.template_id,
            record.role.value,
            str(record.metrics.unsafe_claim_served),
            str(record.metrics.unnecessary_abstention),
            *((str(record.metrics.error_count), str(record.metrics.not_run_count)) if why else ()),
            rate(record.metrics.exact_route_rate),
            record.status.value,
        )
        for record in outcome.records
    ]
    lines = [f"{experiment.name} ({display_path(experiment.directory)})"]
    lines.extend(format_table(rows, right=set(range(2, len(rows[0]) - 1)), indent="  "))
    for plan in outcome.not_run:
        lines.append(f"  {plan.template_id} ({plan.role.value}): not run - every case deselected or never reached; "
                     "no run record")
    prints = "  ".join(f"{name} {value}" for name, value in experiment.short_fingerprints.items())
    lines.append(f"  fingerprints: {prints}")
    lines.append(
        "  frozen: yes (llmgate.lock matches)" if outcome.frozen
        else "  frozen: NO - no llmgate.lock; pytest --llmgate-freeze freezes these suites"
    )
    lines.append(f"  decision: {decision_text(outcome.verdict)}")
    compared = [record for record in outcome.records if record.comparison is not None]
    if compared:
        lines.append("  compared with stored runs (--llmgate-compare-to):")
        for record in compared:
            assert record.comparison is not None
            lines.append(f"    {record.template_id} ({record.role.value}):")
            lines.extend(comparison_lines(record.comparison, indent="      "))
    return lines


def summary_lines(result: SessionResult) -> list[str]:
    lines: list[str] = []
    for outcome in result.outcomes:
        lines.extend(experiment_lines(outcome))
    if result.run_paths:
        runs_dir = result.run_paths[0].parent
        lines.append(f"records: {len(result.run_paths)} run(s) in {display_path(runs_dir)}")
    if result.report_path is not None:
        lines.append(f"report: {display_path(result.report_path)}")
    for error in result.errors:
        lines.append(f"ERROR llmgate: {error.message()}")
    return lines
