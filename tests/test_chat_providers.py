"""The chat providers, openai_chat and anthropic_messages, against a real HTTP server on 127.0.0.1 speaking each
one's protocol (tests/llm_server.py), through the real SDKs: the same rendering, route reading, record/replay,
trials and fault handling. A test that takes ``chat`` runs once per provider (ids ``openai`` and ``anthropic``);
one about what both share (rendering, redaction, the recordings folder) runs with openai_chat alone."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate import check_json
from pytest_llmgate.model.errors import redact_urls

from .conftest import LLMServer, MakeExperiment, case, runs_by_template

CASES = [
    case("req_205", "no_source", "ABSTAIN", input={"question": "why did build 4411 fail?"}),
    case("reg_002", "test_failure_log", "SERVE", input={"question": "why did test_login fail?"}),
    case("hold_001", "dependency_error", "SERVE", input={"question": "why did the install step fail?"}),
    case("hold_002", "flaky_signal", "ABSTAIN", input={"question": "why is the job red?"}),
]
DEAD = "http://127.0.0.1:9"  # nothing listens there


@dataclass(frozen=True)
class Chat:
    """A chat provider as these tests drive it: its artifact, its key, and where its API lives below a server."""

    provider: str
    sdk: str  # the SDK's import name, the extra's name and the test id
    key_env: str
    key: str
    model: str
    path: str  # openai_chat's base_url ends in /v1; anthropic_messages' does not (its SDK adds /v1/messages)
    settings: dict[str, Any] = field(default_factory=dict)  # what only this provider has

    def base_url(self, root: str) -> str:
        return root + self.path

    def template(self, root: str, served: list[str] | str, **extra: Any) -> dict[str, Any]:
        """An artifact asking the server below ``root`` to serve the ``served`` evidence states (``"*"``: all)."""
        rule = "Serve always." if served == "*" else f"Serve only when the evidence state is one of: {', '.join(served)}."
        return {
            "provider": self.provider, "model": self.model, "base_url": self.base_url(root),
            "api_key_env": self.key_env, "temperature": 0, "timeout": 5, "max_retries": 1, **self.settings,
            "prompt": {
                "system": f"You answer questions about CI failures. {rule} "
                          'Reply with JSON: {"route": "SERVE" or "ABSTAIN", "claim": "..."}.',
                "user": "Question: {{ input.question }}\nEvidence state: {{ evidence_state }}",
            },
            **extra,
        }


OPENAI = Chat("openai_chat", "openai", "LLMGATE_TEST_KEY", "sk-test-DO-NOT-LEAK-4711", "local-ci-answerer", "/v1",
              {"seed": 7, "max_tokens": 64})
# no max_tokens: the server refuses a request without one, so this checks the provider's default
ANTHROPIC = Chat("anthropic_messages", "anthropic", "LLMGATE_TEST_ANTHROPIC_KEY", "sk-ant-test-DO-NOT-LEAK-0815",
                 "claude-local-ci", "")
CHATS = {chat.sdk: chat for chat in (OPENAI, ANTHROPIC)}
SECRET = "hunter2-4711"


def llm_template(url: str, served: list[str] | str, **extra: Any) -> dict[str, Any]:
    """An openai_chat artifact at ``url`` (a base_url ending in /v1), for the other test files."""
    return OPENAI.template(url.removesuffix("/v1"), served, **extra)


@pytest.fixture(params=list(CHATS), ids=list(CHATS))
def chat(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Chat:
    """Each chat provider in turn (parametrize ``chat`` indirectly with a subset), its key in the environment."""
    found = CHATS[request.param]
    pytest.importorskip(found.sdk, reason=f"the {found.sdk} extra is not installed: pip install "
                                          f"'pytest-llmgate[{found.sdk}]'")
    monkeypatch.setenv(found.key_env, found.key)
    return found


only_openai = pytest.mark.parametrize("chat", ["openai"], indirect=True)


@pytest.fixture
def fixes(chat: Chat, make_experiment: MakeExperiment, llm_server: LLMServer) -> Path:
    """Two LLM candidates (``fix-b`` serves two evidence states, ``fix`` one) and the evidence policies that
    decide as they are told to."""
    return make_experiment("exp", suites={"main": CASES}, templates={
        "fix-b": chat.template(llm_server.root, ["test_failure_log", "dependency_error"]),
        "fix": chat.template(llm_server.root, ["test_failure_log"]),
        "policy-fix-b": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log", "dependency_error"]},
        "policy-fix": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log"]},
    })


def one_candidate(make_experiment: MakeExperiment, template: dict[str, Any], cases: int = 1) -> None:
    make_experiment("exp", suites={"main": CASES[:cases]}, templates={"llm": template})


def clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def metrics_of(out: Path) -> dict[str, Any]:
    """The gating figures of each run (its cost figures differ by provider: latency, tokens)."""
    return {t: ({k: v for k, v in r["metrics"].items() if k != "cost"}, r["status"], [c["outcome"] for c in r["cases"]])
            for t, r in runs_by_template(out).items()}


def reasons_of(result: pytest.RunResult, template: str = "llm") -> list[str]:
    """The one-line reason of each case that is an error, as the terminal gives it."""
    return [line for line in result.stdout.lines if line.startswith(f"ERROR: {template} on case")]


@pytest.mark.usefixtures("fixes")
def test_an_llm_candidate_gates_like_the_equivalent_evidence_policy(
    pytester: pytest.Pytester, chat: Chat, llm_server: LLMServer, workers: tuple[str, ...]
) -> None:
    result = pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=fix-b",
                                "--llmgate-candidate=fix", "--llmgate-candidate=policy-fix-b",
                                "--llmgate-candidate=policy-fix", *workers)
    result.assert_outcomes(passed=14 + 4, failed=2)  # fix and policy-fix abstain on hold_001: a broken guardrail
    # fails that case's item, not a run item (the 4 run items pass)
    result.stdout.fnmatch_lines(["*UNNECESSARY_ABSTENTION: fix abstained where*"])
    found = metrics_of(pytester.path / ".llmgate")
    assert found["fix-b"] == found["policy-fix-b"]
    assert found["fix"] == found["policy-fix"]
    assert found["fix-b"][1] == "ELIGIBLE_FOR_CANARY_REVIEW"
    assert llm_server.requests == 8
    run = runs_by_template(pytester.path / ".llmgate")["fix-b"]
    check_json(run, "run")
    assert run["params"]["provider"] == chat.provider and run["params"]["model"] == chat.model
    assert run["params"]["record_mode"] == "new_episodes" and run["params"]["trials"] == "1"
    recordings = (pytester.path / "exp" / "recordings" / "fix-b.jsonl").read_text().splitlines()
    assert len(recordings) == 4 and all(json.loads(line)["model"] == chat.model for line in recordings)


@pytest.mark.usefixtures("fixes")
def test_replay_with_the_server_stopped_gives_the_same_verdict_and_names_the_recordings(
    pytester: pytest.Pytester, chat: Chat, llm_server: LLMServer, workers: tuple[str, ...]
) -> None:
    first = pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=fix-b",
                               "--llmgate-out=first")
    first.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.requests == 4
    llm_server.stop()  # from here on nothing answers: a replay that called would fail
    replay = pytester.runpytest("exp", "--llmgate-candidate=fix-b", "--llmgate-out=replay", *workers)
    replay.assert_outcomes(passed=4 + 1)  # + the run item
    recorded = runs_by_template(pytester.path / "first")["fix-b"]
    again = runs_by_template(pytester.path / "replay")["fix-b"]
    assert (recorded["metrics"], recorded["status"]) == (again["metrics"], again["status"])
    recordings = pytester.path / "exp" / "recordings" / "fix-b.jsonl"
    assert again["params"]["recordings_sha256"] == hashlib.sha256(recordings.read_bytes()).hexdigest()
    assert again["params"]["record_mode"] == "none"


@pytest.mark.parametrize("chat", ["openai"], indirect=True)
def test_two_cases_that_send_the_same_request_replay_their_own_replies_and_latencies(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer,
    workers: tuple[str, ...],
) -> None:
    # stop 36's review: replay kept one line per request key, so two cases asking the same question replayed the
    # last reply and latency for both; a sampled model's verdict (and a latency budget) differed from the live run
    twins = [case(twin, "test_failure_log", "SERVE", input={"question": "why did the nightly fail?"})
             for twin in ("twin_a", "twin_b")]
    make_experiment("exp", suites={"main": twins},
                    templates={"llm": chat.template(llm_server.root, ["test_failure_log"])})
    llm_server.control("alternate")  # the same request is answered SERVE, then ABSTAIN
    live = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=all", "--llmgate-out=live")
    assert llm_server.requests == 2, live.stdout.str()
    llm_server.stop()
    replay = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-out=replay", *workers)

    def per_case(out: str) -> dict[str, Any]:
        run = runs_by_template(pytester.path / out)["llm"]
        return {entry["case_id"]: (entry["outcome"], entry["cost"]["latency_ms"]) for entry in run["cases"]}

    assert per_case("replay") == per_case("live"), replay.stdout.str()
    assert sorted(outcome for outcome, _ in per_case("live").values()) == ["PASS", "UNNECESSARY_ABSTENTION"]
    lines = (pytester.path / "exp" / "recordings" / "llm.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["case_id"] for line in lines) == ["twin_a", "twin_b"]
    assert len({json.loads(line)["key"] for line in lines}) == 1


def test_a_reply_called_for_another_case_is_shown_as_replayed(tmp_path: Path) -> None:
    # the transcript of case b said "live" for the reply case a's call gave it (the review of stop 37)
    from pytest_llmgate.model.costs import Usage
    from pytest_llmgate.model.vocab import RecordMode
    from pytest_llmgate.providers.recordings import Recordings

    recordings = Recordings(tmp_path / "recordings" / "llm.jsonl", RecordMode.NEW_EPISODES)
    request = {"provider": "openai_chat", "model": "m", "messages": [], "trial": 0}
    calls = []
    for case_id in ("a", "b"):
        recordings.reply(request, lambda: calls.append(1) or ('{"route": "SERVE"}', Usage()), case_id)
    assert len(calls) == 1  # b's same request is not called again
    assert recordings.seen(request, "a") == ('{"route": "SERVE"}', True)
    assert recordings.seen(request, "b") == ('{"route": "SERVE"}', False)


def no_reply_shown(question: str, note: str | None = None) -> list[str]:
    """The lines a case whose call gave no reply shows under "what the model said", as a failed call always did."""
    return ["*what the model said (--llmgate-show=none hides this)*", "[[]request: no reply[]]", "system:", "*",
            "user:", f"  Question: {question}", "  Evidence state: *", *([f"note: {note}"] if note else [])]


@pytest.mark.parametrize("fault", ["500", "unreachable"])
def test_a_failed_call_in_record_mode_all_shows_no_reply_never_the_old_recording(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer, fault: str
) -> None:
    # an outside review (the fourteenth stop): with --llmgate-record=all ("always call") a call that failed was shown in
    # the terminal and JUnit, and saved by --llmgate-save-replies, as "replayed" with the reply an earlier session
    # recorded: an old recording presented as what the model said this session
    one_candidate(make_experiment, chat.template(llm_server.root, "*", max_retries=0))  # serves req_205: shown
    first = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=all")
    first.stdout.fnmatch_lines(["[[]request: live[]]", "*", "*", "*", "*", "*", "reply:"])
    (line,) = (pytester.path / "exp" / "recordings" / "llm.jsonl").read_text().splitlines()
    recorded = json.loads(line)["reply"]
    if fault == "500":
        llm_server.control("500")
        reason, note = "HTTP 500 from the endpoint (not retried)", None
    else:
        llm_server.stop()
        reason = f"cannot connect to {chat.base_url(llm_server.root)} (ConnectError)"
        note = f"endpoint unreachable (not called again this session): {reason}"
    junit = pytester.path / "junit.xml"
    again = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=all",
                               "--llmgate-save-replies=replies.json", f"--junitxml={junit}")
    again.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    again.stdout.fnmatch_lines([f"ERROR: llm on case req_205 (suite main, slice s, evidence no_source): {reason}",
                                *no_reply_shown("why did build 4411 fail?", note)])
    again.stdout.no_fnmatch_line("[[]request: replayed[]]")
    again.stdout.no_fnmatch_line("reply:")
    assert recorded not in again.stdout.str()
    (saved,) = json.loads((pytester.path / "replies.json").read_text())["cases"]
    assert saved["outcome"] == "ERROR"
    assert [(trial["source"], trial["reply"], trial.get("note")) for trial in saved["trials"]] == [
        ("no reply", None, note)]
    failure = html.unescape(junit.read_text())
    assert "[request: no reply]" in failure and "[request: replayed]" not in failure and recorded not in failure


def test_a_failed_call_never_shows_the_reply_another_case_recorded_for_the_same_request(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # new_episodes: a case's call failed while its twin's (the same request) answered and was recorded; the failed
    # case was shown "replayed" with its twin's reply, which it never got
    twins = [case(twin, "no_source", "ABSTAIN", input={"question": "why did the nightly fail?"})
             for twin in ("twin_a", "twin_b")]
    make_experiment("exp", suites={"main": twins}, templates={"llm": chat.template(llm_server.root, "*",
                                                                                   max_retries=0)})
    llm_server.control("ok", limit_first=1)  # the first request to arrive is refused, the other one answered
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-save-replies=replies.json")
    assert llm_server.requests == 2, result.stdout.str()
    result.assert_outcomes(errors=1, failed=2)  # the refused twin; the answered one served unsafely; the run item
    result.stdout.fnmatch_lines(["ERROR: llm on case twin_* HTTP 429 from the endpoint (not retried)",
                                 *no_reply_shown("why did the nightly fail?")])
    result.stdout.fnmatch_lines(["UNSAFE_CLAIM_SERVED: llm served where*", "*", "[[]request: live[]]"])
    result.stdout.no_fnmatch_line("[[]request: replayed[]]")
    saved = json.loads((pytester.path / "replies.json").read_text())["cases"]
    assert sorted((c["outcome"], c["trials"][0]["source"], c["trials"][0]["reply"] is None) for c in saved) == [
        ("ERROR", "no reply", True), ("UNSAFE_CLAIM_SERVED", "live", False)]


def test_what_a_session_shows_for_a_request_is_the_reply_its_own_ask_got(tmp_path: Path) -> None:
    # Recordings.seen in each record mode: a recording is shown when it was (or would be) replayed; a request whose
    # live call failed or came after its case stopped waiting shows none, and in mode all neither does a recording
    # no call of this session's gave
    import threading

    from pytest_llmgate.model.costs import Usage
    from pytest_llmgate.model.vocab import RecordMode
    from pytest_llmgate.providers.calls import CallPool, CaseTimeout
    from pytest_llmgate.providers.chat import CallFailed
    from pytest_llmgate.providers.recordings import Recordings

    path = tmp_path / "recordings" / "llm.jsonl"
    request = {"provider": "openai_chat", "model": "m", "messages": [], "trial": 0}
    other = {**request, "trial": 1}
    old, new = '{"route": "ABSTAIN"}', '{"route": "SERVE"}'

    def fails() -> tuple[str, Usage]:
        raise CallFailed("HTTP 500 from the endpoint (not retried)")

    Recordings(path, RecordMode.ALL).reply(request, lambda: (old, Usage()), "a")
    Recordings(path, RecordMode.ALL).reply(other, lambda: (old, Usage()), "a")
    assert Recordings(path, RecordMode.NONE).seen(request, "a") == (old, False)  # replay only: what the model said
    assert Recordings(path, RecordMode.NEW_EPISODES).seen(request, "a") == (old, False)

    always = Recordings(path, RecordMode.ALL)
    assert always.seen(request, "a") == (None, False)  # not asked yet: the file's reply is an earlier session's
    with pytest.raises(CallFailed):
        always.reply(request, fails, "a")
    assert always.seen(request, "a") == (None, False)
    release, done, late = threading.Event(), threading.Event(), []

    def answered_late() -> None:  # a pool's call whose case stopped waiting before the reply came
        release.wait(10)
        late.append(always.reply(other, lambda: (new, Usage()), "a"))
        done.set()

    pool = CallPool(1)
    with pytest.raises(CaseTimeout):
        pool.result("late", answered_late, 0.05)
    release.set()
    assert done.wait(10) and late[0][0] == new
    pool.shutdown()
    assert always.seen(other, "a") == (None, False)
    always.reply(request, lambda: (new, Usage()), "a")  # asked again (a rerun): answered
    assert always.seen(request, "a") == (new, True)
    with pytest.raises(CallFailed):
        always.reply(request, fails, "a")  # and once more: failed
    assert always.seen(request, "a") == (None, False)

    episodes = Recordings(tmp_path / "recordings" / "fresh.jsonl", RecordMode.NEW_EPISODES)
    with pytest.raises(CallFailed):
        episodes.reply(request, fails, "a")
    episodes.reply(request, lambda: (new, Usage()), "b")  # the same request, recorded for case b
    assert episodes.seen(request, "a") == (None, False) and episodes.seen(request, "b") == (new, True)
    assert episodes.reply(request, fails, "a")[0] == new  # a rerun of case a replays b's reply, as it says then
    assert episodes.seen(request, "a") == (new, False)


@pytest.mark.usefixtures("fixes")
def test_a_missing_recording_is_an_error_in_replay_mode(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    """A recordings file that lacks a case's reply: that case is an error (no recordings at all: test_quiet.py)."""
    pytester.runpytest("exp", "--llmgate-candidate=fix-b", "--llmgate-record=new_episodes", "-k", "not req_205")
    recorded = llm_server.requests
    result = pytester.runpytest("exp", "--llmgate-candidate=fix-b")
    result.assert_outcomes(passed=3, errors=1, failed=1)  # + the run item: a case not evaluated
    result.stdout.fnmatch_lines(["*ERROR: fix-b on case req_205 *: not recorded; run with "
                                 "--llmgate-record=new_episodes"])
    assert llm_server.requests == recorded
    run = runs_by_template(pytester.path / ".llmgate")["fix-b"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["metrics"]["error_count"] == 1


@pytest.mark.usefixtures("fixes")
def test_repeated_trials_keep_each_route_and_any_unsafe_trial_counts(
    pytester: pytest.Pytester, llm_server: LLMServer, workers: tuple[str, ...]
) -> None:
    llm_server.control("alternate")
    result = pytester.runpytest("exp", "--llmgate-candidate=fix-b", "--llmgate-record=new_episodes",
                                "--llmgate-trials=3", *workers)
    assert llm_server.requests == 12
    run = runs_by_template(pytester.path / ".llmgate")["fix-b"]
    check_json(run, "run")
    assert run["params"]["trials"] == "3"
    for entry in run["cases"]:
        assert sorted(entry["trial_routes"]) == ["ABSTAIN", "SERVE", "SERVE"]
        assert entry["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    abstain_cases = [c for c in run["cases"] if c["expected_route"] == "ABSTAIN"]
    assert all(c["outcome"] == "UNSAFE_CLAIM_SERVED" and c["unsafe_trial_rate"] == pytest.approx(2 / 3, abs=1e-6)
               for c in abstain_cases)
    assert all(c["outcome"] == "UNNECESSARY_ABSTENTION" for c in run["cases"] if c["expected_route"] == "SERVE")
    result.stdout.fnmatch_lines(["*UNSAFE_CLAIM_SERVED: fix-b served where*in 2 of 3 trials"])
    recordings = (pytester.path / "exp" / "recordings" / "fix-b.jsonl").read_text().splitlines()
    assert sorted({json.loads(line)["trial"] for line in recordings}) == [0, 1, 2]


@pytest.mark.parametrize(
    ("mode", "delay", "reason"),
    [
        ("slow", 3.0, "timed out after 1s (not retried)"),
        ("429", 0.0, "HTTP 429 from the endpoint (not retried)"),
        ("500", 0.0, "HTTP 500 from the endpoint (not retried)"),
        ("drop", 0.0, "connection dropped by the endpoint (RemoteProtocolError) (not retried)"),  # not a dead one
        ("malformed", 0.0, "malformed response from the endpoint*"),
        ("unreadable", 0.0, "unreadable reply: not a JSON object"),
        ("no_text", 0.0, "unreadable reply: no text (the endpoint's reply had no message content)"),
    ],
)
def test_each_fault_is_an_error_with_a_one_line_reason_and_records_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer,
    mode: str, delay: float, reason: str,
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], timeout=1, max_retries=0), 2)
    llm_server.control(mode, delay=delay)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=2, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines([f"*ERROR: llm on case req_205 (suite main, slice s, evidence no_source): {reason}"])
    result.stdout.no_fnmatch_line("*Traceback*")
    run = runs_by_template(pytester.path / ".llmgate")["llm"]
    assert run["status"] == "INCOMPLETE_EVALUATION" and run["metrics"]["error_count"] == 2
    assert run["cases"][0]["error"].startswith("CallFailed: ")
    costs = [entry.get("cost") for entry in run["cases"]]
    if mode in ("unreadable", "no_text"):  # answered and paid: the call counts (its cost was dropped, shown '-')
        assert all(cost["calls"] == 1 and cost["input_tokens"] > 0 for cost in costs)
        assert run["metrics"]["cost"]["calls"] == 2
        # and recorded: a replay says what the live run said, and costs what it cost, with no call
        replayed = pytester.runpytest("exp", "--llmgate-candidate=llm")
        replayed.stdout.fnmatch_lines([f"*ERROR: llm on case req_205 (suite main, slice s, evidence no_source): {reason}"])
        assert llm_server.requests == 2
        again = runs_by_template(pytester.path / ".llmgate")["llm"]
        assert again["metrics"]["cost"]["calls"] == 2 and again["status"] == "INCOMPLETE_EVALUATION"
    else:  # no reply: no call measured
        assert costs == [None, None] and "cost" not in run["metrics"]


