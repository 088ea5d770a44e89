"""What a gate session finished with, as the reports, exporters and merge read it (never the session itself)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pytest_llmgate.model.decision import Verdict
from pytest_llmgate.model.errors import LlmgateError
from pytest_llmgate.model.vocab import Role, RunStatus
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.report import ExperimentReport, SessionReport, experiment_report
from pytest_llmgate.records.run import RunRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedRun:
    """One run to make in a session: a template of an experiment, in a role."""

    template_id: str
    role: Role



@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentOutcome:
    """An experiment's runs in one session and the verdict on them."""

    experiment: Experiment
    records: tuple[RunRecord, ...]
    verdict: Verdict
    frozen: bool
    not_run: tuple[PlannedRun, ...] = ()

    def report(self) -> ExperimentReport:
        return experiment_report(self.experiment.name, self.experiment.short_fingerprints, self.frozen, self.records,
                                 self.verdict, [(plan.template_id, plan.role) for plan in self.not_run])


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionResult:
    """What a session finished with: each experiment's outcome, where it went, and any write errors."""

    outcomes: tuple[ExperimentOutcome, ...]
    report_path: Path | None
    run_paths: tuple[Path, ...]
    errors: tuple[LlmgateError, ...]
    notes: tuple[str, ...] = ()  # what the session says once (a model with no known price)

    @property
    def over_budget(self) -> tuple[RunRecord, ...]:
        """Candidate runs over their experiment's budget: like a broken guardrail, they fail the session."""
        return tuple(record for outcome in self.outcomes for record in outcome.records
                     if record.role is Role.CANDIDATE and record.status is RunStatus.REJECT_OVER_BUDGET)

    def with_errors(self, errors: Iterable[LlmgateError]) -> SessionResult:
        return dataclasses.replace(self, errors=(*self.errors, *errors))

    def report(self, generated_at: str) -> SessionReport:
        return SessionReport(generated_at=generated_at, experiments=tuple(o.report() for o in self.outcomes))
