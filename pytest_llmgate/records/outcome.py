"""What a gate session finished with, as the reports, exporters and merge read it (never the session itself)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from pytest_llmgate.model.decision import Verdict
from pytest_llmgate.model.errors import (
    INCOMPLETE_EVALUATION,
    INSUFFICIENT_EVIDENCE,
    REJECT_OVER_BUDGET,
    REJECT_UNNECESSARY_ABSTENTION,
    REJECT_UNSAFE_SERVE,
    LlmgateError,
    RunGateFailure,
)
from pytest_llmgate.model.vocab import Outcome, Role, RunStatus
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.report import ExperimentReport, SessionReport, experiment_report
from pytest_llmgate.records.run import RunRecord


class PlannedRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run to make in a session: a template of an experiment, in a role."""

    template_id: str
    role: Role


class ExperimentOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """An experiment's runs in one session and the verdict on them."""

    experiment: Experiment
    records: tuple[RunRecord, ...]
    verdict: Verdict
    frozen: bool
    not_run: tuple[PlannedRun, ...] = ()
    unrecorded: tuple[tuple[str, str], ...] = ()  # (template id, why) of each run whose record was not written

    def report(self) -> ExperimentReport:
        return experiment_report(self.experiment.name, self.experiment.short_fingerprints, self.frozen, self.records,
                                 self.verdict, [(plan.template_id, plan.role) for plan in self.not_run])


class SessionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a session finished with: each experiment's outcome, where it went, and any write errors."""

    outcomes: tuple[ExperimentOutcome, ...]
    report_path: Path | None
    run_paths: tuple[Path, ...]
    errors: tuple[LlmgateError, ...]
    notes: tuple[str, ...] = ()  # what the session says once (a model with no known price)

    def outcome_of(self, experiment_dir: str) -> ExperimentOutcome | None:
        return next((outcome for outcome in self.outcomes if str(outcome.experiment.directory) == experiment_dir),
                    None)

    def with_errors(self, errors: Iterable[LlmgateError]) -> SessionResult:
        return msgspec.structs.replace(self, errors=(*self.errors, *errors))

    def report(self, generated_at: str) -> SessionReport:
        return SessionReport(generated_at=generated_at, experiments=tuple(o.report() for o in self.outcomes),
                             notes=self.notes)


#: A rejecting status, the failure it gives a run item, and the outcomes that count for it.
_GUARDRAILS: dict[RunStatus, tuple[type[RunGateFailure], tuple[Outcome, ...]]] = {
    RunStatus.REJECT_UNSAFE_SERVE: (REJECT_UNSAFE_SERVE, (Outcome.UNSAFE_CLAIM_SERVED,)),
    RunStatus.REJECT_UNNECESSARY_ABSTENTION: (REJECT_UNNECESSARY_ABSTENTION, (Outcome.UNNECESSARY_ABSTENTION,)),
}


def run_gate_failure(outcome: ExperimentOutcome | None, template_id: str, case_failed: bool = True
                     ) -> RunGateFailure | None:
    """What fails a gating candidate's run-level gates in this session, or None when they hold: every selected
    case evaluated and the record written (else ``INCOMPLETE_EVALUATION``), within the budget
    (``REJECT_OVER_BUDGET``), the evidence requirement met and a judge fit to gate when the guardrails held
    (``INSUFFICIENT_EVIDENCE``).
    A broken guardrail is not a run-level gate: its case's item fails. When none of the run's case items was
    reported failed (``case_failed`` False: an xfail mark, a rerun plugin's passing attempt), the run item fails
    with the guardrail's status, so that the session never exits 0 on a rejected run."""
    if outcome is None:
        return INCOMPLETE_EVALUATION(f"{template_id}: no case was evaluated in this session")
    if any(plan.template_id == template_id for plan in outcome.not_run):
        return INCOMPLETE_EVALUATION(f"{template_id}: no case was evaluated in this session (every case item "
                                     "skipped or deselected, or the session stopped before them)")
    for unrecorded, why in outcome.unrecorded:
        if unrecorded == template_id:
            return INCOMPLETE_EVALUATION(f"{template_id}: its run record could not be written: {why}")
    record = next((r for r in outcome.records if r.template_id == template_id and r.role is Role.CANDIDATE), None)
    if record is None:
        return INCOMPLETE_EVALUATION(f"{template_id}: no run record in this session")
    if not record.complete:
        errors, unevaluated = record.metrics.error_count, record.unevaluated
        if not errors and not unevaluated:  # every case has its result, some more than one
            return INCOMPLETE_EVALUATION(
                f"{template_id}: a case was evaluated more than once in this session (collected twice: pytest-xdist's "
                "--dist each runs every item on every worker, use the default --dist load; or the experiment was "
                "reached by two paths, a symlink say): each case counts once")
        return INCOMPLETE_EVALUATION(
            f"{template_id}: {errors + unevaluated} of {len(record.cases)} case(s) not evaluated "
            f"({errors} errored, {unevaluated} not run: skipped, deselected or never reached)")
    if record.status in _GUARDRAILS and not case_failed:
        broken = [entry.case_id for entry in record.cases if entry.outcome in _GUARDRAILS[record.status][1]]
        return _GUARDRAILS[record.status][0](
            f"{template_id}: {len(broken)} case(s) broke the guardrail ({', '.join(broken[:5])}), and no case item "
            "failed for it (an xfail mark, or a rerun's passing attempt, hid it); the run stays rejected")
    if record.over_budget:
        return REJECT_OVER_BUDGET(f"{template_id}: {'; '.join(record.over_budget)}")
    if record.status is RunStatus.INSUFFICIENT_EVIDENCE:
        judge = record.evaluator
        if judge is not None and not judge.may_gate:
            return INSUFFICIENT_EVIDENCE(f"{template_id}: the evaluator may not gate: {judge.reason}")
        if record.evidence is not None:
            return INSUFFICIENT_EVIDENCE(f"{template_id}: {record.evidence.reason}")
    return None
