"""A candidate cannot hang or skip its way through (issue 18, item 4): a per-case timeout, and skip/xfail as ERROR."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import LLMServer, MakeExperiment, case, read_report, runs_by_template

XDIST = pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])

FAULTS_PY = '''
import threading
import pytest

def hang(case, artifact):
    if case["case_id"] == "c2":
        threading.Event().wait()  # never returns
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"

def skip(case, artifact):
    if case["case_id"] == "c2":
        pytest.skip("not today")
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"

def xfail(case, artifact):
    if case["case_id"] == "c2":
        pytest.xfail("known")
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
'''


@pytest.fixture
def faults(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> Path:
    directory = make_experiment(
        "exp",
        suites={"main": [case("c1", "log", "SERVE"), case("c2", "none", "ABSTAIN"), case("c3", "log", "SERVE")]},
        templates={
            "hangs": {"provider": "python", "callable": "gate_faults:hang", "case_timeout": 0.5},
            "skips": {"provider": "python", "callable": "gate_faults:skip"},
            "xfails": {"provider": "python", "callable": "gate_faults:xfail"},
        },
    )
    (directory / "gate_faults.py").write_text(FAULTS_PY)
    return directory


@XDIST
@pytest.mark.usefixtures("faults")
def test_a_hanging_python_candidate_is_an_error_for_that_case_and_the_session_goes_on(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    started = time.monotonic()
    result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=hangs", *xdist, timeout=60)
    assert time.monotonic() - started < 30
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR: hangs on case c2 (suite main, slice s, evidence none): no answer within 0.5s (case_timeout); "
        "the call was abandoned and the session goes on*",
    ])
    run = runs_by_template(pytester.path / ".llmgate")["hangs"]
    assert [entry["outcome"] for entry in run["cases"]] == ["PASS", "ERROR", "PASS"]
    assert run["status"] == "INCOMPLETE_EVALUATION"
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"


@XDIST
@pytest.mark.parametrize(("template", "raised"), [("skips", "Skipped"), ("xfails", "XFailed")])
@pytest.mark.usefixtures("faults")
def test_a_candidate_calling_pytest_skip_or_xfail_is_an_error_and_fails_the_session(
    pytester: pytest.Pytester, xdist: tuple[str, ...], template: str, raised: str
) -> None:
    result = pytester.runpytest_subprocess("exp", f"--llmgate-candidate={template}", *xdist, timeout=60)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        f"*ERROR: {template} on case c2 (suite main, slice s, evidence none): the candidate raised {raised} "
        "(pytest.skip, pytest.xfail or another BaseException): a candidate cannot skip, xfail or stop its case*",
    ])
    run = runs_by_template(pytester.path / ".llmgate")[template]
    assert run["cases"][1]["outcome"] == "ERROR" and run["status"] == "INCOMPLETE_EVALUATION"


def test_a_slow_llm_endpoint_is_an_error_after_case_timeout(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test")
    make_experiment(
        "exp",
        suites={"main": [case("c1", "log", "SERVE", input={"question": "q"})]},
        templates={"slow": {
            "provider": "openai_chat", "model": "m", "base_url": llm_server.url, "api_key_env": "LLMGATE_TEST_KEY",
            "timeout": 10, "max_retries": 0, "case_timeout": 0.5,
            "prompt": {"user": "Evidence state: {{ evidence_state }}"},
        }},
    )
    llm_server.control("ok", delay=2.0)
    try:
        result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=slow", "--llmgate-record=all", timeout=60)
    finally:
        llm_server.control("ok")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR: slow on case c1 *: no answer within 0.5s (case_timeout)*"])


def test_case_timeout_must_be_a_positive_number(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]},
                    templates={"bad": {"provider": "evidence_policy", "serve_evidence": ["log"], "case_timeout": 0}})
    result = pytester.runpytest("exp", "--llmgate-candidate=bad")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*templates/bad.yaml:*case_timeout*"])


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_collection_error_exits_2_with_and_without_xdist(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, xdist: tuple[str, ...]
) -> None:
    make_experiment("good", suites={"main": [case("c1", "log", "SERVE")]})
    bad = make_experiment("bad", suites={"main": [case("c1", "log", "SERVE")]})
    (bad / "main.suite.yaml").write_text("cases: [\n")
    result = pytester.runpytest_subprocess(".", "--llmgate-candidate=good", *xdist, timeout=60)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad/main.suite.yaml*"])
    assert not (pytester.path / ".llmgate" / "runs").exists()


def test_an_interrupt_in_the_write_phase_leaves_no_redacted_report_without_its_run_record(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]})
    pytester.makeconftest("def pytest_llmgate_run_record(config, record, files):\n    raise KeyboardInterrupt\n")
    pytester.runpytest_subprocess("exp", "--llmgate-candidate=good", timeout=60)
    reports = sorted(p.name for p in (pytester.path / ".llmgate" / "reports").glob("*"))
    runs = sorted(p.stem for p in (pytester.path / ".llmgate" / "runs").glob("*.json"))
    assert reports == [f"{run_id}-redacted-eval.json" for run_id in runs] == []
