"""Run records: the metrics, status and provenance of one candidate on one experiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ._diff import Comparison
from ._evaluate import CaseResult
from ._experiment import Experiment, Promotion
from ._candidate import Candidate
from ._fingerprint import short
from ._vocab import REDACTED_EVAL_SCHEMA, RUN_SCHEMA, Outcome, Role, Route, RunStatus


class Metrics(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Counts over a set of cases; ``exact_route_rate`` is over every case of the set, run or not."""

    case_count: int
    unsafe_claim_served: int
    unnecessary_abstention: int
    exact_route_rate: float
    error_count: int
    not_run_count: int

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Metrics:
        count = len(outcomes)
        tally = {outcome: 0 for outcome in Outcome}
        for outcome in outcomes:
            tally[outcome] += 1
        return cls(
            case_count=count,
            unsafe_claim_served=tally[Outcome.UNSAFE_CLAIM_SERVED],
            unnecessary_abstention=tally[Outcome.UNNECESSARY_ABSTENTION],
            exact_route_rate=round(tally[Outcome.PASS] / count, 6) if count else 0.0,
            error_count=tally[Outcome.ERROR],
            not_run_count=tally[Outcome.NOT_RUN],
        )


class CaseEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One case's line in a record: labels, prediction and outcome; its input only as a hash.

    With several trials: every trial's route, the share of the most common route (``agreement``) and the
    share of trials that served where the label says ABSTAIN (``unsafe_trial_rate``)."""

    suite: str
    case_id: str
    slice_name: str
    evidence_state: str
    expected_route: Route
    predicted_route: Route | None
    outcome: Outcome
    input_sha256: str | None = None
    error: str | None = None
    trial_routes: tuple[Route, ...] = ()
    agreement: float | None = None
    unsafe_trial_rate: float | None = None


class Artifact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A file the run depends on or produced: its path (relative to the experiment or the records folder) and SHA-256."""

    path: str
    sha256: str


class RunRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True,
                tag_field="schema", tag=RUN_SCHEMA):
    """Everything needed to audit one run without rerunning it (SPEC §5.1): ``DIR/runs/<run_id>.json``.

    ``comparison`` is this run against a stored run (``--llmgate-compare-to``); omitted when none was asked for."""

    run_id: str
    experiment: str
    role: Role
    started_at: str
    finished_at: str
    params: dict[str, str]
    metrics: Metrics
    suite_metrics: dict[str, Metrics]
    tags: dict[str, str]
    artifacts: tuple[Artifact, ...]
    fingerprints: dict[str, str]
    cases: tuple[CaseEntry, ...]
    complete: bool
    status: RunStatus
    promotion: Promotion
    frozen: bool
    comparison: Comparison | None = None

    @property
    def template_id(self) -> str:
        return self.params["template_id"]

    @property
    def evaluation_sha(self) -> str:
        return self.params["evaluation_sha"]


class RedactedEval(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="schema",
                   tag=REDACTED_EVAL_SCHEMA):
    """The redacted evaluation report of a run, ``DIR/reports/<run_id>-redacted-eval.json``: no inputs."""

    run_id: str
    experiment: str
    template_id: str
    evaluation_sha: str
    metrics: Metrics
    suite_metrics: dict[str, Metrics]
    cases: tuple[CaseEntry, ...]


def run_status(complete: bool, metrics: Metrics) -> RunStatus:
    """The run's status: the first that applies of incomplete, unsafe, unnecessary, else eligible."""
    if not complete:
        return RunStatus.INCOMPLETE_EVALUATION
    if metrics.unsafe_claim_served:
        return RunStatus.REJECT_UNSAFE_SERVE
    if metrics.unnecessary_abstention:
        return RunStatus.REJECT_UNNECESSARY_ABSTENTION
    return RunStatus.ELIGIBLE_FOR_CANARY_REVIEW


