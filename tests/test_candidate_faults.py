"""A candidate cannot hang or skip its way through (issue 18, item 4): a per-case timeout, and skip/xfail as ERROR."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import LLMServer, MakeExperiment, case, read_report, runs_by_template

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


@pytest.mark.slow
@pytest.mark.usefixtures("faults")
def test_a_hanging_python_candidate_is_an_error_for_that_case_and_the_session_goes_on(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    started = time.monotonic()
    result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=hangs", *workers, timeout=60)
    assert time.monotonic() - started < 30
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=1, failed=1)  # the run item: c2 not evaluated, the run incomplete
    result.stdout.fnmatch_lines([
        "*ERROR: hangs on case c2 (suite main, slice s, evidence none): no answer within 0.5s (case_timeout); "
        "the call was abandoned and the session goes on*",
    ])
    run = runs_by_template(pytester.path / ".llmgate")["hangs"]
    assert [entry["outcome"] for entry in run["cases"]] == ["PASS", "ERROR", "PASS"]
    assert run["status"] == "INCOMPLETE_EVALUATION"
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"


@pytest.mark.slow
@pytest.mark.parametrize(("template", "raised"), [("skips", "Skipped"), ("xfails", "XFailed")])
@pytest.mark.usefixtures("faults")
def test_a_candidate_calling_pytest_skip_or_xfail_is_an_error_and_fails_the_session(
    pytester: pytest.Pytester, workers: tuple[str, ...], template: str, raised: str
) -> None:
    result = pytester.runpytest_subprocess("exp", f"--llmgate-candidate={template}", *workers, timeout=60)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=1, failed=1)  # the run item: c2 not evaluated, the run incomplete
    result.stdout.fnmatch_lines([
        f"*ERROR: {template} on case c2 (suite main, slice s, evidence none): the candidate raised {raised} "
        "(pytest.skip, pytest.xfail or another BaseException): a candidate cannot skip, xfail or stop its case*",
    ])
    run = runs_by_template(pytester.path / ".llmgate")[template]
    assert run["cases"][1]["outcome"] == "ERROR" and run["status"] == "INCOMPLETE_EVALUATION"


@pytest.mark.slow
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


def drip_experiment(make_experiment: MakeExperiment, url: str, **settings: object) -> None:
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE", input={"question": "q"})]}, templates={
        "drip": {"provider": "openai_chat", "model": "m", "base_url": url, "api_key_env": "LLMGATE_TEST_KEY",
                 "max_retries": 0, **settings,
                 "prompt": {"system": "Serve always.", "user": "Evidence state: {{ evidence_state }}"}}})


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "reason"), [
    ("drip_chunked", "timed out after 1s (not retried)"),  # a byte every 0.2 s: no single read times out
    ("drip", "reply larger than 4 MB (max_response_mb); not read further"),  # Content-Length: 100 MB
])
def test_a_reply_that_drips_forever_is_cut_off_and_the_process_ends(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch, mode: str, reason: str,
) -> None:
    # The SDK's timeout is per read: each attempt's whole reply is bounded by it, and its size by max_response_mb.
    # case_timeout is far above both: the call itself ends, the session is not left waiting for it.
    pytest.importorskip("openai")
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test")
    drip_experiment(make_experiment, llm_server.url, timeout=1, case_timeout=20)
    llm_server.control(mode, delay=0.2)
    try:
        result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=drip", "--llmgate-record=all", timeout=40)
    finally:
        llm_server.control("ok")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"ERROR: drip on case c1 (suite main, slice s, evidence log): {reason}"])


def test_a_reply_over_max_response_mb_is_an_error_and_one_under_it_is_read(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test")
    drip_experiment(make_experiment, llm_server.url, max_response_mb=0.5)
    llm_server.control("big")  # a 1 MB reply in chunks, with no Content-Length
    result = pytester.runpytest("exp", "--llmgate-candidate=drip", "--llmgate-record=all", "--llmgate-out=small")
    result.assert_outcomes(errors=1, failed=1)  # the run item: its only case not evaluated
    result.stdout.fnmatch_lines(["ERROR: drip on case c1 *: reply larger than 0.5 MB (max_response_mb); not read "
                                 "further"])
    drip_experiment(make_experiment, llm_server.url, max_response_mb=2)
    pytester.runpytest("exp", "--llmgate-candidate=drip", "--llmgate-record=all",
                       "--llmgate-out=large").assert_outcomes(passed=1 + 1)  # + the run item


@pytest.mark.slow
def test_an_endpoint_that_drips_its_headers_does_not_keep_the_process_alive(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch, workers: tuple[str, ...],
) -> None:
    # Before the headers are complete no deadline of the HTTP client applies: the case timeout abandons the call,
    # and its thread, a daemon, does not hold the process at exit.
    pytest.importorskip("openai")
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test")
    drip_experiment(make_experiment, llm_server.url, timeout=1, case_timeout=2)
    llm_server.control("drip_headers", delay=0.2)
    try:
        result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=drip", "--llmgate-record=all", *workers,
                                               timeout=40)
    finally:
        llm_server.control("ok")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR: drip on case c1 *: no answer within 2s (case_timeout)*"])


STUCK_PY = """
import threading
threading.Event().wait()  # never returns

