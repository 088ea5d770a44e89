"""What the gate prints: the fingerprints in the header, and a table, fingerprints and decision per experiment."""

from __future__ import annotations

from ._errors import display_path
from ._session import ExperimentOutcome, SessionResult

COLUMNS = ("template", "role", "unsafe", "unnecessary", "exact", "status")


def rate(value: float) -> str:
    percent = value * 100
    return f"{percent:.0f}%" if percent == int(percent) else f"{percent:.1f}%"


def experiment_lines(outcome: ExperimentOutcome) -> list[str]:
    experiment = outcome.experiment
    rows = [COLUMNS] + [
        (
            record.template_id,
            record.role.value,
            str(record.metrics.unsafe_claim_served),
            str(record.metrics.unnecessary_abstention),
            rate(record.metrics.exact_route_rate),
            record.status.value,
        )
        for record in outcome.records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {2, 3, 4}
    lines = [f"{experiment.name} ({display_path(experiment.directory)})"]
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
    prints = "  ".join(f"{name} {value}" for name, value in experiment.short_fingerprints.items())
    lines.append(f"  fingerprints: {prints}")
    verdict = outcome.verdict
    if verdict.decision is not None:
        decision = verdict.decision
        lines.append(
            f"  decision: {verdict.status.value} {decision.artifact_name} -> {decision.alias} "
            f"(source run {decision.source_run_id}; rollback {decision.rollback_artifact or 'none'}; "
            f"{decision.limitation})"
        )
    else:
        lines.append(f"  decision: {verdict.status.value}: {verdict.reason}")
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