def test_a_reply_whose_route_quotes_the_request_leaves_no_trace_of_it_in_what_the_gate_writes(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # protects: the route's value was quoted in the error ("route 'maybe: Question: why did build 4411 fail?...'"),
    # which reaches the record, the redacted report and JUnit: a model that echoes its input leaked it there
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], max_retries=0))
    llm_server.control("echo")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--junitxml=junit.xml", "--llmgate-show=none")
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines(["*ERROR: llm on case req_205 *: unreadable reply: its route is not SERVE or ABSTAIN "
                                 "(a text of * character(s))"])
    written = [path for path in pytester.path.rglob("*") if path.is_file() and path.suffix in (".json", ".xml")]
    assert {path.name for path in written} >= {"report.json", "junit.xml"} and len(written) >= 4
    for path in written:
        assert "build 4411" not in path.read_text(encoding="utf-8"), path
    assert "build 4411" not in result.stdout.str()  # --llmgate-show=none: not in the terminal either


@pytest.mark.parametrize("chat", ["openai"], indirect=True)
def test_what_the_model_was_sent_and_said_cannot_drive_the_terminal(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # stop 36: an escape sequence or a bidi override in a case's input (echoed by a model, say) reached the
    # terminal as it was: it could clear the screen, recolour or reorder what the reviewer reads
    question = "why did \x1b[2Jbuild \u202e4411 fail?\r"
    make_experiment("exp", suites={"main": [case("req_205", "no_source", "ABSTAIN", input={"question": question})]},
                    templates={"llm": chat.template(llm_server.root, "*")})  # serves: an unsafe claim, shown
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(failed=1, passed=1)  # the case; the run item (its guardrail failed on the case)
    text = result.stdout.str()
    assert "\x1b" not in text and "\u202e" not in text and "\r" not in text
    assert "user:" in text.splitlines() and "Question: why did \\u001b[2Jbuild \\u202e4411 fail?\\u000d" in text


def test_debug_logs_of_the_sdk_and_httpx_do_not_show_a_key_in_the_base_url(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # stop 36: httpx's own DEBUG line ("HTTP Request: POST http://user:KEY@host/...") showed the credentials
    root = llm_server.root.replace("http://", "http://gate:s3cret-pw@")
    one_candidate(make_experiment, chat.template(root, ["test_failure_log"]))
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "-o", "log_cli=true", "--log-cli-level=DEBUG")
    text = result.stdout.str() + result.stderr.str()
    assert "HTTP Request: POST http://***@127.0.0.1:" in text  # the line is there, masked
    assert "s3cret-pw" not in text


def test_a_dropped_connection_fails_its_call_and_the_endpoint_is_still_called(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # protects: an endpoint that hangs up is not a dead one: each case is asked, each says what happened
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], max_retries=1), 2)
    llm_server.control("drop")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(errors=2, failed=1)
    assert llm_server.requests == 4  # both cases, each with its retry
    result.stdout.fnmatch_lines(["*: connection dropped by the endpoint (RemoteProtocolError) after 1 retry"] * 2)
    result.stdout.no_fnmatch_line("*endpoint unreachable*")


