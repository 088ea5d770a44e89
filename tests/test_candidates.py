"""Candidates: the python provider, errors as ERROR outcomes, baselines that never gate, ties, privacy."""

from __future__ import annotations

import json

import pytest

from .conftest import MakeExperiment, case, read_report, runs_by_template

SECRET_INPUT = {"question": "why did build 4411 fail?", "log_excerpt": "TOKEN=sk-live-do-not-store"}

CANDIDATES_PY = '''
import json, os
from pathlib import Path

def route(case, artifact):
    with Path(os.environ["SEEN_FILE"]).open("a") as seen:
        seen.write(json.dumps({"keys": sorted(case), "params": artifact.get("params")}) + "\\n")
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"

class Answer:
    def __init__(self, route):
        self.route = route
        self.claim = "a root cause"

def rich(case, artifact):
    return Answer("SERVE") if case["evidence_state"] == "log" else {"route": "ABSTAIN", "claim": None}

def explode(case, artifact):
    if case["case_id"] == "c2":
        raise RuntimeError("endpoint said no")
    return "SERVE"

def maybe(case, artifact):
    return "MAYBE"
'''


@pytest.fixture
def python_experiment(pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    directory = make_experiment(
        "exp",
        suites={"main": [case("c1", "log", "SERVE", input=SECRET_INPUT), case("c2", "none", "ABSTAIN")]},
        templates={
            "plain": {"provider": "python", "callable": "gate_candidates:route", "params": {"temperature": 0}},
            "rich": {"provider": "python", "callable": "gate_candidates:rich"},
            "explode": {"provider": "python", "callable": "gate_candidates:explode"},
            "maybe": {"provider": "python", "callable": "gate_candidates:maybe"},
            "policy": {"provider": "evidence_policy", "serve_evidence": ["log"]},
        },
    )
    (directory / "gate_candidates.py").write_text(CANDIDATES_PY)
    monkeypatch.setenv("SEEN_FILE", str(pytester.path / "seen.jsonl"))
    return directory


@pytest.mark.usefixtures("python_experiment")
def test_python_candidate_never_sees_the_expected_route(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("exp", "--llmgate-candidate=plain")
    assert result.ret == pytest.ExitCode.OK
    seen = [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]
    assert len(seen) == 2
    assert seen[0]["keys"] == ["case_id", "evidence_state", "input", "slice_name", "source"]
    assert seen[1]["keys"] == ["case_id", "evidence_state", "slice_name", "source"]
    assert seen[0]["params"] == {"temperature": 0}
    run = runs_by_template(pytester.path / ".llmgate")["plain"]
    assert run["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and run["params"]["provider"] == "python"


@pytest.mark.usefixtures("python_experiment")
def test_a_richer_result_object_or_mapping_gives_the_route(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("exp", "--llmgate-candidate=rich", "--llmgate-candidate=policy")
    result.assert_outcomes(passed=4 + 2)  # 2 cases x 2 candidates, and each candidate's run item
    runs = runs_by_template(pytester.path / ".llmgate")
    gating = {t: {k: v for k, v in run["metrics"].items() if k != "cost"} for t, run in runs.items()}
    assert gating["rich"] == gating["policy"]  # the cost figures hold each one's own latency
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "TIE_REQUIRES_REVIEW"


@pytest.mark.usefixtures("python_experiment")
def test_a_candidate_that_raises_is_an_error_never_a_pass(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("exp", "--llmgate-candidate=explode")
    result.assert_outcomes(passed=1, errors=1, failed=1)  # c1, c2's error; the run item: incomplete
    result.stdout.fnmatch_lines([
        "*ERROR: explode raised RuntimeError on case c2 (suite main, slice s, evidence none)*",
        "*gate_candidates.py*in explode*",
        "*RuntimeError: endpoint said no*",
    ])
    result.stdout.no_fnmatch_line("*pytest_llmgate/*.py*")  # the traceback is the candidate's: no frame of the gate
    result.stdout.no_fnmatch_line("*concurrent/futures/*.py*")  # nor of the thread pool that made its call
    run = runs_by_template(pytester.path / ".llmgate")["explode"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["complete"] is False
    assert run["metrics"]["error_count"] == 1
    assert {k: v for k, v in run["cases"][1].items() if k != "case_sha256"} == {"suite": "main", "case_id": "c2", "slice_name": "s", "evidence_state": "none",
                               "expected_route": "ABSTAIN", "predicted_route": None, "outcome": "ERROR",
                               "error": "RuntimeError"}
    assert "endpoint said no" not in json.dumps(run)


@pytest.mark.usefixtures("python_experiment")
def test_a_route_that_is_not_serve_or_abstain_is_an_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("exp", "--llmgate-candidate=maybe")
    result.assert_outcomes(errors=2, failed=1)  # both cases; the run item: no case evaluated
    result.stdout.fnmatch_lines(["*gate_candidates:maybe returned 'MAYBE'; expected SERVE or ABSTAIN*"])


@pytest.mark.usefixtures("python_experiment")
def test_a_baseline_that_raises_or_breaks_a_guardrail_never_fails_the_session(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("exp", "--llmgate-baseline=explode", "--llmgate-baseline=maybe",
                                "--llmgate-candidate=policy", "-rx")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3 + 1, xfailed=3)  # and policy's run item: the baselines have none
    result.stdout.fnmatch_lines(["*XFAIL*baseline ERROR: explode raised RuntimeError on case c2*"])
    report = read_report(pytester.path / ".llmgate")["experiments"][0]
    assert report["decision_status"] == "INCOMPLETE_EVALUATION"  # a baseline errored: the set is not complete


@pytest.mark.usefixtures("python_experiment")
def test_inputs_never_reach_records_only_their_hash(pytester: pytest.Pytester) -> None:
    pytester.runpytest("exp", "--llmgate-candidate=plain", "--llmgate-baseline=policy")
    written = "".join(p.read_text() for p in (pytester.path / ".llmgate").rglob("*.json"))
    assert "sk-live-do-not-store" not in written and "build 4411" not in written
    run = runs_by_template(pytester.path / ".llmgate")["plain"]
    assert len(run["cases"][0]["input_sha256"]) == 64 and "input_sha256" not in run["cases"][1]


def test_two_eligible_candidates_tie_and_both_are_named(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good")
    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester.path / ".llmgate")["experiments"][0]
    assert report["decision_status"] == "TIE_REQUIRES_REVIEW" and report["decision"] is None
    assert sorted(r["template_id"] for r in report["eligible_runs"]) == ["also-good", "good"]
    result.stdout.fnmatch_lines(["*decision: TIE_REQUIRES_REVIEW: 2 candidates are eligible: good (run *), "
                                 "also-good (run *); a reviewer must choose*"])


def test_several_experiments_in_one_session(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("alpha")
    make_experiment("beta", templates={"good": {"provider": "evidence_policy", "serve_evidence": ["log"]}})
    result = pytester.runpytest(".", "--llmgate-candidate=also-good", "--llmgate-candidate=good")
    result.assert_outcomes(passed=6 + 3)  # 3 runs of 2 cases, each with its run item
    report = read_report(pytester.path / ".llmgate")
    decisions = {e["experiment"]: e["decision_status"] for e in report["experiments"]}
    assert decisions == {"alpha": "TIE_REQUIRES_REVIEW", "beta": "PROMOTE"}


def test_code_commit_comes_from_git(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    import subprocess

    make_experiment("exp")

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=pytester.path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", "exp")
    git("-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "suites")
    head = git("rev-parse", "HEAD")
    pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-out=clean")
    (pytester.path / "exp" / "templates" / "good.yaml").write_text(
        "template_id: good\nprovider: evidence_policy\nserve_evidence: [log, x]\n"
    )
    pytester.runpytest_subprocess("exp", "--llmgate-candidate=good", "--llmgate-out=dirty")
    assert runs_by_template(pytester.path / "clean")["good"]["params"]["code_commit"] == head
    assert runs_by_template(pytester.path / "dirty")["good"]["params"]["code_commit"] == f"{head}-dirty"


def test_suites_in_a_subfolder_run_with_their_experiment(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    directory = make_experiment("exp")
    (directory / "suites").mkdir()
    (directory / "main.suite.yaml").rename(directory / "suites" / "main.suite.yaml")
    manifest = (directory / "llmgate.yaml").read_text()
    (directory / "llmgate.yaml").write_text(manifest.replace("main: main.suite.yaml", "main: suites/main.suite.yaml"))
    (directory / "test_plain.py").write_text("def test_other_tests_still_run():\n    pass\n")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-v")
    result.assert_outcomes(passed=3 + 1)  # and good's run item, exp/llmgate.yaml::good
    result.stdout.fnmatch_lines(["*exp/suites/main.suite.yaml::c1[[]good[]] PASSED*", "*test_plain.py::*PASSED*",
                                 "*exp/llmgate.yaml::good PASSED*"])  # the run items are reported last
    assert runs_by_template(pytester.path / ".llmgate")["good"]["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"


def test_a_kwargs_candidate_is_given_the_trial() -> None:
    from typing import Any

    from pytest_llmgate.providers.python_callable import PythonCallable

    seen = []

    def route(case: Any, artifact: Any, **kwargs: Any) -> str:
        seen.append(kwargs.get("trial"))
        return "SERVE"
    PythonCallable(route, {}, "m:route", trials=2).route({"case_id": "c"}, trial=1)
    assert seen == [1]
