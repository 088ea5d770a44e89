"""The session report, ``DIR/report.json`` (SPEC §5.2): each experiment's runs, comparability and decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from pytest_llmgate.model.decision import ComparabilityIssue, Decision, Verdict
from pytest_llmgate.model.evidence import Comparison, Evidence
from pytest_llmgate.model.vocab import REPORT_SCHEMA, DecisionStatus, Role, RunStatus
from pytest_llmgate.records.diff import StoredComparison
from pytest_llmgate.records.run import Metrics, RunRecord


class RunSummary(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One run of the session as the report lists it; the full record is ``DIR/runs/<run_id>.json``.

    ``evidence`` and ``comparisons`` are the record's (omitted when it has none; docs/statistics.md);
    ``over_budget``: each budget limit the run broke, with its figure (omitted when none).;
    ``comparison``: against the stored run (``--llmgate-compare-to``), counts only; omitted when none was asked for."""

    run_id: str
    template_id: str
    role: Role
    status: RunStatus
    complete: bool
    metrics: Metrics
    # -- evidence and paired comparison (issue 14) --
    evidence: Evidence | None = None
    comparisons: tuple[Comparison, ...] = ()
    # -- costs (additive) --
    over_budget: tuple[str, ...] = ()
    # -- against a stored run (issue 16) --
    comparison: StoredComparison | None = None


class EligibleRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A candidate run that is ELIGIBLE_FOR_CANARY_REVIEW (several of them: a tie for a reviewer)."""

    run_id: str
    template_id: str


class NotRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A selected template none of whose cases ran in the session (deselected, or never reached): no record."""

    template_id: str
    role: Role


class ExperimentReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One experiment's part of the report: its fingerprints (short form), runs and decision; ``not_run`` lists
    the selected templates that got no run record because none of their cases ran (omitted when empty)."""

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
    not_run: tuple[NotRun, ...] = ()


class SessionReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                    tag_field="schema", tag=REPORT_SCHEMA):
    """The session report; ``notes`` holds what an exporter could not do (omitted when there is nothing).

    ``in_progress`` is true only in the marker a session writes before its first run: it holds no experiment and
    no verdict, and stays so when the session is interrupted before it writes its own report."""

    generated_at: str
    experiments: tuple[ExperimentReport, ...]
    notes: tuple[str, ...] = ()
    in_progress: bool = False
    signature: str | None = None  # trust (issue 18): HMAC-SHA-256 when LLMGATE_SIGNING_KEY is set


def experiment_report(
    name: str, fingerprints: Mapping[str, str], frozen: bool, records: Sequence[RunRecord], verdict: Verdict,
    not_run: Sequence[tuple[str, Role]] = (),
) -> ExperimentReport:
    """The report's entry for one experiment's runs and the verdict on them."""
    return ExperimentReport(
        experiment=name,
        frozen=frozen,
        fingerprints=dict(fingerprints),
        runs=tuple(
            RunSummary(run_id=record.run_id, template_id=record.template_id, role=record.role, status=record.status,
                       complete=record.complete, metrics=record.metrics, evidence=record.evidence,
                       comparisons=record.comparisons, over_budget=record.over_budget,
                       comparison=record.comparison.summary() if record.comparison is not None else None)
            for record in records
        ),
        comparable=verdict.comparable,
        comparability_issues=verdict.issues,
        decision_status=verdict.status,
        decision_reason=verdict.reason,
        eligible_runs=tuple(EligibleRun(run_id=run.run_id, template_id=run.template_id) for run in verdict.eligible),
        decision=verdict.decision,
        not_run=tuple(NotRun(template_id=template_id, role=role) for template_id, role in not_run),
    )
