"""Provider openai_chat against a real HTTP server on 127.0.0.1, through the real openai SDK."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate import check_json

from .conftest import LLMServer, MakeExperiment, case, runs_by_template

pytest.importorskip("openai", reason="the openai extra is not installed: pip install 'pytest-llmgate[openai]'")
# pytester's in-process runs drop modules first imported inside them; the SDK's HTTP stack caches exception
# classes of its transport module, so import that here, once, for every inner run to share.
for _transport in ("httpcore2", "httpcore"):
    with contextlib.suppress(ImportError):
        __import__(_transport)

KEY = "sk-test-DO-NOT-LEAK-4711"
CASES = [
    case("req_205", "no_source", "ABSTAIN", input={"question": "why did build 4411 fail?"}),
    case("reg_002", "test_failure_log", "SERVE", input={"question": "why did test_login fail?"}),
    case("hold_001", "dependency_error", "SERVE", input={"question": "why did the install step fail?"}),
    case("hold_002", "flaky_signal", "ABSTAIN", input={"question": "why is the job red?"}),
]


def llm_template(url: str, served: list[str] | str, **extra: Any) -> dict[str, Any]:
    rule = "Serve always." if served == "*" else f"Serve only when the evidence state is one of: {', '.join(served)}."
    return {
        "provider": "openai_chat", "model": "local-ci-answerer", "base_url": url, "api_key_env": "LLMGATE_TEST_KEY",
        "temperature": 0, "seed": 7, "max_tokens": 64, "timeout": 5, "max_retries": 1,
        "prompt": {
            "system": f"You answer questions about CI failures. {rule} "
                      'Reply with JSON: {"route": "SERVE" or "ABSTAIN", "claim": "..."}.',
            "user": "Question: {{ input.question }}\nEvidence state: {{ evidence_state }}",
        },
        **extra,
    }


@pytest.fixture
def llm_experiment(make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    return make_experiment("exp", suites={"main": CASES}, templates={
        "llm-fix-b": llm_template(llm_server.url, ["test_failure_log", "dependency_error"]),
        "llm-fix": llm_template(llm_server.url, ["test_failure_log"]),
        "policy-fix-b": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log", "dependency_error"]},
        "policy-fix": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log"]},
    })


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def metrics_of(out: Path) -> dict[str, Any]:
    """The gating figures of each run (its cost figures differ by provider: latency, tokens)."""
    return {t: ({k: v for k, v in r["metrics"].items() if k != "cost"}, r["status"], [c["outcome"] for c in r["cases"]])
            for t, r in runs_by_template(out).items()}


@pytest.mark.usefixtures("llm_experiment")
def test_openai_chat_gives_the_same_metrics_as_the_equivalent_evidence_policy(
    pytester: pytest.Pytester, llm_server: LLMServer, workers: tuple[str, ...]
) -> None:
    result = pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=llm-fix-b",
                                "--llmgate-candidate=llm-fix", "--llmgate-candidate=policy-fix-b",
                                "--llmgate-candidate=policy-fix", *workers)
    result.assert_outcomes(passed=14 + 4, failed=2)  # + 4 run items: a broken guardrail is not a run gate
    found = metrics_of(pytester.path / ".llmgate")
    assert found["llm-fix-b"] == found["policy-fix-b"]
    assert found["llm-fix"] == found["policy-fix"]
    assert llm_server.requests == 8
    run = runs_by_template(pytester.path / ".llmgate")["llm-fix-b"]
    check_json(run, "run")
    assert run["params"]["provider"] == "openai_chat" and run["params"]["model"] == "local-ci-answerer"
    assert run["params"]["record_mode"] == "new_episodes" and run["params"]["trials"] == "1"


@pytest.mark.usefixtures("llm_experiment")
def test_replay_after_recording_makes_no_request_and_names_the_recordings(
    pytester: pytest.Pytester, llm_server: LLMServer
) -> None:
    pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=llm-fix-b", "--llmgate-out=first")
    recorded = llm_server.requests
    assert recorded == 4
    replay = pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b", "--llmgate-out=replay", "-n", "2")
    replay.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.requests == recorded  # zero HTTP requests in replay
    first, again = runs_by_template(pytester.path / "first")["llm-fix-b"], runs_by_template(pytester.path / "replay")["llm-fix-b"]
    assert (first["metrics"], first["status"]) == (again["metrics"], again["status"])
    recordings = pytester.path / "exp" / "recordings" / "llm-fix-b.jsonl"
    import hashlib

    assert again["params"]["recordings_sha256"] == hashlib.sha256(recordings.read_bytes()).hexdigest()
    assert again["params"]["record_mode"] == "none"


@pytest.mark.usefixtures("llm_experiment")
def test_a_missing_recording_is_an_error_in_replay_mode(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    """A recordings file that lacks a case's reply: that case is an error (no recordings at all: test_quiet.py)."""
    pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b", "--llmgate-record=new_episodes", "-k", "not req_205")
    recorded = llm_server.requests
    result = pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b")
    result.assert_outcomes(passed=3, errors=1, failed=1)  # + the run item: a case not evaluated
    result.stdout.fnmatch_lines(["*ERROR: llm-fix-b on case req_205 *: not recorded; run with "
                                 "--llmgate-record=new_episodes"])
    assert llm_server.requests == recorded
    run = runs_by_template(pytester.path / ".llmgate")["llm-fix-b"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["metrics"]["error_count"] == 1


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
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:2]}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], timeout=1, max_retries=0)})
    llm_server.control(mode, delay=delay)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=2, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines([f"*ERROR: llm on case req_205 (suite main, slice s, evidence no_source): {reason}"])
    result.stdout.no_fnmatch_line("*Traceback*")
    run = runs_by_template(pytester.path / ".llmgate")["llm"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["metrics"]["error_count"] == 2
    assert run["cases"][0]["error"].startswith("CallFailed: ")


def test_retries_absorb_a_passing_fault(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], max_retries=2)})
    llm_server.control("429")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    assert llm_server.requests == 3  # the first try and two retries


