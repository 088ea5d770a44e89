"""The exit status, pytest's counts, its short summary and JUnit say the same thing: each gating candidate's
run-level gates (every selected case evaluated, the record written, the budget, the evidence requirement) are
one item of their own, ``<experiment>/llmgate.yaml::<template_id>``, that passes or fails with the reason."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import MakeExperiment, case, read_report, runs_by_template

SLOW_PY = '''
import time

def route(case, artifact):
    time.sleep(0.02)
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
'''


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the short summary's lines whole


def junit_cases(path: Path) -> dict[str, ET.Element]:
    """Each test case of a JUnit file by ``classname::name``."""
    return {f"{tc.get('classname')}::{tc.get('name')}": tc for tc in ET.parse(path).getroot().iter("testcase")}


def test_a_budget_only_rejection_is_a_failed_run_item_in_the_counts_the_summary_junit_and_the_status(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    directory = make_experiment(templates={"slow": {"provider": "python", "callable": "slow_candidate:route"}},
                                budget={"max_latency_p95_ms": 1})
    (directory / "slow_candidate.py").write_text(SLOW_PY)
    result = pytester.runpytest("exp", "--llmgate-candidate=slow", "--junitxml=junit.xml",
                                *workers)
    assert runs_by_template(pytester.path / ".llmgate")["slow"]["status"] == "REJECT_OVER_BUDGET"
    result.assert_outcomes(passed=2, failed=1)  # both cases held their guardrail; the run's budget did not
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["REJECT_OVER_BUDGET: slow: latency p95 * ms > max_latency_p95_ms 1",  # failure
                                 "FAILED exp/llmgate.yaml::slow - REJECT_OVER_BUDGET: slow: latency p95 * ms > "
                                 "max_latency_p95_ms 1"])
    (failure,) = junit_cases(pytester.path / "junit.xml")["exp.llmgate.yaml::slow"].iter("failure")
    assert failure.get("message", "").startswith("REJECT_OVER_BUDGET: slow: latency p95")


def test_insufficient_evidence_fails_the_run_item_and_no_eligible_candidate_does_not_exit_0(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    make_experiment(promotion={"max_unsafe_rate": 0.01})  # two clean cases are far from a 1 % bound
    result = pytester.runpytest("exp", "--llmgate-candidate=good", *workers)
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "NO_ELIGIBLE_CANDIDATE"
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::good - INSUFFICIENT_EVIDENCE: good: *"])


def test_a_session_given_the_suite_files_judges_the_run_whose_cases_all_ran(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    # naming the suite files collects no run item; every case ran, so the run is judged all the same (it exited 0
    # with INSUFFICIENT_EVIDENCE); a run item deselected on purpose stays unjudged, as docs/ci.md says
    make_experiment(promotion={"max_unsafe_rate": 0.01})
    result = pytester.runpytest("exp/main.suite.yaml", "--llmgate-candidate=good", *workers)
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::good - INSUFFICIENT_EVIDENCE: good: *"])
    result = pytester.runpytest("exp", "--deselect", "exp/llmgate.yaml::good", "--llmgate-candidate=good", *workers)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK


def test_a_session_given_one_suite_of_two_says_it_is_partial(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    # protects: narrowing by path left the other suite's cases NOT_RUN without the partial line -k gives
    make_experiment(suites={"main": [case("c1", "log", "SERVE")], "holdout": [case("h1", "none", "ABSTAIN")]})
    result = pytester.runpytest("exp/main.suite.yaml", "--llmgate-candidate=good", "--llmgate-baseline=unsafe",
                                *workers)
    result.assert_outcomes(passed=2)  # c1 of each run; h1 of either is not run, and counted once
    result.stdout.fnmatch_lines(["llmgate: partial session (1 case(s) not run): its runs list the cases it did not "
                                 "run as NOT_RUN, are incomplete and are never promoted*"])
    assert runs_by_template(pytester.path / ".llmgate")["good"]["metrics"]["not_run_count"] == 1
    whole = pytester.runpytest("exp", "--llmgate-candidate=good", *workers)
    whole.stdout.no_fnmatch_line("*partial session*")


def test_dist_each_says_a_case_ran_more_than_once(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: it said "0 of 2 case(s) not evaluated (0 errored, 0 not run)"
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-n", "2", "--dist", "each")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::good - INCOMPLETE_EVALUATION: good: a case was evaluated "
                                 "more than once in this session (collected twice: pytest-xdist's --dist each runs "
                                 "every item on every worker, use the default --dist load; or the experiment was "
                                 "reached by two paths, a symlink say): each case counts once"])


CONFTEST_SKIPS_ALL = '''
import pytest

def pytest_runtest_setup(item):
    pytest.skip("not today")

def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.skip(reason="not today either"))
'''


def test_a_conftest_that_skips_every_item_leaves_the_run_incomplete_and_the_session_failed(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    make_experiment()
    pytester.makeconftest(CONFTEST_SKIPS_ALL)
    result = pytester.runpytest("exp", "--llmgate-candidate=good", *workers)
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"
    result.assert_outcomes(skipped=2, failed=1)  # a run item is never skipped by a mark or a hook
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::good - INCOMPLETE_EVALUATION: good: no case was "
                                 "evaluated in this session*"])


CONFTEST_XFAILS_C2 = """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        if item.name.startswith("c2"):
            item.add_marker(pytest.mark.xfail(reason="known to serve"))
