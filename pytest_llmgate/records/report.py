"""The session report, ``DIR/report.json`` (SPEC §5.2): each experiment's runs, comparability and decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from pytest_llmgate.model.decision import ComparabilityIssue, Decision, Verdict
from pytest_llmgate.model.vocab import REPORT_SCHEMA, DecisionStatus, Role, RunStatus
from pytest_llmgate.records.codec import to_data
from pytest_llmgate.records.diff import StoredComparison
from pytest_llmgate.records.run import (
    Comparisons,
    Complete,
    EvidenceBlock,
    Metrics,
    OverBudget,
    RunRecord,
    RunRole,
)


class RunSummary(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One run of the session as the report lists it; the full record is ``DIR/runs/<run_id>.json``.

    Each key is the record's own; those a record can lack are omitted here too."""

    run_id: Annotated[str, Meta(description="The run's id; its record is runs/<run_id>.json.")]
    template_id: Annotated[str, Meta(description="The candidate's template id.")]
    role: RunRole
    status: Annotated[RunStatus, Meta(description="The verdict on the run, as in its record.")]
    complete: Complete
    metrics: Annotated[Metrics, Meta(description="Counts, rates and costs over every case of the run.")]
    # -- evidence and paired comparison (issue 14) --
    evidence: EvidenceBlock = None
    comparisons: Comparisons = ()
    # -- costs (additive) --
    over_budget: OverBudget = ()
    # -- against a stored run (issue 16) --
    comparison: Annotated[StoredComparison | None, Meta(
        description="This run against a stored run (--llmgate-compare-to), counts only, without the per-case "
                    "list; absent when none was asked for.")] = None


class EligibleRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A candidate run that is ELIGIBLE_FOR_CANARY_REVIEW (several of them: a tie for a reviewer)."""

    run_id: Annotated[str, Meta(description="The run's id.")]
    template_id: Annotated[str, Meta(description="The candidate's template id.")]


class NotRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A selected template none of whose cases ran in the session (deselected, or never reached): no record."""

    template_id: Annotated[str, Meta(description="The template that got no run record.")]
    role: Annotated[Role, Meta(description="Its role: candidate or baseline.")]


class ExperimentReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One experiment's part of the report: its fingerprints, runs, comparability and decision."""

    experiment: Annotated[str, Meta(description="The experiment's name, from its manifest.")]
    frozen: Annotated[bool, Meta(description="Whether an llmgate.lock froze the experiment's suites.")]
    fingerprints: Annotated[dict[str, str], Meta(
        description="The short form (16 hex) of each suite's fingerprint and of the evaluation's.")]
    runs: Annotated[tuple[RunSummary, ...], Meta(description="Each run of the experiment in this session.")]
    comparable: Annotated[bool, Meta(
        description="Whether the runs may be ranked: their compared params (policy_id, evidence_version, "
                    "evaluator_version, each <suite>_sha, evaluation_sha) are equal.")]
    comparability_issues: Annotated[tuple[ComparabilityIssue, ...], Meta(
        description="Each compared param whose value differs between the runs.")]
    decision_status: Annotated[DecisionStatus, Meta(
        description="The verdict on the runs, first match wins: RUNS_NOT_COMPARABLE, INCOMPLETE_EVALUATION, "
                    "NO_ELIGIBLE_CANDIDATE, TIE_REQUIRES_REVIEW or PROMOTE.")]
    decision_reason: Annotated[str, Meta(description="Why, in one sentence.")]
    eligible_runs: Annotated[tuple[EligibleRun, ...], Meta(
        description="The candidate runs that are ELIGIBLE_FOR_CANARY_REVIEW.")]
    decision: Annotated[Decision | None, Meta(description="The canary decision; null unless PROMOTE.")]
    not_run: Annotated[tuple[NotRun, ...], Meta(
        description="The selected templates that got no run record because none of their cases ran.")] = ()


class SessionReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                    tag_field="schema", tag=REPORT_SCHEMA):
    """The session report, ``DIR/report.json``: each experiment's runs and decision.

    A session first writes a marker in its place (``in_progress``), which stays when the session is interrupted
    before it writes its own report."""

    generated_at: Annotated[str, Meta(description="When the report was made: UTC, ISO 8601, to the second.")]
    experiments: Annotated[tuple[ExperimentReport, ...], Meta(description="Each experiment of the session.")]
    notes: Annotated[tuple[str, ...], Meta(
        description="What the session has to say beside the verdicts: what an exporter could not do, a model "
                    "with no known price, the judge's standing.")] = ()
    in_progress: Annotated[bool, Meta(
        description="True only in the marker a session writes before its first run: no experiment, no "
                    "verdict.")] = False
    # trust (issue 18)
    signature: Annotated[str | None, Meta(
        description="hmac-sha256:<64 hex>, an HMAC-SHA-256 over the report without it (keys sorted), written "
                    "when LLMGATE_SIGNING_KEY is set.")] = None


def report_data(report: SessionReport) -> dict[str, Any]:
    """The report as plain data for the hooks and exporters that may edit it: its ``notes`` a list they may add to
    (docs/tracking.md), even when empty (``to_data`` keeps a tuple a tuple, and leaves out an empty one)."""
    data: dict[str, Any] = to_data(report)
    data["notes"] = list(report.notes)
    return data


def run_summary(record: RunRecord) -> RunSummary:
    """A run as the report lists it: what its record says."""
    return RunSummary(run_id=record.run_id, template_id=record.template_id, role=record.role, status=record.status,
                      complete=record.complete, metrics=record.metrics, evidence=record.evidence,
                      comparisons=record.comparisons, over_budget=record.over_budget,
                      comparison=record.comparison.summary() if record.comparison is not None else None)


def experiment_report(
    name: str, fingerprints: Mapping[str, str], frozen: bool, records: Sequence[RunRecord], verdict: Verdict,
    not_run: Sequence[tuple[str, Role]] = (),
) -> ExperimentReport:
    """The report's entry for one experiment's runs and the verdict on them."""
    return ExperimentReport(
        experiment=name,
        frozen=frozen,
        fingerprints=dict(fingerprints),
        runs=tuple(map(run_summary, records)),
        comparable=verdict.comparable,
        comparability_issues=verdict.issues,
        decision_status=verdict.status,
        decision_reason=verdict.reason,
        eligible_runs=tuple(EligibleRun(run_id=run.run_id, template_id=run.template_id) for run in verdict.eligible),
        decision=verdict.decision,
        not_run=tuple(NotRun(template_id=template_id, role=role) for template_id, role in not_run),
    )
