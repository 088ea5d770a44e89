"""Provider anthropic_messages against a real HTTP server on 127.0.0.1 speaking the Messages API, through the
real anthropic SDK: the same rendering, route reading, record/replay, trials and fault handling as openai_chat."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate import check_json

from .conftest import LLMServer, MakeExperiment, case, runs_by_template

pytest.importorskip("anthropic", reason="the anthropic extra is not installed: pip install 'pytest-llmgate[anthropic]'")
# As in test_openai_chat: the SDK's HTTP stack caches exception classes of its transport module; import it once here
# for every in-process pytester run to share.
for _transport in ("httpcore2", "httpcore"):
    with contextlib.suppress(ImportError):
        __import__(_transport)

KEY = "sk-ant-test-DO-NOT-LEAK-0815"
CASES = [
    case("req_205", "no_source", "ABSTAIN", input={"question": "why did build 4411 fail?"}),
    case("reg_002", "test_failure_log", "SERVE", input={"question": "why did test_login fail?"}),
    case("hold_001", "dependency_error", "SERVE", input={"question": "why did the install step fail?"}),
    case("hold_002", "flaky_signal", "ABSTAIN", input={"question": "why is the job red?"}),
]


def claude_template(root: str, served: list[str] | str, **extra: Any) -> dict[str, Any]:
    """An anthropic_messages artifact; no max_tokens (the server refuses a request without one: the default)."""
    rule = "Serve always." if served == "*" else f"Serve only when the evidence state is one of: {', '.join(served)}."
    return {
        "provider": "anthropic_messages", "model": "claude-local-ci", "base_url": root,
        "api_key_env": "LLMGATE_TEST_ANTHROPIC_KEY", "temperature": 0, "timeout": 5, "max_retries": 1,
        "prompt": {
            "system": f"You answer questions about CI failures. {rule} "
                      'Reply with JSON: {"route": "SERVE" or "ABSTAIN", "claim": "..."}.',
            "user": "Question: {{ input.question }}\nEvidence state: {{ evidence_state }}",
        },
        **extra,
    }


@pytest.fixture
def claude_experiment(make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMGATE_TEST_ANTHROPIC_KEY", KEY)
    return make_experiment("exp", suites={"main": CASES}, templates={
        "claude-fix-b": claude_template(llm_server.root, ["test_failure_log", "dependency_error"]),
        "claude-fix": claude_template(llm_server.root, ["test_failure_log"]),
        "policy-fix-b": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log", "dependency_error"]},
        "policy-fix": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log"]},
    })


def metrics_of(out: Path) -> dict[str, Any]:
    """The gating figures of each run (its cost figures differ by provider: latency, tokens)."""
    return {t: ({k: v for k, v in r["metrics"].items() if k != "cost"}, r["status"], [c["outcome"] for c in r["cases"]])
            for t, r in runs_by_template(out).items()}


@pytest.mark.usefixtures("claude_experiment")
def test_anthropic_messages_gates_like_the_equivalent_evidence_policy(
    pytester: pytest.Pytester, llm_server: LLMServer, workers: tuple[str, ...]
) -> None:
    result = pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=claude-fix-b",
                                "--llmgate-candidate=claude-fix", "--llmgate-candidate=policy-fix-b",
                                "--llmgate-candidate=policy-fix", *workers)
    result.assert_outcomes(passed=14 + 4, failed=2)  # claude-fix and policy-fix abstain on hold_001: a guardrail
    # (a case item's failure; the 4 run items pass)
    result.stdout.fnmatch_lines(["*UNNECESSARY_ABSTENTION: claude-fix abstained where*"])
    found = metrics_of(pytester.path / ".llmgate")
    assert found["claude-fix-b"] == found["policy-fix-b"]
    assert found["claude-fix"] == found["policy-fix"]
    assert found["claude-fix-b"][1] == "ELIGIBLE_FOR_CANARY_REVIEW"
    assert llm_server.requests == 8
    run = runs_by_template(pytester.path / ".llmgate")["claude-fix-b"]
    check_json(run, "run")
    assert run["params"]["provider"] == "anthropic_messages" and run["params"]["model"] == "claude-local-ci"
    assert run["params"]["record_mode"] == "new_episodes" and run["params"]["trials"] == "1"
    recordings = (pytester.path / "exp" / "recordings" / "claude-fix-b.jsonl").read_text().splitlines()
    assert len(recordings) == 4 and all(json.loads(line)["model"] == "claude-local-ci" for line in recordings)


@pytest.mark.usefixtures("claude_experiment")
def test_replay_with_the_server_stopped_gives_the_same_verdict(
    pytester: pytest.Pytester, llm_server: LLMServer, workers: tuple[str, ...]
) -> None:
    first = pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=claude-fix-b",
                               "--llmgate-out=first")
    first.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.requests == 4
    llm_server.stop()
    replay = pytester.runpytest("exp", "--llmgate-candidate=claude-fix-b", "--llmgate-out=replay", *workers)
    replay.assert_outcomes(passed=4 + 1)  # + the run item
    recorded = runs_by_template(pytester.path / "first")["claude-fix-b"]
    again = runs_by_template(pytester.path / "replay")["claude-fix-b"]
    assert (recorded["metrics"], recorded["status"]) == (again["metrics"], again["status"])
    recordings = pytester.path / "exp" / "recordings" / "claude-fix-b.jsonl"
    assert again["params"]["recordings_sha256"] == hashlib.sha256(recordings.read_bytes()).hexdigest()
    assert again["params"]["record_mode"] == "none"


@pytest.mark.usefixtures("claude_experiment")
def test_a_missing_recording_is_an_error_in_replay_mode(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    """A recordings file that lacks a case's reply: that case is an error (no recordings at all: test_quiet.py)."""
    pytester.runpytest("exp", "--llmgate-candidate=claude-fix-b", "--llmgate-record=new_episodes", "-k", "not req_205")
    recorded = llm_server.requests
    result = pytester.runpytest("exp", "--llmgate-candidate=claude-fix-b")
    result.assert_outcomes(passed=3, errors=1, failed=1)  # + the run item: a case not evaluated
    result.stdout.fnmatch_lines(["*ERROR: claude-fix-b on case req_205 *: not recorded; run with "
                                 "--llmgate-record=new_episodes"])
    assert llm_server.requests == recorded