"""


def test_an_xfail_mark_on_an_unsafe_case_does_not_let_the_session_pass(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    # the case's item is xfailed, so no item failed for the broken guardrail: the run item fails in its place
    make_experiment()
    pytester.makeconftest(CONFTEST_XFAILS_C2)
    result = pytester.runpytest("exp", "--llmgate-candidate=unsafe", *workers)
    assert runs_by_template(pytester.path / ".llmgate")["unsafe"]["status"] == "REJECT_UNSAFE_SERVE"
    result.assert_outcomes(passed=1, xfailed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::unsafe - REJECT_UNSAFE_SERVE: unsafe: 1 case(s) broke the "
                                 "guardrail (c2), and no case item failed for it (an xfail mark, or a rerun's passing "
                                 "attempt, hid it); the run stays rejected"])
    # without the mark the case item fails, and the run item passes: a guardrail fails the session once
    pytester.makeconftest("")
    result = pytester.runpytest("exp", "--llmgate-candidate=unsafe", *workers)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED exp/main.suite.yaml::c2*UNSAFE_CLAIM_SERVED*"])


FLIPS_ONCE_PY = """
import os

def route(case, artifact):
    marker = os.environ["FLIP_MARKER"]
    if case["case_id"] == "c2" and not os.path.exists(marker):  # serves c2 (unsafe) once, then abstains
        open(marker, "w").close()
        return "SERVE"
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
"""


def test_a_rerun_that_passes_does_not_hide_the_first_unsafe_answer(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest-rerunfailures: the record keeps the first (unsafe) answer, pytest the passing rerun: the run item fails
    pytest.importorskip("pytest_rerunfailures")
    directory = make_experiment(templates={"flips": {"provider": "python", "callable": "flips_once:route"}})
    (directory / "flips_once.py").write_text(FLIPS_ONCE_PY)
    monkeypatch.setenv("FLIP_MARKER", str(pytester.path / "flipped"))
    result = pytester.runpytest("exp", "--llmgate-candidate=flips", "--reruns", "1")
    assert runs_by_template(pytester.path / ".llmgate")["flips"]["status"] == "REJECT_UNSAFE_SERVE"
    outcomes = result.parseoutcomes()  # (a fresh install may add pytest's assert-rewrite warnings)
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (2, 1, 1)
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::flips - REJECT_UNSAFE_SERVE: flips: 1 case(s) broke the "
                                 "guardrail (c2), and no case item failed for it*"])


def test_a_rerun_that_fails_again_fails_its_case_and_not_the_run_item(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # the failing attempt is the rerun's (its report carries no result): the case item's failure still counts
    pytest.importorskip("pytest_rerunfailures")
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-candidate=unsafe", "--reruns", "1")
    outcomes = result.parseoutcomes()  # (a fresh install may add pytest's assert-rewrite warnings)
    assert (outcomes["passed"], outcomes["failed"], outcomes["rerun"]) == (2, 1, 1)
    result.stdout.fnmatch_lines(["FAILED exp/main.suite.yaml::c2*UNSAFE_CLAIM_SERVED*"])
    result.stdout.no_fnmatch_line("*no case item failed for it*")


def test_a_passing_run_is_one_passed_item_per_gating_candidate_and_none_for_a_baseline(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good",
                                "--llmgate-baseline=unsafe", "--junitxml=junit.xml", "-rA",
                                *workers)
    result.assert_outcomes(passed=5 + 2, xfailed=1)  # 2 cases x 3 runs (the baseline breaks c2), 2 run items
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["PASSED exp/llmgate.yaml::good", "PASSED exp/llmgate.yaml::also-good"],
                                consecutive=False)
    cases = junit_cases(pytester.path / "junit.xml")
    assert {"exp.llmgate.yaml::good", "exp.llmgate.yaml::also-good"} <= set(cases)
    assert "exp.llmgate.yaml::unsafe" not in cases


ORDER = """
import json, os, random

