"""The session report, ``DIR/report.json`` (SPEC §5.2): each experiment's runs, comparability and decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from ._decision import ComparabilityIssue, Decision, Verdict
from ._record import Metrics, RunRecord
from ._vocab import REPORT_SCHEMA, DecisionStatus, Role, RunStatus


class RunSummary(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One run of the session as the report lists it; the full record is ``DIR/runs/<run_id>.json``."""

    run_id: str
    template_id: str
    role: Role
    status: RunStatus
    complete: bool
    metrics: Metrics


class EligibleRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A candidate run that is ELIGIBLE_FOR_CANARY_REVIEW (several of them: a tie for a reviewer)."""

    run_id: str
    template_id: str


class ExperimentReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One experiment's part of the report: its fingerprints (short form), runs and decision."""

    experiment: str
    frozen: bool
    fingerprints: dict[str, str]
    runs: tuple[RunSummary, ...]
    comparable: bool
    comparability_issues: tuple[ComparabilityIssue, ...]
    decision_status: DecisionStatus
    decision_reason: str
    eligible_runs: tuple[EligibleRun, ...]
    decision: Decision | None


class SessionReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                    tag_field="schema", tag=REPORT_SCHEMA):
    """The session report; ``notes`` holds what an exporter could not do (omitted when there is nothing)."""

    generated_at: str
    experiments: tuple[ExperimentReport, ...]
    notes: tuple[str, ...] = ()


def experiment_report(
    name: str, fingerprints: Mapping[str, str], frozen: bool, records: Sequence[RunRecord], verdict: Verdict
) -> ExperimentReport:
    """The report's entry for one experiment's runs and the verdict on them."""
    return ExperimentReport(
        experiment=name,
        frozen=frozen,
        fingerprints=dict(fingerprints),
        runs=tuple(
            RunSummary(run_id=record.run_id, template_id=record.template_id, role=record.role, status=record.status,
                       complete=record.complete, metrics=record.metrics)
            for record in records
        ),
        comparable=verdict.comparable,
        comparability_issues=verdict.issues,
        decision_status=verdict.status,
        decision_reason=verdict.reason,
        eligible_runs=tuple(EligibleRun(run_id=run.run_id, template_id=run.template_id) for run in verdict.eligible),
        decision=verdict.decision,
    )
