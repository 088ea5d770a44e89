"""The promotion decision: comparability audit, then at most one eligible candidate is promoted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Protocol

import msgspec
from msgspec import Meta

from pytest_llmgate.model.vocab import ApprovalStatus, DecisionStatus, Role, RunStatus

#: Params that must be equal for runs to be ranked, besides every ``<suite>_sha`` and ``evaluation_sha``.
COMPARED_PARAMS = ("policy_id", "evidence_version", "evaluator_version")
#: A python evaluator's code, recorded by its SHA-256: runs judged by different code are not comparable.
EVALUATOR_CODE = "evaluator_code_sha256"


#: An alias or an artifact's name: one line of text, not blank (``llmgate canary`` prints it as its verdict).
NAME_PATTERN = r"^(?=.*\S)[^\x00-\x1f\x7f\x85\u2028\u2029]+$(?!\n)"  # (?!\n): Python's $ passes a last \n
Name = Annotated[str, Meta(pattern=NAME_PATTERN)]


class Promotion(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where an approved candidate goes, and what to go back to (the manifest's ``promotion`` block).

    The evidence requirement (opt-in, docs/statistics.md): a run is eligible only when the one-sided upper
    confidence bound (at ``confidence``, default 0.95) of its unsafe-serve rate is at most ``max_unsafe_rate``
    and that of its unnecessary-abstention rate at most ``max_unnecessary_rate``; omitted when not set."""

    alias: Annotated[Name, Meta(description="The alias a promoted artifact gets.")]
    rollback_artifact: Annotated[Name | None, Meta(description="What a canary rolls back to; null: none named.")]
    limitation: Annotated[str, Meta(description="What the promotion does not claim.")]
    max_unsafe_rate: Annotated[float | None, Meta(description="The evidence requirement on the unsafe-serve rate.")] = None
    max_unnecessary_rate: Annotated[float | None, Meta(
        description="The evidence requirement on the unnecessary-abstention rate.")] = None
    confidence: Annotated[float | None, Meta(description="The confidence of the upper bounds.")] = None

    @property
    def requires_evidence(self) -> bool:
        return self.max_unsafe_rate is not None or self.max_unnecessary_rate is not None