@pytest.mark.parametrize(("mode", "reason", "requests"), [
    ("401", "HTTP 401 from the endpoint (not retried)", 1),  # the SDK retries no 4xx but 408, 409 and 429
    ("500", "HTTP 500 from the endpoint after 2 retries", 3),
])
def test_the_reason_counts_the_retries_that_were_made(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch,
    mode: str, reason: str, requests: int,
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], max_retries=2)})
    llm_server.control(mode)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines([f"ERROR: llm on case req_205 (suite main, slice s, evidence no_source): {reason}"])
    assert llm_server.requests == requests


def test_an_endpoint_that_keeps_answering_429_is_not_called_again(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five calls in a row refused with 429 after their retries: the candidate stops calling, as for a dead endpoint,
    # and says so once; the other cases are errors at once (a 60-case storm took minutes of backoff).
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    many = [case(f"c{i:02d}", "no_source", "ABSTAIN", input={"question": "q"}) for i in range(12)]
    make_experiment("exp", suites={"main": many}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], max_retries=1)})
    llm_server.control("429")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(errors=12, failed=1)  # + the run item: incomplete
    assert llm_server.requests == 10  # five calls, each tried twice
    reasons = [line for line in result.stdout.lines if line.startswith("ERROR: llm on case")]
    assert reasons[:4] == [f"ERROR: llm on case c{i:02d} (suite main, slice s, evidence no_source): HTTP 429 from "
                           "the endpoint after 1 retry" for i in range(4)]
    assert reasons[4].endswith("HTTP 429 from the endpoint after 1 retry; 5 calls in a row were refused: the "
                               "endpoint is not called again this session")
    assert all(line.endswith("endpoint refusing calls (not called again this session): 5 calls in a row got HTTP "
                             "429 after their retries") for line in reasons[5:])
    assert runs_by_template(pytester.path / ".llmgate")["llm"]["status"] == "INCOMPLETE_EVALUATION"


