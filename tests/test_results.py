"""The session's compact store of case results gives back exactly the results it was given."""

from __future__ import annotations

from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.results import CaseIndex, RunResults
from pytest_llmgate.model.vocab import Outcome, Role, Route


def result(case_id: str, outcome: Outcome = Outcome.PASS, predicted: Route | None = Route.SERVE,
           **fields: object) -> CaseResult:
    return CaseResult(experiment_dir="/exp", template_id="t1", role=Role.CANDIDATE, case_id=case_id,
                      predicted_route=predicted, outcome=outcome, **fields)  # type: ignore[arg-type]


def test_every_kind_of_result_reads_back_as_added() -> None:
    index = CaseIndex([f"c{number}" for number in range(12)])
    added = {
        "c0": [result("c0", calls=(Usage(latency_ms=1.5),))],  # the common case: kept compact
        "c1": [result("c1", Outcome.UNSAFE_CLAIM_SERVED, Route.SERVE, calls=(Usage(latency_ms=None),))],
        "c2": [result("c2", Outcome.UNNECESSARY_ABSTENTION, Route.ABSTAIN)],  # no call
        "c3": [result("c3", Outcome.ERROR, None, error="ProviderError: timed out")],
        "c4": [result("c4", trial_routes=(Route.SERVE, Route.ABSTAIN), calls=(Usage(latency_ms=1.0),) * 2)],
        "c5": [result("c5", calls=(Usage(input_tokens=10, output_tokens=2, latency_ms=3.0),))],
        "c6": [result("c6", calls=(Usage(latency_ms=1.0, rate_limited=1),))],
        "c7": [result("c7", calls=(Usage(latency_ms=1.0),)), result("c7", Outcome.ERROR, None, error="again")],
        "c8": [result("c8", Outcome.ERROR, None, error="first"), result("c8", calls=(Usage(latency_ms=2.0),))],
        "unknown": [result("unknown", calls=(Usage(latency_ms=4.0),))],  # not in the index: kept whole
        "c9": [CaseResult(experiment_dir="/exp", template_id="t1", role=Role.BASELINE, case_id="c9",
                          predicted_route=Route.SERVE, outcome=Outcome.PASS)],  # another role than the run's
    }
    run = RunResults("/exp", "t1", Role.CANDIDATE, index)
    for ran in added.values():
        for one in ran:
            run.add(one)
    assert len(run) == len(added)
    assert set(run) == set(added)
    for case_id, ran in added.items():
        assert list(run[case_id]) == ran
    assert run.get("c10") is None and "c11" not in run
    assert run.reported_tokens()


def test_a_run_without_an_index_keeps_every_result_whole() -> None:
    run = RunResults("/exp", "t1", Role.CANDIDATE, None)
    one = result("c0", calls=(Usage(latency_ms=1.0),))
    run.add(one)
    assert dict(run) == {"c0": [one]}
    assert not run.reported_tokens()