@pytest.mark.usefixtures("claude_experiment")
def test_repeated_trials_keep_each_route_and_any_unsafe_trial_counts(
    pytester: pytest.Pytester, llm_server: LLMServer
) -> None:
    llm_server.control("alternate")
    result = pytester.runpytest("exp", "--llmgate-candidate=claude-fix-b", "--llmgate-record=new_episodes",
                                "--llmgate-trials=3", "-n", "2")
    assert llm_server.requests == 12
    run = runs_by_template(pytester.path / ".llmgate")["claude-fix-b"]
    check_json(run, "run")
    assert run["params"]["trials"] == "3"
    for entry in run["cases"]:
        assert sorted(entry["trial_routes"]) == ["ABSTAIN", "SERVE", "SERVE"]
    assert all(c["outcome"] == "UNSAFE_CLAIM_SERVED" for c in run["cases"] if c["expected_route"] == "ABSTAIN")
    result.stdout.fnmatch_lines(["*UNSAFE_CLAIM_SERVED: claude-fix-b served where*in 2 of 3 trials"])


@pytest.mark.parametrize(
    ("mode", "delay", "reason"),
    [
        ("slow", 3.0, "timed out after 1s (not retried)"),
        ("429", 0.0, "HTTP 429 from the endpoint (not retried)"),
        ("500", 0.0, "HTTP 500 from the endpoint (not retried)"),
        ("drop", 0.0, "*cannot connect to*"),  # the first call in flight says so; the others point to it
        ("malformed", 0.0, "malformed response from the endpoint*"),
        ("unreadable", 0.0, "unreadable reply: not a JSON object"),
    ],
)
def test_each_fault_is_an_error_with_a_one_line_reason_and_records_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch, mode: str, delay: float, reason: str,
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_ANTHROPIC_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:2]}, templates={
        "claude": claude_template(llm_server.root, ["test_failure_log"], timeout=1, max_retries=0)})
    llm_server.control(mode, delay=delay)
    result = pytester.runpytest("exp", "--llmgate-candidate=claude", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=2, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines([f"*ERROR: claude on case req_205 (suite main, slice s, evidence no_source): {reason}"])
    result.stdout.no_fnmatch_line("*Traceback*")
    run = runs_by_template(pytester.path / ".llmgate")["claude"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["metrics"]["error_count"] == 2
    assert run["cases"][0]["error"].startswith("CallFailed: ")


def test_retries_absorb_a_passing_fault(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_ANTHROPIC_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "claude": claude_template(llm_server.root, ["test_failure_log"], max_retries=2)})
    llm_server.control("429")
    result = pytester.runpytest("exp", "--llmgate-candidate=claude", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    assert llm_server.requests == 3  # the first try and two retries


@pytest.mark.parametrize(("mode", "delay", "reason", "requests"), [
    ("401", 0.0, "HTTP 401 from the endpoint (not retried)", 1),  # the SDK retries no 4xx but 408, 409 and 429
    ("500", 0.0, "HTTP 500 from the endpoint after 2 retries", 3),
    ("drip", 0.2, "reply larger than 4 MB (max_response_mb); not read further", 1),  # not asked again
    ("drip_chunked", 0.2, "timed out after 1s and 2 retries", 3),  # a byte every 0.2 s: the whole reply is bounded
])
def test_what_the_reason_says_was_tried_is_what_was_tried(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch,
    mode: str, delay: float, reason: str, requests: int,
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_ANTHROPIC_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "claude": claude_template(llm_server.root, ["test_failure_log"], timeout=1, max_retries=2, case_timeout=30)})
    llm_server.control(mode, delay=delay)
    try:
        result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=claude", "--llmgate-record=new_episodes",
                                               timeout=60)
    finally:
        llm_server.control("ok")
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines([f"ERROR: claude on case req_205 (suite main, slice s, evidence no_source): {reason}"])
    assert llm_server.requests == requests