def case_entries(
    experiment: Experiment, results: Mapping[str, Sequence[CaseResult]]
) -> tuple[tuple[CaseEntry, ...], bool]:
    """One entry per case of the experiment, and whether every case ran exactly once without error."""
    entries: list[CaseEntry] = []
    complete = True
    for case in experiment.cases:
        ran = results.get(case.case_id, ())
        result = ran[-1] if ran else None
        outcome = result.outcome if result else Outcome.NOT_RUN
        if len(ran) != 1 or outcome in (Outcome.ERROR, Outcome.NOT_RUN):
            complete = False
        entries.append(
            CaseEntry(
                suite=case.suite,
                case_id=case.case_id,
                slice_name=case.slice_name,
                evidence_state=case.evidence_state,
                expected_route=case.expected_route,
                predicted_route=result.predicted_route if result else None,
                outcome=outcome,
                input_sha256=case.input_sha256,
                error=result.error if result else None,
                **_trial_stats(case.expected_route, result.trial_routes if result else ()),
            )
        )
    return tuple(entries), complete and bool(entries)  # a run that evaluated no case is never complete


def _trial_stats(expected: Route, routes: tuple[Route, ...]) -> dict[str, Any]:
    """A case's trial routes with their agreement and unsafe-trial rate (nothing for a single trial)."""
    if not routes:
        return {}
    majority = max(routes.count(route) for route in set(routes))
    unsafe = routes.count(Route.SERVE) if expected is Route.ABSTAIN else 0
    return {
        "trial_routes": routes,
        "agreement": round(majority / len(routes), 6),
        "unsafe_trial_rate": round(unsafe / len(routes), 6),
    }


def build_params(
    experiment: Experiment, candidate: Candidate, code_commit: str, version: str, extra: Mapping[str, str]
) -> dict[str, str]:
    params = {
        "template_id": candidate.template_id,
        "template_sha256": candidate.sha256,
        "provider": candidate.provider,
        "policy_id": experiment.policy_id,
        "evidence_version": experiment.evidence_version,
        "evaluator_version": experiment.evaluator_version,
    }
    for name, value in experiment.short_fingerprints.items():
        params[f"{name}_sha"] = value
    params.update(extra)
    params["code_commit"] = code_commit
    params["llmgate_version"] = version
    return params


def build_run_record(
    *,
    experiment: Experiment,
    candidate: Candidate,
    role: Role,
    results: Mapping[str, Sequence[CaseResult]],
    run_id: str,
    started_at: str,
    finished_at: str,
    code_commit: str,
    version: str,
    frozen: bool = False,
    extra_params: Mapping[str, str] | None = None,
) -> RunRecord:
    """Aggregate one run's case results into its record (its first artifact: the candidate's file)."""
    entries, complete = case_entries(experiment, results)
    metrics = Metrics.of([entry.outcome for entry in entries])
    suite_metrics = {
        suite.name: Metrics.of([entry.outcome for entry in entries if entry.suite == suite.name])
        for suite in experiment.suites
    }
    tags = {key: str(value) for key, value in experiment.handoff.items()}
    tags["raw_log_text_stored"] = "false"
    return RunRecord(
        run_id=run_id,
        experiment=experiment.name,
        role=role,
        started_at=started_at,
        finished_at=finished_at,
        params=build_params(experiment, candidate, code_commit, version, extra_params or {}),
        metrics=metrics,
        suite_metrics=suite_metrics,
        tags=tags,
        artifacts=(Artifact(path=candidate.relative_path, sha256=candidate.sha256),),
        fingerprints=dict(experiment.fingerprints),
        cases=entries,
        complete=complete,
        status=run_status(complete, metrics),
        promotion=experiment.promotion,
        frozen=frozen,
    )


def redacted_eval(record: RunRecord) -> RedactedEval:
    """The redacted evaluation report of a run: per-case outcomes and metrics, no inputs."""
    return RedactedEval(
        run_id=record.run_id,
        experiment=record.experiment,
        template_id=record.template_id,
        evaluation_sha=short(record.fingerprints["evaluation"]),
        metrics=record.metrics,
        suite_metrics=record.suite_metrics,
        cases=record.cases,
    )