def test_a_dead_endpoint_is_one_clear_error_and_records_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    make_experiment("exp", suites={"main": CASES}, templates={
        "llm": llm_template("http://127.0.0.1:9/v1", ["test_failure_log"], max_retries=0)})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(errors=4, failed=1)  # + the run item: incomplete
    result.stdout.no_fnmatch_line("*Traceback*")
    # The error sections (the short summary repeats them, in full when CI is set): one line per case.
    reasons = [line for line in result.stdout.lines if line.startswith("ERROR: llm on case")]
    assert len(reasons) == 4
    assert sum("cannot connect to http://127.0.0.1:9/v1" in line for line in reasons) == 4
    assert sum("endpoint unreachable (not called again this session)" in line for line in reasons) == 3
    assert runs_by_template(pytester.path / ".llmgate")["llm"]["status"] == "INCOMPLETE_EVALUATION"


def test_a_dead_endpoint_at_the_default_concurrency_says_cannot_connect_once(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    many = [case(f"c{i:02d}", "no_source", "ABSTAIN", input={"question": "q"}) for i in range(12)]
    make_experiment("exp", suites={"main": many}, templates={
        "llm": llm_template("http://127.0.0.1:9/v1", ["test_failure_log"], max_retries=0)})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=12, failed=1)  # + the run item: incomplete
    reasons = [line for line in result.stdout.lines if line.startswith("ERROR: llm on case")]
    assert len(reasons) == 12
    first = [line for line in reasons if "endpoint unreachable" not in line]
    assert len(first) == 1 and first[0].endswith("cannot connect to http://127.0.0.1:9/v1 (ConnectError)")
    assert sum("endpoint unreachable (not called again this session): cannot connect" in line for line in reasons) == 11


@pytest.mark.parametrize("mode", ["close_idle", "gzip_chunked"])
def test_what_real_servers_do_costs_no_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:
    # close_idle: the server closes each kept-alive connection after its answer, without saying so (as one whose
    # keep-alive timeout is shorter than the client's pause). gzip_chunked: compressed replies in chunks: no retry
    # allowed, an undecoded reply would be an error. A request sent on a connection the server is closing that very
    # moment cannot be told from a dead endpoint by any client: the SDK's retry (one is enough) sends it again on a
    # fresh connection, and the server still answers each case exactly once.
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    make_experiment("exp", suites={"main": CASES}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], max_retries=1 if mode == "close_idle" else 0)})
    llm_server.control(mode)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(passed=3 + 1, failed=1)  # llm serves only test_failure_log: hold_001 is a wrong abstention
    assert llm_server.requests == 4


def test_the_default_transport_goes_through_a_proxy_named_in_the_environment(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], max_retries=0)})
    clear_proxies(monkeypatch)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    via_proxy = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                   "--llmgate-out=proxy")
    via_proxy.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    via_proxy.stdout.fnmatch_lines([f"*cannot connect to {llm_server.url}*"])
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # the endpoint is exempt: the SDK connects directly
    direct = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-out=direct")
    direct.assert_outcomes(passed=1 + 1)  # + the run item
    monkeypatch.delenv("http_proxy")  # the test's own client of the server's /stats
    assert llm_server.requests == 1