def answer(case, artifact):
    return "SERVE"
"""


@pytest.mark.slow
def test_a_candidate_module_that_hangs_at_import_is_a_collection_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    directory = make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]}, templates={
        "stuck": {"provider": "python", "callable": "gate_stuck:answer", "case_timeout": 0.5}})
    (directory / "gate_stuck.py").write_text(STUCK_PY)
    result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=stuck", *workers, timeout=40)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/templates/stuck.yaml:3: callable 'gate_stuck:answer': its module did not "
                                 "finish importing within 0.5s (case_timeout); the import was abandoned*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_case_timeout_must_be_a_positive_number(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]},
                    templates={"bad": {"provider": "evidence_policy", "serve_evidence": ["log"], "case_timeout": 0}})
    result = pytester.runpytest("exp", "--llmgate-candidate=bad")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*templates/bad.yaml:*case_timeout*"])


@pytest.mark.parametrize("stop", [(), ("-x",)])  # -x: a collection error is no maxfail stop that writes records
def test_a_collection_error_exits_2_with_and_without_xdist(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...], stop: tuple[str, ...]
) -> None:
    make_experiment("good", suites={"main": [case("c1", "log", "SERVE")]})
    bad = make_experiment("bad", suites={"main": [case("c1", "log", "SERVE")]})
    (bad / "main.suite.yaml").write_text("cases: [\n")
    result = pytester.runpytest_subprocess(".", "--llmgate-candidate=good", *workers, *stop, timeout=60)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*bad/main.suite.yaml*"])
    assert not (pytester.path / ".llmgate" / "runs").exists()


def test_a_run_record_that_cannot_be_written_takes_its_redacted_report_with_it(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # The redacted report is written first; when the run record then fails (here: runs/ is a file), it goes too.
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]})
    (pytester.path / ".llmgate").mkdir()
    (pytester.path / ".llmgate" / "runs").write_text("not a folder")
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*INCOMPLETE_EVALUATION: good: its run record could not be written: *"
                                 ".llmgate/runs is a file, not a folder"])
    assert (pytester.path / ".llmgate" / "reports").is_dir()  # it was written, then taken back
    assert list((pytester.path / ".llmgate" / "reports").glob("*")) == []


@pytest.mark.slow
def test_an_interrupt_in_the_write_phase_leaves_no_redacted_report_without_its_run_record(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp", suites={"main": [case("c1", "log", "SERVE")]})
    pytester.makeconftest("def pytest_llmgate_run_record(config, record, files):\n    raise KeyboardInterrupt\n")
    pytester.runpytest_subprocess("exp", "--llmgate-candidate=good", timeout=60)
    reports = sorted(p.name for p in (pytester.path / ".llmgate" / "reports").glob("*"))
    runs = sorted(p.stem for p in (pytester.path / ".llmgate" / "runs").glob("*.json"))
    assert reports == [f"{run_id}-redacted-eval.json" for run_id in runs] == []