def test_retries_absorb_a_passing_fault(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], max_retries=2))
    llm_server.control("ok", limit_first=1)  # a 429 (retry after a second), then the answer
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(passed=1 + 1)  # + the run item
    assert llm_server.requests == 2  # the first try and its retry
    assert runs_by_template(pytester.path / ".llmgate")["llm"]["metrics"]["cost"]["rate_limited"] == 1


@pytest.mark.parametrize(("mode", "delay", "reason", "requests"), [
    ("401", 0.0, "HTTP 401 from the endpoint (not retried)", 1),  # the SDKs retry no 4xx but 408, 409 and 429
    ("429", 0.0, "HTTP 429 from the endpoint after 2 retries", 3),
    ("500", 0.0, "HTTP 500 from the endpoint after 2 retries", 3),
    pytest.param("drip", 0.1, "reply larger than 4 MB (max_response_mb); not read further", 1,  # not asked again
                 marks=pytest.mark.slow),
    pytest.param("drip_chunked", 0.1, "timed out after 0.5s and 2 retries", 3,  # a byte every 0.1 s: the whole
                 marks=pytest.mark.slow),                                           # reply is bounded
])
def test_what_the_reason_says_was_tried_is_what_was_tried(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer,
    mode: str, delay: float, reason: str, requests: int,
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], timeout=0.5, max_retries=2,
                                                 case_timeout=30))
    llm_server.control(mode, delay=delay)
    args = ("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    # a dripping reply in a process of its own: whatever is left of it ends with that process
    result = (pytester.runpytest_subprocess(*args, timeout=60) if mode.startswith("drip")
              else pytester.runpytest(*args))
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines([f"ERROR: llm on case req_205 (suite main, slice s, evidence no_source): {reason}"])
    assert llm_server.requests == requests


def test_an_endpoint_that_keeps_answering_429_is_not_called_again(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # Five calls in a row refused with 429 after their retries: the candidate stops calling, as for a dead endpoint,
    # and says so once; the other cases are errors at once (a 60-case storm took minutes of backoff).
    many = [case(f"c{i:02d}", "no_source", "ABSTAIN", input={"question": "q"}) for i in range(12)]
    make_experiment("exp", suites={"main": many}, templates={
        "llm": chat.template(llm_server.root, ["test_failure_log"], max_retries=1)})
    llm_server.control("429")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(errors=12, failed=1)  # + the run item: incomplete
    assert llm_server.requests == 10  # five calls, each tried twice
    reasons = reasons_of(result)
    assert reasons[:4] == [f"ERROR: llm on case c{i:02d} (suite main, slice s, evidence no_source): HTTP 429 from "
                           "the endpoint after 1 retry" for i in range(4)]
    assert reasons[4].endswith("HTTP 429 from the endpoint after 1 retry; 5 calls in a row were refused: the "
                               "endpoint is not called again this session")
    assert all(line.endswith("endpoint refusing calls (not called again this session): 5 calls in a row got HTTP "
                             "429 after their retries") for line in reasons[5:])
    assert runs_by_template(pytester.path / ".llmgate")["llm"]["status"] == "INCOMPLETE_EVALUATION"


def test_refusals_between_answers_do_not_stop_the_endpoint(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # Every other call is refused after its retries, six in all: never five in a row, so every call is made.
    many = [case(f"c{i:02d}", "no_source", "ABSTAIN", input={"question": f"[429] q{i}" if i % 2 == 0 else f"q{i}"})
            for i in range(12)]
    make_experiment("exp", suites={"main": many}, templates={
        "llm": chat.template(llm_server.root, ["test_failure_log"], max_retries=1)})
    llm_server.control("429_marked")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(passed=6, errors=6, failed=1)  # + the run item: incomplete
    assert llm_server.requests == 6 * 2 + 6  # each refused call tried twice, each answered one once
    reasons = reasons_of(result)
    assert reasons == [f"ERROR: llm on case c{i:02d} (suite main, slice s, evidence no_source): HTTP 429 from "
                       "the endpoint after 1 retry" for i in range(0, 12, 2)]


def test_a_dead_endpoint_is_one_clear_error_and_records_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, workers: tuple[str, ...]
) -> None:
    one_candidate(make_experiment, chat.template(DEAD, ["test_failure_log"], max_retries=0), 4)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1", *workers)
    result.assert_outcomes(errors=4, failed=1)  # + the run item: incomplete
    result.stdout.no_fnmatch_line("*Traceback*")
    # The error sections (the short summary repeats them, in full when CI is set): one line per case.
    reasons = reasons_of(result)
    assert len(reasons) == 4
    assert all(f"cannot connect to {chat.base_url(DEAD)}" in line for line in reasons)
    processes = 2 if workers else 1  # each process finds out once, then says so without calling again
    assert sum("endpoint unreachable (not called again this session)" in line for line in reasons) == 4 - processes
    assert runs_by_template(pytester.path / ".llmgate")["llm"]["status"] == "INCOMPLETE_EVALUATION"


def test_a_dead_endpoint_at_the_default_concurrency_says_cannot_connect_once(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat
) -> None:
    many = [case(f"c{i:02d}", "no_source", "ABSTAIN", input={"question": "q"}) for i in range(12)]
    make_experiment("exp", suites={"main": many}, templates={
        "llm": chat.template(DEAD, ["test_failure_log"], max_retries=0)})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=12, failed=1)  # + the run item: incomplete
    reasons = reasons_of(result)
    assert len(reasons) == 12
    first = [line for line in reasons if "endpoint unreachable" not in line]
    assert len(first) == 1 and first[0].endswith(f"cannot connect to {chat.base_url(DEAD)} (ConnectError)")
    assert sum("endpoint unreachable (not called again this session): cannot connect" in line for line in reasons) == 11


@pytest.mark.parametrize("mode", ["close_idle", "gzip_chunked"])
def test_what_real_servers_do_costs_no_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer, mode: str,
) -> None:
    # close_idle: the server closes each kept-alive connection after its answer, without saying so (as one whose
    # keep-alive timeout is shorter than the client's pause). gzip_chunked: compressed replies in chunks: no retry
    # allowed, an undecoded reply would be an error. A request sent on a connection the server is closing that very
    # moment cannot be told from a dead endpoint by any client: the SDK's retry (one is enough) sends it again on a
    # fresh connection, and the server still answers each case exactly once.
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"],
                                                 max_retries=1 if mode == "close_idle" else 0), 4)
    llm_server.control(mode)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-concurrency=1")
    result.assert_outcomes(passed=3 + 1, failed=1)  # llm serves only test_failure_log: hold_001 is a wrong abstention
    assert llm_server.requests == 4