@pytest.mark.usefixtures("llm_experiment")
def test_repeated_trials_keep_each_route_and_any_unsafe_trial_counts(
    pytester: pytest.Pytester, llm_server: LLMServer
) -> None:
    llm_server.control("alternate")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b", "--llmgate-record=new_episodes",
                                "--llmgate-trials=3")
    assert llm_server.requests == 12
    run = runs_by_template(pytester.path / ".llmgate")["llm-fix-b"]
    check_json(run, "run")
    assert run["params"]["trials"] == "3"
    for entry in run["cases"]:
        assert sorted(entry["trial_routes"]) == ["ABSTAIN", "SERVE", "SERVE"]
        assert entry["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    abstain_cases = [c for c in run["cases"] if c["expected_route"] == "ABSTAIN"]
    assert all(c["outcome"] == "UNSAFE_CLAIM_SERVED" and c["unsafe_trial_rate"] == pytest.approx(2 / 3, abs=1e-6)
               for c in abstain_cases)
    assert all(c["outcome"] == "UNNECESSARY_ABSTENTION" for c in run["cases"] if c["expected_route"] == "SERVE")
    result.stdout.fnmatch_lines(["*UNSAFE_CLAIM_SERVED: llm-fix-b served where*in 2 of 3 trials"])
    recordings = (pytester.path / "exp" / "recordings" / "llm-fix-b.jsonl").read_text().splitlines()
    assert sorted({json.loads(line)["trial"] for line in recordings}) == [0, 1, 2]


def test_a_prompt_field_the_case_lacks_is_a_clear_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    template = llm_template(llm_server.url, ["test_failure_log"])
    template["prompt"]["user"] = "Question: {{ input.ticket }}\nEvidence state: {{ evidence_state }}"
    make_experiment("exp", suites={"main": CASES[:1]}, templates={"llm": template})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines(["*prompt.user needs {{ input.ticket }}, which case req_205 does not have"])
    assert llm_server.requests == 0


def test_a_prompt_may_not_name_the_expected_route(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer
) -> None:
    template = llm_template(llm_server.url, ["test_failure_log"])
    template["prompt"]["user"] = "Label: {{ expected_route }}"
    make_experiment("exp", suites={"main": CASES[:1]}, templates={"llm": template})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/templates/llm.yaml:*: prompt.user: {{ expected_route }} is not a case field*"])


@pytest.mark.usefixtures("llm_experiment")
def test_no_api_key_value_reaches_any_written_file(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=llm-fix-b",
                       "--llmgate-baseline=llm-fix", "--junitxml=junit.xml")
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(p.name == "llm-fix-b.jsonl" for p in written)
    assert not [p for p in written if KEY.encode() in p.read_bytes()]


SECRET = "hunter2-4711"


def test_credentials_in_base_url_reach_no_record_report_junit_or_terminal(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch,
    workers: tuple[str, ...],
) -> None:
    # A key in the URL's userinfo and in its query string: every message that names the endpoint shows it as
    # http://***@127.0.0.1:9/v1?***, in the records, the redacted report, JUnit and the terminal.
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    url = f"http://user:{SECRET}@127.0.0.1:9/v1?api-key={SECRET}"
    make_experiment("exp", suites={"main": CASES}, templates={
        "llm": llm_template(url, ["test_failure_log"], max_retries=0),
        "policy": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log"]}})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-baseline=policy",
                                "--llmgate-record=new_episodes", "--llmgate-show=full", "--junitxml=junit.xml", "-rA",
                                *workers)
    result.assert_outcomes(errors=4, passed=3, xfailed=1, failed=1)  # + llm's run item
    result.stdout.fnmatch_lines(["*cannot connect to http://***@127.0.0.1:9/v1?*** (ConnectError)*"])
    assert SECRET not in "\n".join(result.outlines + result.errlines)
    templates = pytester.path / "exp" / "templates"
    written = [p for p in pytester.path.rglob("*") if p.is_file() and templates not in p.parents]
    assert {"junit.xml", "report.json"} <= {p.name for p in written}
    assert len([p for p in written if p.parent.name == "runs"]) == 2
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []


def test_a_refused_base_url_is_quoted_without_its_credentials(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "llm": llm_template(f"ftp://user:{SECRET}@127.0.0.1:9/v1?api-key={SECRET}", ["test_failure_log"])})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/templates/llm.yaml:4: base_url: 'ftp://***@127.0.0.1:9/v1?*** is refused*"])
    assert SECRET not in "\n".join(result.outlines + result.errlines)
    assert SECRET not in (pytester.path / "junit.xml").read_text()


def test_a_url_in_a_providers_message_is_shown_without_credentials_or_query() -> None:
    from pytest_llmgate.model.errors import redact_urls

    assert redact_urls(f"cannot connect to http://u:{SECRET}@h:8/v1?key={SECRET} (ConnectError)") == (
        "cannot connect to http://***@h:8/v1?*** (ConnectError)")
    assert redact_urls(f"'https://{SECRET}@h/x#token={SECRET}'") == "'https://***@h/x#***'"
    assert redact_urls(f"http://u:a@b/{SECRET}@h/v1") == "http://***@h/v1"  # an @ or a / in the password
    assert redact_urls("http://127.0.0.1:8000/v1 and sqlite:///tmp/x.db") == "http://127.0.0.1:8000/v1 and sqlite:///tmp/x.db"


@pytest.mark.parametrize("linked", ["folder", "file"])
def test_recordings_linked_out_of_the_experiment_are_neither_read_nor_appended(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch, linked: str,
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", KEY)
    directory = make_experiment("exp", suites={"main": CASES[:1]}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"])})
    recorded = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    recorded.assert_outcomes(passed=1 + 1)  # + the run item
    outside = pytester.path / "outside"
    outside.mkdir()
    (directory / "recordings" / "llm.jsonl").rename(outside / "llm.jsonl")
    if linked == "folder":
        (directory / "recordings").rmdir()
        (directory / "recordings").symlink_to(Path("..", "outside"))
    else:
        (directory / "recordings" / "llm.jsonl").symlink_to(Path("..", "..", "outside", "llm.jsonl"))
    kept = (outside / "llm.jsonl").read_bytes()
    for mode in ("none", "all"):  # replay would read it; record would append to it
        result = pytester.runpytest("exp", "--llmgate-candidate=llm", f"--llmgate-record={mode}")
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(["*exp/recordings*: leads through a link to '*outside*llm.jsonl', which leaves "
                                     "the experiment directory; recordings are read and written only inside it"])
        result.stdout.no_fnmatch_line("*Traceback*")
    assert (outside / "llm.jsonl").read_bytes() == kept
    assert llm_server.requests == 1


@pytest.mark.usefixtures("llm_experiment")
def test_calls_run_concurrently_and_selection_still_works(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    # The server counts the requests it is answering at one time: with a slow endpoint, four cases and
    # --llmgate-concurrency=4, all four are in flight together; with 1, never more than one.
    llm_server.control("slow", delay=0.5, reset=True)
    serial = pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b", "--llmgate-record=all",
                                "--llmgate-concurrency=1", "--llmgate-out=serial")
    serial.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.max_in_flight == 1
    llm_server.control("slow", delay=0.5, reset=True)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b", "--llmgate-record=all",
                                "--llmgate-concurrency=4")
    result.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.max_in_flight == 4  # speed itself is measured in benchmarks/, not asserted here
    subset = pytester.runpytest("exp", "--llmgate-candidate=llm-fix-b", "-k", "hold_001", "-v", "--llmgate-out=k")
    subset.assert_outcomes(passed=1)
    assert llm_server.requests == 4  # the subset replays: prefetching asked for nothing outside it


def test_the_llm_example_replays_with_no_network_and_no_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import shutil

    source = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-llm"
    shutil.copytree(source, pytester.path / "example_suites" / source.name)
    monkeypatch.delenv("LLMGATE_EXAMPLE_API_KEY", raising=False)  # a live call would fail without it
    result = pytester.runpytest("example_suites", "--llmgate-candidate=all", "--llmgate-baseline=ci-answerer-llm-v1")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=6 + 1, xfailed=2)  # + the candidate's run item
    result.stdout.fnmatch_lines(["*frozen: yes (llmgate.lock matches)*",
                                 "*decision: PROMOTE ci-answerer-llm-v2 -> canary_candidate*"])
    run = runs_by_template(pytester.path / ".llmgate")["ci-answerer-llm-v2"]
    recordings = source / "recordings" / "ci-answerer-llm-v2.jsonl"
    assert run["params"]["recordings_sha256"] == hashlib.sha256(recordings.read_bytes()).hexdigest()
