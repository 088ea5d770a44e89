"""Run records: the metrics, status and provenance of one candidate on one experiment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._evaluate import CaseResult
from ._experiment import Experiment, Promotion
from ._candidate import Candidate
from ._fingerprint import short
from ._vocab import REDACTED_EVAL_SCHEMA, RUN_SCHEMA, Outcome, Role, RunStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
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

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(**{field: data[field] for field in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return {
            "case_count": self.case_count,
            "unsafe_claim_served": self.unsafe_claim_served,
            "unnecessary_abstention": self.unnecessary_abstention,
            "exact_route_rate": self.exact_route_rate,
            "error_count": self.error_count,
            "not_run_count": self.not_run_count,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseEntry:
    """One case's line in a record: labels, prediction and outcome; its input only as a hash."""

    suite: str
    case_id: str
    slice_name: str
    evidence_state: str
    expected_route: str
    predicted_route: str | None
    outcome: Outcome
    input_sha256: str | None
    error: str | None
    trial_routes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseEntry:
        return cls(
            suite=data["suite"], case_id=data["case_id"], slice_name=data["slice_name"],
            evidence_state=data["evidence_state"], expected_route=data["expected_route"],
            predicted_route=data["predicted_route"], outcome=Outcome(data["outcome"]),
            input_sha256=data.get("input_sha256"), error=data.get("error"),
            trial_routes=tuple(data.get("trial_routes", ())),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "suite": self.suite,
            "case_id": self.case_id,
            "slice_name": self.slice_name,
            "evidence_state": self.evidence_state,
            "expected_route": self.expected_route,
            "predicted_route": self.predicted_route,
            "outcome": self.outcome.value,
        }
        if self.input_sha256 is not None:
            data["input_sha256"] = self.input_sha256
        if self.error is not None:
            data["error"] = self.error
        if self.trial_routes:
            routes = self.trial_routes
            majority = max(routes.count(route) for route in set(routes))
            data["trial_routes"] = list(routes)
            data["agreement"] = round(majority / len(routes), 6)
            unsafe = routes.count("SERVE") if self.expected_route == "ABSTAIN" else 0
            data["unsafe_trial_rate"] = round(unsafe / len(routes), 6)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    path: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """Everything needed to audit one run without rerunning it."""

    run_id: str
    experiment: str
    role: Role
    started_at: str
    finished_at: str
    params: Mapping[str, str]
    metrics: Metrics
    suite_metrics: Mapping[str, Metrics]
    tags: Mapping[str, str]
    artifacts: tuple[Artifact, ...]
    fingerprints: Mapping[str, str]
    cases: tuple[CaseEntry, ...]
    complete: bool
    status: RunStatus
    promotion: Promotion
    frozen: bool

    @property
    def template_id(self) -> str:
        return self.params["template_id"]

    @property
    def evaluation_sha(self) -> str:
        return self.params["evaluation_sha"]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """A stored record (already checked against ``run.schema.json``) as the object it was written from."""
        promotion = data["promotion"]
        return cls(
            run_id=data["run_id"],
            experiment=data["experiment"],
            role=Role(data["role"]),
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            params=dict(data["params"]),
            metrics=Metrics.from_json(data["metrics"]),
            suite_metrics={name: Metrics.from_json(m) for name, m in data["suite_metrics"].items()},
            tags=dict(data["tags"]),
            artifacts=tuple(Artifact(path=a["path"], sha256=a["sha256"]) for a in data["artifacts"]),
            fingerprints=dict(data["fingerprints"]),
            cases=tuple(CaseEntry.from_json(c) for c in data["cases"]),
            complete=data["complete"],
            status=RunStatus(data["status"]),
            promotion=Promotion(alias=promotion["alias"], rollback_artifact=promotion["rollback_artifact"],
                                limitation=promotion["limitation"]),
            frozen=data["frozen"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": RUN_SCHEMA,
            "run_id": self.run_id,
            "experiment": self.experiment,
            "role": self.role.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "params": dict(self.params),
            "metrics": self.metrics.to_json(),
            "suite_metrics": {name: metrics.to_json() for name, metrics in self.suite_metrics.items()},
            "tags": dict(self.tags),
            "artifacts": [artifact.to_json() for artifact in self.artifacts],
            "fingerprints": dict(self.fingerprints),
            "cases": [case.to_json() for case in self.cases],
            "complete": self.complete,
            "status": self.status.value,
            "promotion": self.promotion.to_json(),
            "frozen": self.frozen,
        }


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
                expected_route=case.expected_route.value,
                predicted_route=result.predicted_route.value if result and result.predicted_route else None,
                outcome=outcome,
                input_sha256=case.input_sha256,
                error=result.error if result else None,
                trial_routes=tuple(route.value for route in result.trial_routes) if result else (),
            )
        )
    return tuple(entries), complete


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
        fingerprints=experiment.fingerprints,
        cases=entries,
        complete=complete,
        status=run_status(complete, metrics),
        promotion=experiment.promotion,
        frozen=frozen,
    )


def redacted_eval(record: RunRecord) -> dict[str, Any]:
    """The redacted evaluation report of a run: per-case outcomes and metrics, no inputs."""
    return {
        "schema": REDACTED_EVAL_SCHEMA,
        "run_id": record.run_id,
        "experiment": record.experiment,
        "template_id": record.template_id,
        "evaluation_sha": short(record.fingerprints["evaluation"]),
        "metrics": record.metrics.to_json(),
        "suite_metrics": {name: metrics.to_json() for name, metrics in record.suite_metrics.items()},
        "cases": [case.to_json() for case in record.cases],
    }