class RunView(Protocol):
    """What the decision rules read of a run; a ``RunRecord`` is one."""

    @property
    def run_id(self) -> str: ...
    @property
    def template_id(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def complete(self) -> bool: ...
    @property
    def status(self) -> RunStatus: ...
    @property
    def promotion(self) -> Promotion: ...


class ComparabilityIssue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A compared field whose value differs between runs: the value per run id (``None``: the run has no such field)."""

    field: Annotated[str, Meta(
        description="The compared param: policy_id, evidence_version, evaluator_version, a <suite>_sha or "
                    "evaluation_sha.")]
    values: Annotated[dict[str, str | None], Meta(
        description="Its value per run id; null: the run has no such param.")]


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The canary decision for the one eligible candidate (SPEC §5.2); ``prompt_uri`` is where an exporter
    registered the promoted artifact, when one did; ``signature`` is written on a decision file by ``llmgate promote``
    when a signing key is set (a decision inside a report is covered by the report's signature)."""

    artifact_name: Annotated[str, Meta(description="The promoted artifact's template id.")]
    alias: Annotated[Name, Meta(description="The alias it gets.")]
    source_run_id: Annotated[str, Meta(description="The run that earned it.")]
    evaluation_sha: Annotated[str, Meta(description="The short fingerprint of the cases it was evaluated on.")]
    rollback_artifact: Annotated[Name | None, Meta(description="What a canary rolls back to; null: none named.")]
    status: Annotated[ApprovalStatus, Meta(description="What the artifact may get: canary traffic.")]
    limitation: Annotated[str, Meta(description="What the promotion does not claim.")]
    prompt_uri: Annotated[str | None, Meta(description="Where an exporter registered the artifact.")] = None
    # trust (issue 18): on a decision file, when LLMGATE_SIGNING_KEY is set
    signature: Annotated[str | None, Meta(description="HMAC-SHA-256 of the decision file, with a signing key.")] = None


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The decision status for a set of runs, why, and the decision when it is PROMOTE."""

    status: DecisionStatus
    reason: str
    issues: tuple[ComparabilityIssue, ...]
    eligible: tuple[RunView, ...]
    decision: Decision | None

    @property
    def comparable(self) -> bool:
        return not self.issues


def compared_fields(runs: Sequence[RunView]) -> list[str]:
    """The params compared: the fixed ones, each suite's ``_sha`` (sorted), ``evaluation_sha``, then a python
    evaluator's code (``evaluator_code_sha256``) when a run has it."""
    shas = sorted({key for run in runs for key in run.params if key.endswith("_sha") and key != "evaluation_sha"})
    code = [EVALUATOR_CODE] if any(EVALUATOR_CODE in run.params for run in runs) else []
    return [*COMPARED_PARAMS, *shas, "evaluation_sha", *code]


def comparability_issues(runs: Sequence[RunView]) -> tuple[ComparabilityIssue, ...]:
    """Every compared field whose value is not the same in all runs."""
    issues = []
    for field in compared_fields(runs):
        values = {run.run_id: run.params.get(field) for run in runs}
        if len(set(values.values())) > 1:
            issues.append(ComparabilityIssue(field=field, values=values))
    return tuple(issues)


def decide(runs: Sequence[RunView], unrecorded: Sequence[str] = (), not_run: Sequence[str] = ()) -> Verdict:
    """Apply the promotion rules: comparable, complete, exactly one eligible candidate; never break a tie.

    ``unrecorded`` names the runs of the session whose record could not be written, ``not_run`` the selected
    candidates none of whose cases ran: without their evidence nothing is promoted (a missing run could
    otherwise turn a tie into a promotion)."""
    issues = comparability_issues(runs)
    eligible = tuple(
        run for run in runs if run.role is Role.CANDIDATE and run.status is RunStatus.ELIGIBLE_FOR_CANARY_REVIEW
    )

    def verdict(status: DecisionStatus, reason: str, decision: Decision | None = None) -> Verdict:
        return Verdict(status=status, reason=reason, issues=issues, eligible=eligible, decision=decision)

    if issues:
        fields = ", ".join(issue.field for issue in issues)
        return verdict(DecisionStatus.RUNS_NOT_COMPARABLE, f"runs differ in {fields}; their metrics are not ranked")
    incomplete = [run.template_id for run in runs if not run.complete]
    for names, reason in (
        (unrecorded, "no run record could be written for {}; nothing is promoted without its record"),
        (not_run, "not run in this session: {} (every case deselected or skipped, or never reached after a stop)"),
        (incomplete, "incomplete runs cannot be promoted: {} (a case was deselected, not run, or errored)"),
    ):
        if names:
            return verdict(DecisionStatus.INCOMPLETE_EVALUATION, reason.format(", ".join(names)))
    if not eligible:
        short = [run.template_id for run in runs
                 if run.role is Role.CANDIDATE and run.status is RunStatus.INSUFFICIENT_EVIDENCE]
        more = f" ({RunStatus.INSUFFICIENT_EVIDENCE.value}: {', '.join(short)})" if short else ""
        return verdict(DecisionStatus.NO_ELIGIBLE_CANDIDATE, f"no candidate run is ELIGIBLE_FOR_CANARY_REVIEW{more}")
    if len(eligible) > 1:
        names = ", ".join(f"{run.template_id} (run {run.run_id})" for run in eligible)
        return verdict(
            DecisionStatus.TIE_REQUIRES_REVIEW,
            f"{len(eligible)} candidates are eligible: {names}; a reviewer must choose, the tie is not broken",
        )
    (winner,) = eligible
    decision = Decision(
        artifact_name=winner.template_id,
        alias=winner.promotion.alias,
        source_run_id=winner.run_id,
        evaluation_sha=winner.params["evaluation_sha"],
        rollback_artifact=winner.promotion.rollback_artifact,
        status=ApprovalStatus.APPROVED_FOR_CANARY,
        limitation=winner.promotion.limitation,
    )
    return verdict(DecisionStatus.PROMOTE, f"{winner.template_id} is the only eligible candidate", decision)


def decision_text(verdict: Verdict) -> str:
    """The decision in one line: what is promoted where, or why nothing is."""
    decision = verdict.decision
    if decision is None:
        return f"{verdict.status.value}: {verdict.reason}"
    return (
        f"{verdict.status.value} {decision.artifact_name} -> {decision.alias} "
        f"(source run {decision.source_run_id}; rollback {decision.rollback_artifact or 'none'}; {decision.limitation})"
    )