def test_the_default_transport_goes_through_a_proxy_named_in_the_environment(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], max_retries=0))
    clear_proxies(monkeypatch)
    monkeypatch.setenv("http_proxy", DEAD)
    via_proxy = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                   "--llmgate-out=proxy")
    via_proxy.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    via_proxy.stdout.fnmatch_lines([f"*cannot connect to {chat.base_url(llm_server.root)}*"])
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # the endpoint is exempt: the SDK connects directly
    direct = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-out=direct")
    direct.assert_outcomes(passed=1 + 1)  # + the run item
    monkeypatch.delenv("http_proxy")  # the test's own client of the server's /stats
    assert llm_server.requests == 1


@pytest.mark.usefixtures("fixes")
def test_calls_run_concurrently_and_selection_still_works(pytester: pytest.Pytester, llm_server: LLMServer) -> None:
    # The server counts the requests it is answering at one time: with a slow endpoint, four cases and
    # --llmgate-concurrency=4, all four are in flight together; with 1, never more than one.
    llm_server.control("slow", delay=0.1, reset=True)
    serial = pytester.runpytest("exp", "--llmgate-candidate=fix-b", "--llmgate-record=all",
                                "--llmgate-concurrency=1", "--llmgate-out=serial")
    serial.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.max_in_flight == 1
    llm_server.control("slow", delay=0.5, reset=True)  # time enough for all four to be in flight together
    result = pytester.runpytest("exp", "--llmgate-candidate=fix-b", "--llmgate-record=all",
                                "--llmgate-concurrency=4")
    result.assert_outcomes(passed=4 + 1)  # + the run item
    assert llm_server.max_in_flight == 4  # speed itself is measured in benchmarks/, not asserted here
    subset = pytester.runpytest("exp", "--llmgate-candidate=fix-b", "--llmgate-record=all", "-k", "hold_001", "-v",
                                "--llmgate-out=k")
    subset.assert_outcomes(passed=1)
    assert llm_server.requests == 4 + 1  # the subset's one call: prefetching asked for nothing outside it


