"""What the gate prints: the fingerprints in the header, and a table, fingerprints and decision per experiment."""

from __future__ import annotations

from pytest_llmgate.model.decision import decision_text
from pytest_llmgate.model.errors import display_path
from pytest_llmgate.model.transcript import inline
from pytest_llmgate.records.diff import comparison_lines
from pytest_llmgate.records.outcome import ExperimentOutcome, SessionResult
from pytest_llmgate.records.run import RunRecord
from pytest_llmgate.reports.table import count, format_table, money, ms, rate

COLUMNS = ("template", "role", "unsafe", "unnecessary", "exact", "status")
#: Shown after ``unnecessary`` when a run is incomplete, so the table says why at a glance.
INCOMPLETE_COLUMNS = ("errors", "not run")
#: Shown before ``status`` when a run reported tokens (an LLM candidate) or the experiment has a budget.
COST_COLUMNS = ("tokens in", "tokens out", "cost", "p50", "p95")


def _latency_shown(outcome: ExperimentOutcome, record: RunRecord) -> bool:
    """A run's latency is shown when it made calls, or when the budget limits latency (then it is gated)."""
    budget = outcome.experiment.budget
    cost = record.metrics.cost
    return (cost is not None and cost.made_calls) or (budget is not None and budget.max_latency_p95_ms is not None)


def cost_columns(outcome: ExperimentOutcome) -> tuple[str, ...]:
    """The experiment's cost columns: none unless there is a budget or an LLM candidate ran (its calls reported
    tokens, or said they had none: then the columns say so); tokens and cost, with p50 and p95 when a run's
    latency is shown (left out when no candidate made a call)."""
    if outcome.experiment.budget is None and not any(
            record.metrics.cost is not None
            and (record.metrics.cost.output_tokens is not None or record.metrics.cost.calls_without_usage > 0)
            for record in outcome.records):
        return ()
    return COST_COLUMNS if any(_latency_shown(outcome, record) for record in outcome.records) else COST_COLUMNS[:3]


def cost_cells(outcome: ExperimentOutcome, record: RunRecord) -> tuple[str, ...]:
    """A run's cells under ``cost_columns``: tokens in and out, cost (``?``: unknown price; ``-``: no tokens),
    latency p50/p95 (``-`` for a run that made no call)."""
    columns = cost_columns(outcome)
    cost = record.metrics.cost
    if cost is None:
        return ("-",) * len(columns)
    cells = (
        count(cost.input_tokens), count(cost.output_tokens), money(cost.cost_usd, cost),
        *((ms(cost.latency_p50_ms), ms(cost.latency_p95_ms)) if _latency_shown(outcome, record) else ("-", "-")),
    )
    return cells[:len(columns)]


def experiment_lines(outcome: ExperimentOutcome) -> list[str]:
    """The experiment's table (SPEC §5.4; with errors and not-run counts when a run is incomplete), the
    templates that did not run, the fingerprints, the lock state and the decision."""
    experiment = outcome.experiment
    why = any(not record.complete for record in outcome.records)
    rows = [(*COLUMNS[:4], *(INCOMPLETE_COLUMNS if why else ()), COLUMNS[4], *cost_columns(outcome),
             COLUMNS[5])] + [
        (
            record.template_id,
            record.role.value,
            str(record.metrics.unsafe_claim_served),
            str(record.metrics.unnecessary_abstention),
            *((str(record.metrics.error_count), str(record.unevaluated)) if why else ()),
            rate(record.metrics.exact_route_rate),
            *cost_cells(outcome, record),
            record.status.value,
        )
        for record in outcome.records
    ]
    lines = [f"{experiment.name} ({display_path(experiment.directory)})"]
    lines.extend(format_table(rows, right=set(range(2, len(rows[0]) - 1)), indent="  "))
    lines.extend(f"  {record.template_id}: over budget: {'; '.join(record.over_budget)}"
                 for record in outcome.records if record.over_budget)
    lines.extend(f"  {note}" for record in outcome.records for note in run_notes(record))
    for plan in outcome.not_run:
        lines.append(f"  {plan.template_id} ({plan.role.value}): not run - every case deselected, skipped or never reached; "
                     "no run record")
    prints = "  ".join(f"{name} {value}" for name, value in experiment.short_fingerprints.items())
    lines.append(f"  fingerprints: {prints}")
    lines.append(
        "  frozen: yes (llmgate.lock matches)" if outcome.frozen
        else "  frozen: NO - no llmgate.lock; pytest --llmgate-freeze freezes these suites"
    )
    lines.append(f"  decision: {decision_text(outcome.verdict)}")
    compared = [(record, record.comparison) for record in outcome.records if record.comparison is not None]
    if compared:
        lines.append("  compared with stored runs (--llmgate-compare-to):")
        for record, comparison in compared:
            lines.append(f"    {record.template_id} ({record.role.value}):")
            lines.extend(comparison_lines(comparison, indent="      "))
    return lines


#: How many flaky cases a summary names per run (the least agreeing first).
WORST_FLAKY = 3


def run_notes(record: RunRecord) -> list[str]:
    """What a run's counts support beyond the table (docs/statistics.md): its evidence against the manifest's
    requirement, its flaky cases (how many; the worst by agreement), and its comparison with each baseline."""
    notes = []
    if record.evidence is not None:
        notes.append(f"evidence: {record.template_id}: {record.status.value}: {record.evidence.reason}")
    flaky = sorted((case for case in record.cases if case.flaky), key=lambda case: (case.agreement or 0, case.case_id))
    if flaky:
        worst = ", ".join(
            f"{case.case_id} ({case.passed_trials} of {len(case.trial_routes)} passed, "
            f"agreement {rate(case.agreement or 0)})" for case in flaky[:WORST_FLAKY]
        )
        notes.append(f"flaky: {record.template_id}: {len(flaky)} case(s); worst: {worst}")
    notes.extend(f"{record.template_id} {comparison.text()}" for comparison in record.comparisons)
    limited = record.metrics.cost.rate_limited if record.metrics.cost is not None else 0
    if limited:
        notes.append(f"rate limits: {record.template_id}: {limited} HTTP 429 response(s) absorbed by retries "
                     "(the calls then answered)")
    return notes


def summary_lines(result: SessionResult) -> list[str]:
    lines = [line for outcome in result.outcomes for line in experiment_lines(outcome)]
    if result.run_paths:
        runs_dir = result.run_paths[0].parent
        lines.append(f"records: {len(result.run_paths)} run(s) in {display_path(runs_dir)}")
    if result.report_path is not None:
        lines.append(f"report: {display_path(result.report_path)}")
    lines.extend(result.notes)
    lines.extend(f"ERROR llmgate: {error.message()}" for error in result.errors)
    return [inline(line) for line in lines]