def test_a_dead_endpoint_is_one_clear_error_and_records_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch,
    workers: tuple[str, ...],
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_ANTHROPIC_KEY", KEY)
    make_experiment("exp", suites={"main": CASES}, templates={
        "claude": claude_template("http://127.0.0.1:9", ["test_failure_log"], max_retries=0)})
    result = pytester.runpytest("exp", "--llmgate-candidate=claude", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1", *workers)
    result.assert_outcomes(errors=4, failed=1)  # + the run item: incomplete
    result.stdout.no_fnmatch_line("*Traceback*")
    reasons = [line for line in result.stdout.lines if line.startswith("ERROR: claude on case")]
    assert len(reasons) == 4
    assert all("cannot connect to http://127.0.0.1:9" in line for line in reasons)
    processes = 2 if workers else 1  # each process finds out once, then says so without calling again
    assert sum("endpoint unreachable (not called again this session)" in line for line in reasons) >= 4 - processes
    assert runs_by_template(pytester.path / ".llmgate")["claude"]["status"] == "INCOMPLETE_EVALUATION"


@pytest.mark.usefixtures("claude_experiment")
def test_calls_run_concurrently(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    llm_server.control("slow", delay=0.5, reset=True)
    result = pytester.runpytest("exp", "--llmgate-candidate=claude-fix-b", "--llmgate-record=all",
                                "--llmgate-concurrency=4")
    result.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.max_in_flight == 4


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ({"seed": 7}, "seed", "unknown key 'seed' (allowed: template_id, provider, description, case_timeout, model, *)"),
        ({"temperature": 1.5}, "temperature", "temperature: 1.5 is greater than the maximum of 1"),
        ({"max_tokens": 0}, "max_tokens", "max_tokens: 0 is less than the minimum of 1"),
    ],
)
def test_its_settings_are_checked_naming_the_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, extra: dict[str, Any], key: str, message: str
) -> None:
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "claude": claude_template("http://127.0.0.1:9", "*", **extra)})
    lines = (pytester.path / "exp" / "templates" / "claude.yaml").read_text().splitlines()
    line = next(number for number, text in enumerate(lines, start=1) if text.startswith(f"{key}:"))
    result = pytester.runpytest("exp", "--llmgate-candidate=claude")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*exp/templates/claude.yaml:{line}: {message}"])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.usefixtures("claude_experiment")
def test_no_api_key_value_reaches_any_written_file(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=claude-fix-b",
                       "--llmgate-baseline=claude-fix", "--junitxml=junit.xml")
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(p.name == "claude-fix-b.jsonl" for p in written)
    assert not [p for p in written if KEY.encode() in p.read_bytes()]