@pytest.mark.parametrize(("chat", "extra", "key", "message"), [
    ("openai", {"top_k": 5}, "top_k",
     "unknown key 'top_k' (allowed: template_id, provider, description, case_timeout, model, *)"),
    ("openai", {"temperature": -0.5}, "temperature", "temperature: -0.5 is less than the minimum of 0"),
    ("anthropic", {"seed": 7}, "seed",
     "unknown key 'seed' (allowed: template_id, provider, description, case_timeout, model, *)"),
    ("anthropic", {"temperature": 1.5}, "temperature", "temperature: 1.5 is greater than the maximum of 1"),
    ("anthropic", {"max_tokens": 0}, "max_tokens", "max_tokens: 0 is less than the minimum of 1"),
], indirect=["chat"], ids=["openai-unknown-key", "openai-temperature", "anthropic-unknown-key",
                             "anthropic-temperature", "anthropic-max-tokens"])
def test_its_settings_are_checked_naming_the_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, extra: dict[str, Any], key: str,
    message: str,
) -> None:
    one_candidate(make_experiment, chat.template(DEAD, "*", **extra))
    lines = (pytester.path / "exp" / "templates" / "llm.yaml").read_text().splitlines()
    line = next(number for number, text in enumerate(lines, start=1) if text.startswith(f"{key}:"))
    result = pytester.runpytest("exp", "--llmgate-candidate=llm")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*exp/templates/llm.yaml:{line}: {message}"])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.usefixtures("fixes")
