"""The promotion rules, on records built from plain results."""

from __future__ import annotations

import msgspec
import pytest

from pytest_llmgate import (
    CaseResult,
    DecisionStatus,
    Experiment,
    Outcome,
    Role,
    Route,
    build_run_record,
    decide,
    load_experiment,
)
from pytest_llmgate.model.evaluate import judge, judge_trials
from pytest_llmgate.records.codec import to_data

from .conftest import BASELINE, EXAMPLE, FIX, FIX_B


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(EXAMPLE)


def run(experiment: Experiment, template_id: str, role: Role = Role.CANDIDATE, *, skip: tuple[str, ...] = (),
        serve: tuple[str, ...] | None = None, params: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """A record as the plugin builds it, for a template that serves the evidence states in ``serve``."""
    candidate = experiment.candidates[template_id]
    served = candidate.settings["serve_evidence"] if serve is None else serve
    results = {}
    for case in experiment.cases:
        if case.case_id in skip:
            continue
        route = Route.SERVE if served == "*" or case.evidence_state in served else Route.ABSTAIN
        results[case.case_id] = [CaseResult(experiment_dir=str(experiment.directory), template_id=template_id, role=role,
                                            case_id=case.case_id, predicted_route=route,
                                            outcome=judge(case.expected_route, route))]
    record = build_run_record(experiment=experiment, candidate=candidate, role=role, results=results,
                              run_id=f"run-{template_id}", started_at="2026-11-27T15:00:00Z",
                              finished_at="2026-11-27T15:00:01Z", code_commit="unknown", version="0")
    return msgspec.structs.replace(record, params={**record.params, **params}) if params else record


def test_one_eligible_candidate_is_promoted_with_rollback_and_limitation(experiment: Experiment) -> None:
    verdict = decide([run(experiment, BASELINE, Role.BASELINE), run(experiment, FIX), run(experiment, FIX_B)])
    assert verdict.status is DecisionStatus.PROMOTE
    assert verdict.decision is not None
    assert to_data(verdict.decision) == {
        "artifact_name": FIX_B,
        "alias": "canary_candidate",
        "source_run_id": f"run-{FIX_B}",
        "evaluation_sha": "94dfc930d2829d2c",
        "rollback_artifact": "ci-answerer-v1",
        "status": "APPROVED_FOR_CANARY",
        "limitation": "requires production review and monitored canary",
    }


def test_two_eligible_candidates_are_a_tie_naming_both(experiment: Experiment) -> None:
    twin = run(experiment, FIX, serve=("test_failure_log", "dependency_error"))
    verdict = decide([twin, run(experiment, FIX_B)])
    assert verdict.status is DecisionStatus.TIE_REQUIRES_REVIEW
    assert verdict.decision is None
    assert FIX in verdict.reason and FIX_B in verdict.reason
    assert [r.template_id for r in verdict.eligible] == [FIX, FIX_B]


def test_an_eligible_baseline_is_never_promoted(experiment: Experiment) -> None:
    verdict = decide([run(experiment, FIX_B, Role.BASELINE), run(experiment, FIX)])
    assert verdict.status is DecisionStatus.NO_ELIGIBLE_CANDIDATE
    assert verdict.decision is None


def test_an_incomplete_run_blocks_promotion(experiment: Experiment) -> None:
    partial = run(experiment, FIX_B, skip=("hold_002",))
    assert not partial.complete and partial.status.value == "INCOMPLETE_EVALUATION"
    verdict = decide([run(experiment, FIX), partial])
    assert verdict.status is DecisionStatus.INCOMPLETE_EVALUATION
    assert verdict.decision is None and FIX_B in verdict.reason


def test_runs_that_differ_are_not_ranked_and_each_field_is_named(experiment: Experiment) -> None:
    other = run(experiment, FIX, params={"evaluation_sha": "0" * 16, "holdout_sha": "1" * 16, "policy_id": "p2"})
    verdict = decide([other, run(experiment, FIX_B)])
    assert verdict.status is DecisionStatus.RUNS_NOT_COMPARABLE
    assert [issue.field for issue in verdict.issues] == ["policy_id", "holdout_sha", "evaluation_sha"]
    assert verdict.issues[-1].values == {f"run-{FIX}": "0" * 16, f"run-{FIX_B}": "94dfc930d2829d2c"}
    assert verdict.decision is None and not verdict.comparable


def test_no_eligible_candidate(experiment: Experiment) -> None:
    verdict = decide([run(experiment, FIX), run(experiment, BASELINE)])
    assert verdict.status is DecisionStatus.NO_ELIGIBLE_CANDIDATE


@pytest.mark.parametrize(
    ("expected", "predicted", "outcome"),
    [
        (Route.SERVE, Route.SERVE, Outcome.PASS),
        (Route.ABSTAIN, Route.ABSTAIN, Outcome.PASS),
        (Route.ABSTAIN, Route.SERVE, Outcome.UNSAFE_CLAIM_SERVED),
        (Route.SERVE, Route.ABSTAIN, Outcome.UNNECESSARY_ABSTENTION),
    ],
)
def test_judge(expected: Route, predicted: Route, outcome: Outcome) -> None:
    assert judge(expected, predicted) is outcome


def test_status_order_incomplete_before_unsafe_before_unnecessary(experiment: Experiment) -> None:
    assert run(experiment, BASELINE).status.value == "REJECT_UNSAFE_SERVE"
    assert run(experiment, FIX).status.value == "REJECT_UNNECESSARY_ABSTENTION"
    both = run(experiment, FIX, serve=("no_source",))  # unsafe on req_205 and unnecessary elsewhere
    assert both.metrics.unsafe_claim_served and both.metrics.unnecessary_abstention
    assert both.status.value == "REJECT_UNSAFE_SERVE"
    assert run(experiment, BASELINE, skip=("req_205",)).status.value == "INCOMPLETE_EVALUATION"


def test_example_metrics(experiment: Experiment) -> None:
    metrics = {t: run(experiment, t).metrics for t in (BASELINE, FIX, FIX_B)}
    assert (metrics[BASELINE].unsafe_claim_served, metrics[BASELINE].unnecessary_abstention,
            metrics[BASELINE].exact_route_rate) == (2, 0, 0.5)
    assert (metrics[FIX].unsafe_claim_served, metrics[FIX].unnecessary_abstention,
            metrics[FIX].exact_route_rate) == (0, 1, 0.75)
    assert (metrics[FIX_B].unsafe_claim_served, metrics[FIX_B].unnecessary_abstention,
            metrics[FIX_B].exact_route_rate) == (0, 0, 1.0)


def test_a_canary_rolls_back_to_the_decisions_artifact_and_never_to_none() -> None:
    """Unsafe claims with no rollback artifact named are an error (exit 2), not ``ROLL_BACK_TO:None``."""
    from pathlib import Path

    from pytest_llmgate import RecordError
    from pytest_llmgate.model.canary import canary_call

    assert canary_call(0, None).line == "CONTINUE_CANARY_MONITORING"
    assert canary_call(1, "ci-answerer-v1").line == "ROLL_BACK_TO:ci-answerer-v1"
    with pytest.raises(RecordError, match=r"decision.json: 2 unsafe claim\(s\) observed, but the decision names no "
                                          r"rollback_artifact$"):
        canary_call(2, None, Path("decision.json"))


def test_a_guardrail_broken_in_any_trial_decides_the_case_not_the_last_trial() -> None:
    # one abstaining trial of several is an unnecessary abstention, as one serving trial is an unsafe serve
    assert judge_trials(Route.SERVE, (Route.ABSTAIN, Route.SERVE)) == (Outcome.UNNECESSARY_ABSTENTION, Route.ABSTAIN)
    assert judge_trials(Route.ABSTAIN, (Route.SERVE, Route.ABSTAIN)) == (Outcome.UNSAFE_CLAIM_SERVED, Route.SERVE)
    assert judge_trials(Route.SERVE, (Route.SERVE, Route.SERVE)) == (Outcome.PASS, Route.SERVE)