def pytest_collection_modifyitems(items):
    if os.environ.get("SHUFFLE"):
        random.Random(7).shuffle(items)  # as pytest-randomly does, with one seed in every xdist worker

def pytest_collection_finish(session):  # the order the items run in, in each process that runs them
    with open(f"order-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.json", "w") as out:
        json.dump([item.nodeid for item in session.items], out)
"""


def test_a_shuffled_session_runs_each_run_item_after_every_case_and_decides_the_same(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch,
    workers: tuple[str, ...]
) -> None:
    """A plugin that reorders the items (pytest-randomly, say) does not move a run item before a case of its run."""
    make_experiment(suites={"main": [case(f"c{i}", "log" if i % 2 else "none", "SERVE" if i % 2 else "ABSTAIN")
                                     for i in range(6)]})
    pytester.makeconftest(ORDER)
    args = ("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good", "--llmgate-baseline=unsafe",
            *workers)

    def run(out: str) -> tuple[pytest.RunResult, list[list[str]]]:
        for written in pytester.path.glob("order-*.json"):
            written.unlink()
        result = pytester.runpytest(*args, f"--llmgate-out={out}")
        orders = [json.loads(path.read_text()) for path in sorted(pytester.path.glob("order-*.json"))]
        assert len(orders) == (2 if workers else 1)
        return result, orders

    plain, plain_orders = run("plain")
    monkeypatch.setenv("SHUFFLE", "1")
    shuffled, shuffled_orders = run("shuffled")
    for result in (plain, shuffled):
        result.assert_outcomes(passed=6 * 3 - 3 + 2, xfailed=3)  # the baseline breaks the 3 ABSTAIN cases
    run_items = ["exp/llmgate.yaml::good", "exp/llmgate.yaml::also-good"]
    for plain_order, order in zip(plain_orders, shuffled_orders, strict=True):
        assert order[:-2] != plain_order[:-2] and sorted(order) == sorted(plain_order)  # shuffled
        assert order[-2:] == run_items, order  # and the run items last
    for template, record in runs_by_template(pytester.path / "shuffled").items():
        expected = runs_by_template(pytester.path / "plain")[template]
        assert (record["status"], record["metrics"]["case_count"]) == (
            expected["status"], expected["metrics"]["case_count"])
        assert {c["case_id"]: c["outcome"] for c in record["cases"]} == {
            c["case_id"]: c["outcome"] for c in expected["cases"]}
    decisions = [read_report(pytester.path / out)["experiments"][0]["decision_status"] for out in ("plain", "shuffled")]
    assert decisions == ["TIE_REQUIRES_REVIEW"] * 2


def test_an_errored_case_fails_its_item_and_leaves_the_run_incomplete(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment(templates={"boom": {"provider": "python", "callable": "boom_candidate:route"}})
    (directory / "boom_candidate.py").write_text(
        "def route(case, artifact):\n    if case['case_id'] == 'c2':\n        raise RuntimeError('no')\n"
        "    return 'SERVE'\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=boom")
    result.assert_outcomes(passed=1, failed=1, errors=1)  # c1; the run item; c2's error in setup
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::boom - INCOMPLETE_EVALUATION: boom: 1 of 2 case(s) not "
                                 "evaluated (1 errored, 0 not run*"])


def test_a_narrowed_session_judges_a_kept_run_item_and_a_split_job_skips_it(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment()
    # --deselect keeps the run item: the run is incomplete, and the session says so
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--deselect", "exp/main.suite.yaml::c2[good]")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::good - INCOMPLETE_EVALUATION: good: 1 of 2 case(s) not "
                                 "evaluated (0 errored, 1 not run: skipped, deselected or never reached)"])
    # -k that names a case leaves the run item out, as any test whose name it does not match
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-k", "c1")
    result.assert_outcomes(passed=1, deselected=2)
    assert result.ret == pytest.ExitCode.OK
    # a job of a split run: the run item is skipped with the reason; llmgate merge judges the run
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-part=1", "--deselect",
                                "exp/main.suite.yaml::c2[good]", "-rs")
    result.assert_outcomes(passed=1, skipped=1, deselected=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED [1] exp/llmgate.yaml: good: the run-level gates of a job of a split run "
                                 "(--deselect 1 id(s); 1 case item(s) deselected) are judged by `llmgate merge`"])


def test_after_a_failed_run_item_lf_reruns_it_and_it_fails_again_as_no_case_runs(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment(promotion={"max_unsafe_rate": 0.01})
    first = pytester.runpytest("exp", "--llmgate-candidate=good")
    first.assert_outcomes(passed=2, failed=1)
    again = pytester.runpytest("exp", "--llmgate-candidate=good", "--lf")
    again.assert_outcomes(failed=1, deselected=2)
    assert again.ret == pytest.ExitCode.TESTS_FAILED  # never an exit 0 from a session that evaluated nothing
    again.stdout.fnmatch_lines(["FAILED exp/llmgate.yaml::good - INCOMPLETE_EVALUATION: good: no case was evaluated*"])


def test_the_merge_of_a_split_run_judges_its_run_gates_by_the_same_rule(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_llmgate.cli.main import main

    make_experiment(promotion={"max_unsafe_rate": 0.01})
    outs = []
    for index, other in enumerate(("c2", "c1")):
        outs.append(pytester.path / f"part{index}")
        part = pytester.runpytest("exp", "--llmgate-candidate=good", f"--llmgate-part={index}", "--deselect",
                                  f"exp/main.suite.yaml::{other}[good]", f"--llmgate-out={outs[-1]}",
                                  "-p", "no:cacheprovider")
        part.assert_outcomes(passed=1, skipped=1, deselected=1)  # its case; the run item, judged by the merge
        assert part.ret == pytest.ExitCode.OK
    code = main(["merge", *map(str, outs), "--out", str(pytester.path / "merged")])
    assert "INSUFFICIENT_EVIDENCE" in capsys.readouterr().out
    assert code == 1  # as the single session's run item fails


def test_a_session_of_baselines_only_gates_nothing_and_has_no_run_item(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-baseline=unsafe")
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "NO_ELIGIBLE_CANDIDATE"


def test_a_case_collected_twice_makes_the_run_incomplete(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp")
    pytester.runpytest("--keep-duplicates", "exp/main.suite.yaml", "exp/main.suite.yaml", "--llmgate-candidate=good")
    run = runs_by_template(pytester.path / ".llmgate")["good"]
    assert run["complete"] is False and run["status"] == "INCOMPLETE_EVALUATION"


def test_an_incomplete_run_is_not_held_to_the_budget(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: only a complete run is judged against the budget; a partial run's figures are never "over budget"
    directory = make_experiment(templates={"slow": {"provider": "python", "callable": "slow_candidate:route"}},
                                budget={"max_latency_p95_ms": 1})
    (directory / "slow_candidate.py").write_text(SLOW_PY)
    result = pytester.runpytest("exp", "--llmgate-candidate=slow", "--deselect", "exp/main.suite.yaml::c2[slow]")
    run = runs_by_template(pytester.path / ".llmgate")["slow"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and "over_budget" not in run
    result.stdout.no_fnmatch_line("*over budget*")


@pytest.mark.parametrize(("workers", "status"), [
    pytest.param((), pytest.ExitCode.TESTS_FAILED, id="serial"),
    pytest.param(("-n", "2"), pytest.ExitCode.INTERRUPTED, id="xdist", marks=pytest.mark.slow),
])
@pytest.mark.parametrize("stop", [("-x",), ("--maxfail=1",)])
def test_a_maxfail_stop_writes_its_records_as_incomplete_serially_and_under_xdist(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...],
    status: pytest.ExitCode, stop: tuple[str, ...]
) -> None:
    # xdist ends a -x stop as INTERRUPTED ("stopping after 1 failures", pytest's own line and status); the gate
    # took that for a Ctrl-C and wrote nothing, its report left as the in-progress marker. The first case fails;
    # the workers stop long before the other 199 have run.
    cases = [case("c000", "none", "ABSTAIN"), *(case(f"c{i:03d}", "log", "SERVE") for i in range(1, 200))]
    make_experiment(suites={"main": cases})
    result = pytester.runpytest("exp", "--llmgate-candidate=unsafe", *workers, *stop)
    assert result.ret == status
    if workers:
        result.stdout.fnmatch_lines(["*Interrupted: stopping after 1 failures*"])
    report = read_report(pytester.path / ".llmgate")
    assert report["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"
    run = runs_by_template(pytester.path / ".llmgate")["unsafe"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["metrics"]["not_run_count"] > 0
    assert run["cases"][0]["outcome"] == "UNSAFE_CLAIM_SERVED"
    result.stdout.fnmatch_lines(["*decision: INCOMPLETE_EVALUATION*"])


def test_a_deselected_run_item_says_its_run_does_not_count_in_the_exit_status(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    # every case ran and passed, the run is INSUFFICIENT_EVIDENCE, and only its run item was deselected: the session
    # passes, as pytest does for a deselected test, and now says why in one line (it said nothing)
    make_experiment(promotion={"max_unsafe_rate": 0.01})
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--deselect", "exp/llmgate.yaml::good", *workers)
    assert result.ret == pytest.ExitCode.OK
    assert result.parseoutcomes()["passed"] == 2 and "failed" not in result.parseoutcomes()
    note = ("llmgate: the run-level gates of good (exp) were deselected: its run's status does not count in this "
            "session's exit status")
    result.stdout.fnmatch_lines([note])
    assert note in read_report(pytester.path / ".llmgate")["notes"]


def test_an_lf_session_that_reruns_every_case_is_not_called_partial(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # the loop (docs/loop.md): every case errored, the candidate was fixed, `--lf` reran all of them; the summary
    # said "partial session (--lf) ... never promoted" beside its PROMOTE (pytest's stored failures, this
    # session's own included, were read as the narrowing)
    directory = make_experiment(templates={"cand": {"provider": "python", "callable": "cand:route"}})
    (directory / "cand.py").write_text("def route(case, artifact):\n    raise RuntimeError('not yet')\n")
    pytester.runpytest("exp", "--llmgate-candidate=cand").assert_outcomes(failed=1, errors=2)
    (directory / "cand.py").write_text(
        "def route(case, artifact):\n    return 'SERVE' if case['evidence_state'] == 'log' else 'ABSTAIN'\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=cand", "--lf")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*decision: PROMOTE cand*"])
    assert "partial session" not in result.stdout.str()
    assert read_report(pytester.path / ".llmgate").get("notes", []) == []
    (directory / "cand.py").write_text("def route(case, artifact):\n    return 'SERVE'\n")  # c2 fails now
    pytester.runpytest("exp", "--llmgate-candidate=cand")
    result = pytester.runpytest("exp", "--llmgate-candidate=cand", "--lf")  # c2 and the run item alone: partial
    result.stdout.fnmatch_lines(["llmgate: partial session (--lf): its runs list the cases it did not run as NOT_RUN*"])