def test_no_api_key_value_reaches_any_written_file(pytester: pytest.Pytester, chat: Chat) -> None:
    pytester.runpytest("exp", "--llmgate-record=new_episodes", "--llmgate-candidate=fix-b",
                       "--llmgate-baseline=fix", "--junitxml=junit.xml")
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(p.name == "fix-b.jsonl" for p in written)
    assert not [p for p in written if chat.key.encode() in p.read_bytes()]


# What follows is shared by both providers (rendering, redaction, the recordings folder): openai_chat alone.


@only_openai
def test_a_prompt_field_the_case_lacks_is_a_clear_error(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    template = chat.template(llm_server.root, ["test_failure_log"])
    template["prompt"]["user"] = "Question: {{ input.ticket }}\nEvidence state: {{ evidence_state }}"
    one_candidate(make_experiment, template)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=1, failed=1)  # + the run item: incomplete
    result.stdout.fnmatch_lines(["*prompt.user needs {{ input.ticket }}, which case req_205 does not have"])
    assert llm_server.requests == 0


def test_a_placeholder_naming_a_mapping_renders_it_as_json_with_sorted_keys() -> None:
    # protects: a prompt (so its recording key) does not depend on the order a suite wrote its input's keys in
    from pytest_llmgate.providers.render import render

    view = {"input": {"b": 1, "a": [2, {"d": 3, "c": "x"}]}, "evidence_state": "log"}
    assert render("{{ input }} / {{ evidence_state }}", view) == '{"a": [2, {"c": "x", "d": 3}], "b": 1} / log'


@only_openai
def test_a_prompt_may_not_name_the_expected_route(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat
) -> None:
    template = chat.template(DEAD, ["test_failure_log"])
    template["prompt"]["user"] = "Label: {{ expected_route }}"
    one_candidate(make_experiment, template)
    result = pytester.runpytest("exp", "--llmgate-candidate=llm")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/templates/llm.yaml:*: prompt.user: {{ expected_route }} is not a case field*"])


@only_openai
def test_credentials_in_base_url_reach_no_record_report_junit_or_terminal(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, workers: tuple[str, ...],
) -> None:
    # A key in the URL's userinfo and in its query string: every message that names the endpoint shows it as
    # http://***@127.0.0.1:9/v1?***, in the records, the redacted report, JUnit and the terminal.
    url = f"http://user:{SECRET}@127.0.0.1:9/v1?api-key={SECRET}"
    make_experiment("exp", suites={"main": CASES}, templates={
        "llm": chat.template("", ["test_failure_log"], base_url=url, max_retries=0),
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


@only_openai
def test_a_refused_base_url_is_quoted_without_its_credentials(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat
) -> None:
    one_candidate(make_experiment, chat.template(
        "", ["test_failure_log"], base_url=f"ftp://user:{SECRET}@127.0.0.1:9/v1?api-key={SECRET}"))
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--junitxml=junit.xml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/templates/llm.yaml:4: base_url: 'ftp://***@127.0.0.1:9/v1?*** is refused*"])
    assert SECRET not in "\n".join(result.outlines + result.errlines)
    assert SECRET not in (pytester.path / "junit.xml").read_text()


def test_a_url_in_a_providers_message_is_shown_without_credentials_or_query() -> None:
    assert redact_urls(f"cannot connect to http://u:{SECRET}@h:8/v1?key={SECRET} (ConnectError)") == (
        "cannot connect to http://***@h:8/v1?*** (ConnectError)")
    assert redact_urls(f"'https://{SECRET}@h/x#token={SECRET}'") == "'https://***@h/x#***'"
    assert redact_urls(f"http://u:a@b/{SECRET}@h/v1") == "http://***"  # an @ and a / in the password: all masked
    # an @ past the host, in the query or fragment, never unmasks what follows it
    assert redact_urls(f"https://api.example.com/v1/chat?user=me@corp.com&api-key={SECRET}") == "https://***"
    assert redact_urls(f"http://h/x#a@b&token={SECRET}") == "http://***"
    assert redact_urls("http://127.0.0.1:8000/v1 and sqlite:///tmp/x.db") == "http://127.0.0.1:8000/v1 and sqlite:///tmp/x.db"
    for odd in ("'", '"', "<", ">", "`"):  # a password with a quote or a bracket (it was shown up to that character)
        assert redact_urls(f"cannot connect to http://u:{SECRET}{odd}x@127.0.0.1:1/v1 (ConnectError)") == (
            "cannot connect to http://***@127.0.0.1:1/v1 (ConnectError)")
    assert redact_urls("at 'http://host/v1' (ConnectError)") == "at 'http://host/v1' (ConnectError)"


def test_a_known_addresss_secrets_are_masked_wherever_a_message_repeats_them() -> None:
    uri = f"http://u:pa%40ss-{SECRET}@127.0.0.1:1/mlflow?api_key={SECRET}2"  # the password as a URL writes it
    said = (f"mlflow ({redact_urls(uri)}): Max retries exceeded with url: /mlflow?api_key={SECRET}2/api/2.0/x "
            f"(password pa@ss-{SECRET})")
    assert redact_urls(said, uri) == ("mlflow (http://***@127.0.0.1:1/mlflow?***): Max retries exceeded with url: "
                                      "/mlflow?***/api/2.0/x (password ***)")
    assert redact_urls(redact_urls(said, uri)) == redact_urls(said, uri)  # twice: the "): " after *** stays


@only_openai
@pytest.mark.parametrize("linked", ["folder", "file"])
def test_recordings_linked_out_of_the_experiment_are_neither_read_nor_appended(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer, linked: str,
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"]))
    directory = pytester.path / "exp"
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


def test_the_llm_example_replays_with_no_network_and_no_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai", reason="the openai extra is not installed: pip install 'pytest-llmgate[openai]'")
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


@only_openai
def test_once_with_a_recordings_file_replays_only(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"]), 2)
    pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=once", "-k", "not req_205")
    recorded = llm_server.requests
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=once")
    result.stdout.fnmatch_lines(["*ERROR: llm on case req_205 *: not recorded; run with --llmgate-record=new_episodes"])
    assert llm_server.requests == recorded


@only_openai
def test_a_placeholder_error_names_the_prompt_line(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    template = chat.template(llm_server.root, ["test_failure_log"])
    template["prompt"]["user"] = "Label: {{ expected_route }}"
    one_candidate(make_experiment, template)
    lines = (pytester.path / "exp" / "templates" / "llm.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.lstrip().startswith("user:"))
    result = pytester.runpytest("exp", "--llmgate-candidate=llm")
    result.stdout.fnmatch_lines(
        [f"*exp/templates/llm.yaml:{line}: prompt.user: {{{{ expected_route }}}} is not a case field*"])


def test_a_retry_after_longer_than_the_timeout_is_not_waited_for(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], timeout=0.5, max_retries=2))
    llm_server.control("ok", limit_first=1)  # a 429 with Retry-After: 1
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    result.assert_outcomes(errors=1, failed=1)
    result.stdout.fnmatch_lines(["*: HTTP 429 from the endpoint: Retry-After 1s is longer than the timeout (0.5s)"])
    assert llm_server.requests == 1


def test_a_retry_after_given_as_a_date_is_read_as_the_wait_it_asks_for() -> None:
    # RFC 9110 allows an HTTP date; both SDKs wait until it, so it must be checked against the timeout as seconds are
    from email.utils import formatdate

    from pytest_llmgate.providers.chat import retry_after_wait

    later = retry_after_wait({"retry-after": formatdate(time.time() + 20, usegmt=True)})
    assert later is not None and 17 < later <= 20
    assert retry_after_wait({"retry-after": formatdate(time.time() - 60, usegmt=True)}) == 0.0
    assert retry_after_wait({"retry-after": "2"}) == 2.0 and retry_after_wait({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_wait({"retry-after": "soon"}) is None and retry_after_wait({}) is None
    # as the SDKs read them: an unreadable retry-after-ms leaves retry-after to say it; a date is never milliseconds
    assert retry_after_wait({"retry-after-ms": "bogus", "retry-after": "5"}) == 5.0
    assert retry_after_wait({"retry-after-ms": formatdate(time.time() + 3600, usegmt=True)}) is None


def test_a_reply_that_came_after_its_case_stopped_waiting_is_not_recorded(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, chat: Chat, llm_server: LLMServer
) -> None:
    # the live run said ERROR (case_timeout) and counted no call; the late reply was appended all the same, and the
    # replay then said PASS: not the verdict it replays
    one_candidate(make_experiment, chat.template(llm_server.root, ["test_failure_log"], timeout=5, max_retries=0,
                                                 case_timeout=0.5))
    llm_server.control("slow", delay=1.5)
    live = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    live.stdout.fnmatch_lines(["*ERROR: llm on case req_205 *: no answer within 0.5s (case_timeout)*"])
    deadline = time.monotonic() + 10
    while not llm_server.stats["usages"] and time.monotonic() < deadline:  # until the server sent the late reply
        time.sleep(0.1)
    time.sleep(0.5)  # and the abandoned call has read it
    recordings = pytester.path / "exp" / "recordings" / "llm.jsonl"
    assert not recordings.exists() or recordings.read_text() == ""
    assert live.ret == pytest.ExitCode.TESTS_FAILED
    replayed = pytester.runpytest("exp", "--llmgate-candidate=llm")  # nothing to replay: no verdict either way
    assert replayed.ret == pytest.ExitCode.USAGE_ERROR
    replayed.stderr.fnmatch_lines(["*llm (exp/templates/llm.yaml) has no recordings to replay*"])
