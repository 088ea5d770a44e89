"""What a candidate costs: tokens and latency against the loopback servers and in replay, prices from the list and
from an override, budgets, and 429s absorbed with the endpoint's window backing off and recovering."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pytest_llmgate import check_json
from pytest_llmgate.model.costs import (
    Budget,
    CostMetrics,
    Price,
    Usage,
    case_cost,
    cost_metrics,
    over_budget,
    percentile,
    usd,
)
from pytest_llmgate.model.vocab import UnknownFigures
from pytest_llmgate.providers.calls import Pace, Throttles, Window

from .conftest import LLMServer, MakeExperiment, case, read_report, runs_by_template, write_experiment

for _sdk in ("openai", "anthropic"):
    pytest.importorskip(_sdk, reason=f"the {_sdk} extra is not installed")

CASES = [
    case("req_205", "no_source", "ABSTAIN", input={"question": "why did build 4411 fail?"}),
    case("reg_002", "test_failure_log", "SERVE", input={"question": "why did test_login fail on main?"}),
    case("hold_001", "dependency_error", "SERVE", input={"question": "why did the install step fail?"}),
    case("hold_002", "flaky_signal", "ABSTAIN", input={"question": "why is the job red?"}),
]
SERVED = "Serve only when the evidence state is one of: test_failure_log, dependency_error."
DELAY = 0.05  # the server's delay per reply: every measured latency is at least this


def template(provider: str, server: LLMServer, **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider, "model": "local-ci-answerer", "api_key_env": "LLMGATE_TEST_KEY",
        "base_url": server.url if provider == "openai_chat" else server.root,
        "temperature": 0, "max_tokens": 64, "timeout": 5, "max_retries": 1,
        "prompt": {"system": f"You answer questions about CI failures. {SERVED} Reply with JSON.",
                   "user": "Question: {{ input.question }}\nEvidence state: {{ evidence_state }}"},
        **extra,
    }


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-costs")
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def reported(server: LLMServer) -> dict[str, dict[str, Any]]:
    """The usage the server reported, by the question of the case it answered."""
    found = {}
    for entry in server.stats["usages"]:
        for item in CASES:
            if item["input"]["question"] in entry["user"]:
                found[item["case_id"]] = entry["usage"]
    return found


def expected_tokens(provider: str, usage: dict[str, Any]) -> dict[str, int | None]:
    if provider == "openai_chat":
        return {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
                "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]}
    return {"input_tokens": usage["input_tokens"] + usage["cache_read_input_tokens"]
            + usage["cache_creation_input_tokens"],
            "output_tokens": usage["output_tokens"], "cached_tokens": usage["cache_read_input_tokens"],
            "reasoning_tokens": None}


# -- end to end against the loopback servers -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("provider", ["openai_chat", "anthropic_messages"])
def test_tokens_and_latency_are_the_server_s_and_the_clock_s_and_replay_gives_the_same(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, provider: str
) -> None:
    make_experiment("exp", suites={"main": CASES}, templates={"llm": template(provider, llm_server)})
    llm_server.control(delay=DELAY, reset=True)
    started = time.perf_counter()
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-out=live", "-p", "no:cacheprovider")
    wall_ms = (time.perf_counter() - started) * 1000
    result.assert_outcomes(passed=4 + 1)  # + the run item
    live = runs_by_template(pytester.path / "live")["llm"]
    check_json(live, "run")
    server = reported(llm_server)
    assert len(server) == 4
    for entry in live["cases"]:
        cost = entry["cost"]
        assert {k: cost[k] for k in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")} == (
            expected_tokens(provider, server[entry["case_id"]])
        )
        assert DELAY * 1000 <= cost["latency_ms"] < wall_ms  # the clock's: at least the server's delay
        assert cost["calls"] == 1 and cost["rate_limited"] == 0 and cost["cost_usd"] is None  # an unpriced model
    metrics = live["metrics"]["cost"]
    for key in ("input_tokens", "output_tokens", "cached_tokens"):
        assert metrics[key] == sum(entry["cost"][key] for entry in live["cases"])
    latencies = sorted(entry["cost"]["latency_ms"] for entry in live["cases"])
    assert (metrics["latency_p50_ms"], metrics["latency_p95_ms"], metrics["latency_max_ms"]) == (
        latencies[1], latencies[3], latencies[3]  # nearest rank over the four calls
    )
    assert metrics["output_tokens_per_case"] == metrics["output_tokens"] / 4
    assert metrics["cost_usd"] is None and metrics["cost_per_case_usd"] is None
    assert live["suite_metrics"]["main"]["cost"] == metrics
    # The summary table gains the cost columns for an LLM candidate.
    result.stdout.fnmatch_lines(["*template*exact*tokens in*tokens out*cost*p50*p95*status*",
                                 f"*llm*{metrics['input_tokens']}*{metrics['output_tokens']}*?*ELIGIBLE*"])

    llm_server.stop()  # replay with no server, on two xdist workers: the same figures, the same status
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-out=replay", "-p", "no:cacheprovider",
                                "-n", "2")
    result.assert_outcomes(passed=4 + 1)  # + the run item
    replay = runs_by_template(pytester.path / "replay")["llm"]
    assert replay["status"] == live["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"
    assert replay["metrics"] == live["metrics"]
    assert [entry["cost"] for entry in replay["cases"]] == [entry["cost"] for entry in live["cases"]]


def test_policy_and_python_candidates_report_latency_and_no_tokens(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment()
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2 + 1)  # + the run item
    run = runs_by_template(pytester.path / ".llmgate")["good"]
    cost = run["metrics"]["cost"]
    assert cost["calls"] == 2 and cost["latency_max_ms"] is not None and cost["latency_max_ms"] >= 0
    assert cost["input_tokens"] is None and cost["output_tokens"] is None and cost["cost_usd"] is None
    assert all(entry["cost"]["input_tokens"] is None for entry in run["cases"])
    # Nothing to show: the SPEC's table, unchanged; no price note.
    result.stdout.fnmatch_lines(["*template*role*unsafe*unnecessary*exact*status"])
    result.stdout.no_fnmatch_line("*tokens in*")
    result.stdout.no_fnmatch_line("*no known price*")


def test_cost_from_the_price_list_from_an_override_and_unknown_said_once(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer
) -> None:
    genai_prices = pytest.importorskip("genai_prices")
    make_experiment("exp", suites={"main": CASES}, templates={
        "listed": template("openai_chat", llm_server, model="gpt-4o-mini"),
        "override": template("openai_chat", llm_server, price={"input_per_mtok": 2, "output_per_mtok": 8}),
        "unknown": template("openai_chat", llm_server, model="my-private-model"),
        "unknown-b": template("openai_chat", llm_server, model="my-private-model", temperature=0.5),
    })
    result = pytester.runpytest("exp", "--llmgate-candidate=all", "--llmgate-record=new_episodes",
                                "--llmgate-markdown=summary.md", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=16 + 4)  # + the 4 candidates' run items (no budget)
    runs = runs_by_template(pytester.path / ".llmgate")
    for entry in runs["listed"]["cases"]:
        cost = entry["cost"]
        usage = genai_prices.Usage(input_tokens=cost["input_tokens"], output_tokens=cost["output_tokens"],
                                   cache_read_tokens=cost["cached_tokens"])
        listed = float(genai_prices.calc_price(usage, "gpt-4o-mini", provider_id="openai").total_price)
        assert cost["cost_usd"] == pytest.approx(listed) and listed > 0
    for entry in runs["override"]["cases"]:
        cost = entry["cost"]
        assert cost["cost_usd"] == pytest.approx((cost["input_tokens"] * 2 + cost["output_tokens"] * 8) / 1e6)
    override = runs["override"]["metrics"]["cost"]
    assert override["cost_usd"] == pytest.approx(sum(e["cost"]["cost_usd"] for e in runs["override"]["cases"]))
    assert override["cost_per_case_usd"] == pytest.approx(override["cost_usd"] / 4)
    for template_id in ("unknown", "unknown-b"):
        assert runs[template_id]["metrics"]["cost"]["cost_usd"] is None  # unknown, never 0
        assert all(entry["cost"]["cost_usd"] is None for entry in runs[template_id]["cases"])
    said = [line for line in result.outlines if "no known price for model 'my-private-model'" in line]
    assert len(said) == 1, said  # once per session, for both artifacts
    assert any("my-private-model" in note for note in read_report(pytester.path / ".llmgate")["notes"])
    summary = (pytester.path / "summary.md").read_text()
    assert "| tokens in | tokens out | cost | p50 | p95 |" in summary and "no known price" in summary


# -- budgets --------------------------------------------------------------------------------------
BUDGETS = {
    # limit: (over, under, the figure's words in the reason)
    "max_cost_per_case_usd": (1e-9, 1.0, "cost per case $", "$0.000000001"),
    "max_output_tokens_per_case": (1, 10_000, "output tokens per case ", "1"),
    "max_latency_p95_ms": (DELAY * 1000 / 2, 60_000, "latency p95 ", "25"),
}


@pytest.mark.parametrize("limit", list(BUDGETS))
def test_a_budget_limit_rejects_a_run_over_it_and_leaves_one_under_it_unchanged(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, limit: str
) -> None:
    over, under, figure, shown = BUDGETS[limit]
    llm_server.control(delay=DELAY)
    llm = template("openai_chat", llm_server, price={"input_per_mtok": 1, "output_per_mtok": 4})
    make_experiment("over", suites={"main": CASES}, templates={"llm": llm}, budget={limit: over})
    make_experiment("under", suites={"main": CASES}, templates={"llm": llm}, budget={limit: under})
    make_experiment("none", suites={"main": CASES}, templates={"llm": llm})
    result = pytester.runpytest("over", "under", "none", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "-p", "no:cacheprovider")
    # no guardrail broke; the run items of "under" and "none" pass, "over"'s fails with the limit it broke
    result.assert_outcomes(passed=12 + 2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAILED over/llmgate.yaml::llm - REJECT_OVER_BUDGET: llm: *"])
    runs = {run["experiment"]: run for run in runs_by_template_all(pytester.path / ".llmgate")}
    rejected = runs["over"]
    assert rejected["status"] == "REJECT_OVER_BUDGET"
    (reason,) = rejected["over_budget"]
    assert reason.startswith(figure) and reason.endswith(f"> {limit} {shown}")
    assert rejected["budget"] == {limit: over}
    assert runs["under"]["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and "over_budget" not in runs["under"]
    assert "budget" not in runs["none"] and runs["none"]["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"
    report = {e["experiment"]: e for e in read_report(pytester.path / ".llmgate")["experiments"]}
    assert report["over"]["decision_status"] == "NO_ELIGIBLE_CANDIDATE"
    assert report["over"]["runs"][0]["over_budget"] == [reason]
    assert report["under"]["decision_status"] == report["none"]["decision_status"] == "PROMOTE"
    result.stdout.fnmatch_lines([f"*llm: over budget: {figure}*{limit}*"])


def runs_by_template_all(out: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]


# -- 429s ------------------------------------------------------------------------------------------
def test_429s_with_retry_after_are_waited_out_the_window_backs_off_and_recovers(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer
) -> None:
    cases = [case(f"c{n:02d}", "test_failure_log" if n % 2 else "no_source", "SERVE" if n % 2 else "ABSTAIN",
                  input={"question": f"question {n}"}) for n in range(48)]
    # max_retries 3: on a busy machine the first eight requests may spread over more than a second, so a retry
    # can meet one of the eight 429s too; it is absorbed all the same.
    make_experiment("exp", suites={"main": cases},
                    templates={"llm": template("openai_chat", llm_server, max_retries=3)})
    llm_server.control(delay=DELAY, reset=True, limit_first=8)
    started = time.perf_counter()
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=all", "--llmgate-concurrency=8",
                                "-p", "no:cacheprovider")
    elapsed = time.perf_counter() - started
    result.assert_outcomes(passed=48 + 1)  # no case errors; + the run item
    run = runs_by_template(pytester.path / ".llmgate")["llm"]
    assert run["metrics"]["cost"]["rate_limited"] == 8  # each 429 absorbed is counted
    assert sum(entry["cost"]["rate_limited"] for entry in run["cases"]) == 8
    result.stdout.fnmatch_lines(["  rate limits: llm: 8 HTTP 429 response(s) absorbed by retries (the calls then "
                                 "answered)"])  # and said in the summary
    assert elapsed >= 1.0  # Retry-After: 1 was waited out
    arrivals = llm_server.stats["arrivals"]
    assert [status for _, status in arrivals].count(429) == 8 and len(arrivals) == 8 + 48
    answered = [in_flight for in_flight, status in arrivals if status == 200]  # the server's own count
    # The first eight answered are the calls that met the 429s (their retries). The calls started after them
    # find the window halved: no more than half the session's concurrency (8) in flight. It grows by 1/window per
    # success, about one per window of calls, so the first four new calls see at most 4 and the next four at most
    # 5; without the window those climb straight back to 8 ...
    assert max(answered[8:12]) <= 4 and max(answered[12:16]) <= 5, answered
    # ... and it grows back once the 429s stop (without the window the server would see ~8 throughout).
    assert max(answered[-16:]) > 4, answered


# -- unit --------------------------------------------------------------------------------------------
def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


def test_case_cost_sums_tokens_over_trials_and_keeps_unknown_prices_unknown() -> None:
    calls = [Usage(input_tokens=100, output_tokens=10, latency_ms=5.0),
             Usage(input_tokens=100, output_tokens=20, latency_ms=9.0, rate_limited=2)]
    cost = case_cost(calls, Price(1.0, 2.0).of)
    assert (cost.calls, cost.input_tokens, cost.output_tokens, cost.latency_ms, cost.rate_limited) == (2, 200, 30, 9.0, 2)
    assert cost.cost_usd == pytest.approx((200 * 1 + 30 * 2) / 1e6)
    assert case_cost(calls, None).cost_usd is None
    assert case_cost(calls, lambda usage: None).cost_usd is None
    assert case_cost([Usage(latency_ms=1.0)], Price(1.0, 2.0).of).cost_usd is None  # no tokens: nothing to price


def test_an_artifacts_price_override_is_the_price_its_settings_hold() -> None:
    """One Price: what an LLM artifact's settings declare is what the session prices with (ints as floats)."""
    from pytest_llmgate.model.costs import override_price
    from pytest_llmgate.providers.openai_chat import OpenAIChatSettings

    written = {"template_id": "t", "provider": "openai_chat", "model": "m", "prompt": {"user": "u"},
               "price": {"input_per_mtok": 2, "output_per_mtok": 0.5}}
    price = override_price(written)
    assert price == Price(2.0, 0.5) == msgspec.convert(written, OpenAIChatSettings).price
    assert price is not None and type(price.input_per_mtok) is float
    assert override_price({"model": "m"}) is None


def test_over_budget_names_the_figure_and_the_limit_and_ignores_absent_limits() -> None:
    metrics = cost_metrics([case_cost([Usage(input_tokens=1000, output_tokens=500, latency_ms=80.0)], Price(1, 1).of)],
                           [80.0])
    assert isinstance(metrics, CostMetrics)
    assert over_budget(None, metrics) == () and over_budget(Budget(), metrics) == ()
    assert over_budget(Budget(max_output_tokens_per_case=100), metrics) == (
        "output tokens per case 500 > max_output_tokens_per_case 100",)
    assert over_budget(Budget(max_latency_p95_ms=50), metrics) == ("latency p95 80 ms > max_latency_p95_ms 50",)
    assert over_budget(Budget(max_cost_per_case_usd=0.01, max_latency_p95_ms=100), metrics) == ()
    # a figure at its limit holds it; one just over does not
    assert metrics.cost_per_case_usd == 0.0015  # 1,500 tokens at $1 per million
    assert over_budget(Budget(max_cost_per_case_usd=0.0015, max_output_tokens_per_case=500, max_latency_p95_ms=80),
                       metrics) == ()
    assert over_budget(Budget(max_cost_per_case_usd=0.0014, max_output_tokens_per_case=499, max_latency_p95_ms=79.5),
                       metrics) == ("cost per case $0.0015 > max_cost_per_case_usd $0.0014",
                                    "output tokens per case 500 > max_output_tokens_per_case 499",
                                    "latency p95 80 ms > max_latency_p95_ms 79.5")
    unpriced = cost_metrics([case_cost([Usage(input_tokens=1, output_tokens=1, latency_ms=1.0)], None)], [1.0])
    (reason,) = over_budget(Budget(max_cost_per_case_usd=1), unpriced)
    assert "unknown" in reason  # a limit that cannot be shown to hold is not met
    no_tokens = cost_metrics([case_cost([Usage(latency_ms=1.0)], None)], [1.0])
    assert over_budget(Budget(max_cost_per_case_usd=0, max_output_tokens_per_case=0), no_tokens) == ()


def test_window_halves_once_per_round_and_grows_back_additively() -> None:
    window = Window(8)
    started = [window.acquire() for _ in range(8)]
    for round_ in started:
        window.limited(round_)  # eight 429s of one round: one halving
    assert window.size == 4
    for _ in range(8):
        window.release(met_429=True)  # calls that met a 429 do not grow it
    assert window.size == 4
    gate = threading.Event()
    held = [window.acquire() for _ in range(4)]
    blocked = threading.Thread(target=lambda: (window.acquire(), gate.set()))
    blocked.start()
    assert not gate.wait(0.1)  # a fifth call waits for room
    window.release(met_429=False)
    assert gate.wait(2)
    blocked.join()
    for _ in range(3 + 1):
        window.release(met_429=False)
    assert 4 < window.size < 6 and len(held) == 4
    for _ in range(40):
        window.acquire()
        window.release(met_429=False)
    assert window.size == 8  # back to the ceiling, never above it


def test_pace_spaces_call_starts() -> None:
    pace = Pace(per_minute=600)  # one every 0.1 s
    started = time.monotonic()
    for _ in range(4):
        pace.wait()
    assert time.monotonic() - started >= 0.29


def test_an_artifacts_rate_is_shared_by_the_processes_that_make_its_calls() -> None:
    # under -n 2 each worker paced itself at the whole rate: twice the calls a minute the artifact allows
    assert Throttles(8).pace(120).interval == 0.5
    assert Throttles(8, processes=2).pace(120).interval == 1.0
    assert Throttles(8, processes=0).pace(120).interval == 0.5


# -- issue 24.7: an endpoint that reports no usage, or impossible usage -------------------------------
NO_USAGE = {"absent": None, "not numbers": {"prompt_tokens": "many", "completion_tokens": "few",
                                            "input_tokens": "many", "output_tokens": "few"}}


@pytest.mark.parametrize("usage", list(NO_USAGE))
@pytest.mark.parametrize("provider", ["openai_chat", "anthropic_messages"])
def test_a_cost_or_token_budget_blocks_an_endpoint_that_reports_no_usage_unless_allowed(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, provider: str, usage: str
) -> None:
    llm_server.control(reset=True, usage=NO_USAGE[usage])
    llm = template(provider, llm_server, price={"input_per_mtok": 1, "output_per_mtok": 4})
    make_experiment("blocked", suites={"main": CASES}, templates={"llm": llm},
                    budget={"max_cost_per_case_usd": 1.0, "max_output_tokens_per_case": 1000})
    make_experiment("allowed", suites={"main": CASES}, templates={"llm": llm},
                    budget={"max_cost_per_case_usd": 1.0, "unknown_figures": "allow"})
    result = pytester.runpytest("blocked", "allowed", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    runs = {run["experiment"]: run for run in runs_by_template_all(pytester.path / ".llmgate")}
    blocked, allowed = runs["blocked"], runs["allowed"]
    assert blocked["status"] == "REJECT_OVER_BUDGET"
    assert blocked["over_budget"] == [
        "4 call(s) reported no usage, so max_cost_per_case_usd 1, max_output_tokens_per_case 1000 cannot be shown "
        "to hold (budget.unknown_figures: allow accepts them)"]
    assert blocked["metrics"]["cost"]["calls_without_usage"] == 4
    assert all(entry["cost"]["usage_missing"] == 1 for entry in blocked["cases"])
    assert blocked["metrics"]["cost"]["cost_usd"] is None
    assert allowed["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and allowed["budget"]["unknown_figures"] == "allow"
    result.stdout.fnmatch_lines(["*llm: over budget: 4 call(s) reported no usage*"])
    report = {e["experiment"]: e for e in read_report(pytester.path / ".llmgate")["experiments"]}
    assert report["blocked"]["decision_status"] == "NO_ELIGIBLE_CANDIDATE"


def test_an_llm_run_whose_endpoint_reported_no_usage_keeps_its_cost_columns(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer
) -> None:
    # the table dropped its cost and latency columns, as for a python candidate: the latencies measured were not shown
    llm_server.control(reset=True, usage=None)
    make_experiment("exp", suites={"main": CASES}, templates={"llm": template("openai_chat", llm_server)})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes", "-p", "no:cacheprovider")
    header = next(line for line in result.stdout.lines if line.lstrip().startswith("template"))
    assert header.split()[-6:] == ["tokens", "out", "cost", "p50", "p95", "status"]
    result.stdout.re_match_lines([r"  llm +candidate +0 +0 +100% +- +- +- +[\d.]+ms +[\d.]+ms +ELIGIBLE_FOR_CANARY_REVIEW"])


def test_a_python_candidate_under_a_cost_budget_is_not_blocked(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment(budget={"max_cost_per_case_usd": 0.001})
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    run = runs_by_template(pytester.path / ".llmgate")["good"]
    assert run["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and "calls_without_usage" not in run["metrics"]["cost"]
    assert all(entry["cost"]["latency_ms"] > 0 for entry in run["cases"])  # measured, not rounded to 0.0 ms


@pytest.mark.parametrize(("provider", "model", "usage"), [
    ("openai_chat", "gpt-4o", {"prompt_tokens": 10, "completion_tokens": -3, "total_tokens": 7}),
    ("anthropic_messages", "claude-haiku-4-5", {"input_tokens": -100, "output_tokens": 10}),
])
def test_negative_usage_is_the_case_s_error_and_the_session_s_records_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, provider: str, model: str,
    usage: dict[str, int],
) -> None:
    pytest.importorskip("genai_prices")
    llm_server.control(reset=True, usage=usage)
    make_experiment("exp", suites={"main": CASES}, templates={"llm": template(provider, llm_server, model=model)},
                    budget={"max_cost_per_case_usd": 1.0})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    said = "output_tokens -3" if provider == "openai_chat" else "input_tokens -100"
    result.stdout.fnmatch_lines([f"*the endpoint reported {said} (a negative token count)*"])
    run = runs_by_template(pytester.path / ".llmgate")["llm"]
    assert run["status"] == "INCOMPLETE_EVALUATION"
    assert {entry["outcome"] for entry in run["cases"]} == {"ERROR"}
    report = read_report(pytester.path / ".llmgate")
    assert report["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"


# -- issue 28.1: every priced token class reaches the price list ---------------------------------------
TOKEN_CLASSES = [
    ("anthropic_messages", "claude-haiku-4-5",
     {"input_tokens": 100, "cache_creation_input_tokens": 1000, "output_tokens": 10},
     {"input_tokens": 1100, "cache_write_tokens": 1000, "output_tokens": 10}),
    ("anthropic_messages", "claude-haiku-4-5",
     {"input_tokens": 100, "cache_creation_input_tokens": 1000, "output_tokens": 10,
      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000}},
     {"input_tokens": 1100, "cache_write_tokens": 1000, "cache_write_1h_tokens": 1000, "output_tokens": 10}),
    ("anthropic_messages", "claude-haiku-4-5",
     {"input_tokens": 100, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 0, "output_tokens": 10},
     {"input_tokens": 2100, "cache_read_tokens": 2000, "output_tokens": 10}),
    ("openai_chat", "gpt-4o",
     {"prompt_tokens": 3000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 2048}},
     {"input_tokens": 3000, "cache_read_tokens": 2048, "output_tokens": 10}),
    ("openai_chat", "o3",
     {"prompt_tokens": 100, "completion_tokens": 500, "completion_tokens_details": {"reasoning_tokens": 400}},
     {"input_tokens": 100, "output_tokens": 500, "output_reasoning_tokens": 400}),
    ("openai_chat", "gpt-4o-audio-preview",
     {"prompt_tokens": 1000, "completion_tokens": 600, "prompt_tokens_details": {"audio_tokens": 800},
      "completion_tokens_details": {"audio_tokens": 500}},
     {"input_tokens": 1000, "input_audio_tokens": 800, "output_tokens": 600, "output_audio_tokens": 500}),
]


@pytest.mark.parametrize(("provider", "model", "reply", "priced"), TOKEN_CLASSES,
                         ids=["cache-write", "cache-write-1h", "cache-read", "cached", "reasoning", "audio"])
def test_each_token_class_is_priced_as_genai_prices_prices_it(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, provider: str, model: str,
    reply: dict[str, Any], priced: dict[str, int],
) -> None:
    genai_prices = pytest.importorskip("genai_prices")
    llm_server.control(reset=True, usage=reply)
    make_experiment("exp", suites={"main": CASES[:1]}, templates={"llm": template(provider, llm_server, model=model)})
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)  # the case and its run item
    (entry,) = runs_by_template(pytester.path / ".llmgate")["llm"]["cases"]
    expected = genai_prices.calc_price(genai_prices.Usage(**priced), model,
                                       provider_id=provider.split("_")[0]).total_price
    assert entry["cost"]["cost_usd"] == pytest.approx(float(expected), rel=1e-9)
    recorded = {"cache_read_tokens": "cached_tokens", "output_reasoning_tokens": "reasoning_tokens"}
    for theirs, count in priced.items():
        assert entry["cost"][recorded.get(theirs, theirs)] == count


def test_the_issue_s_cache_write_figure_is_the_list_s() -> None:
    genai_prices = pytest.importorskip("genai_prices")
    from pytest_llmgate.model.costs import listed_pricer
    pricer = listed_pricer("claude-haiku-4-5", "anthropic_messages", None)
    assert pricer is not None
    cost = pricer(Usage(input_tokens=1100, cache_write_tokens=1000, output_tokens=10))
    assert cost == pytest.approx(0.0014) and cost == pytest.approx(float(genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1100, cache_write_tokens=1000, output_tokens=10), "claude-haiku-4-5",
        provider_id="anthropic").total_price))


def test_money_is_shown_with_enough_digits_to_compare() -> None:
    assert usd(0.00115) == "$0.00115" and usd(3.5e-05) == "$0.000035" and usd(1.5) == "$1.50"
    metrics = cost_metrics([case_cost([Usage(input_tokens=35, output_tokens=0, latency_ms=1.0)], Price(1, 1).of)],
                           [1.0])
    (reason,) = over_budget(Budget(max_cost_per_case_usd=3.4e-05), metrics)
    assert reason == "cost per case $0.000035 > max_cost_per_case_usd $0.000034"
    (reason,) = over_budget(Budget(max_cost_per_case_usd=3.49999e-05), metrics)
    assert reason == "cost per case $0.000035 > max_cost_per_case_usd $0.0000349999"  # every digit, no exponent
    silent = cost_metrics([case_cost([Usage(latency_ms=1.0, usage_missing=1)], Price(1, 1).of)], [1.0])
    (reason,) = over_budget(Budget(max_cost_per_case_usd=5e-06, max_output_tokens_per_case=2.5e-07), silent)
    assert reason.startswith("1 call(s) reported no usage, so max_cost_per_case_usd 0.000005, "
                             "max_output_tokens_per_case 0.00000025 cannot be shown to hold")  # it said 5e-06


@pytest.mark.parametrize("value", [5e-06, 1.25e-07, 9.999e-05, 0.00035, 12.5, 1000.0, 0.1 + 0.2, 123456.789])
def test_a_limit_is_written_with_every_digit_and_no_exponent(value: float) -> None:
    silent = cost_metrics([case_cost([Usage(latency_ms=1.0, usage_missing=1)], Price(1, 1).of)], [1.0])
    (reason,) = over_budget(Budget(max_output_tokens_per_case=value), silent)
    written = reason.split("max_output_tokens_per_case ")[1].split(" cannot")[0]
    assert "e" not in written and float(written) == value


def test_one_model_is_priced_per_endpoint(tmp_path: Path) -> None:
    # protects: the price list is asked once per (provider, model, endpoint), not once per model
    pytest.importorskip("genai_prices")
    from pytest_llmgate.engine.pricing import Pricing
    from pytest_llmgate.model.evaluate import CaseResult
    from pytest_llmgate.model.results import RunResults
    from pytest_llmgate.model.vocab import Outcome, Role, Route
    from pytest_llmgate.records.experiment import load_experiment

    def served_by(url: str) -> dict[str, Any]:
        return {"provider": "openai_chat", "model": "llama-3.3-70b-versatile", "base_url": url,
                "prompt": {"user": "{{ evidence_state }}"}}

    directory = write_experiment(tmp_path, templates={"local": served_by("http://127.0.0.1:9/v1"),
                                                      "groq": served_by("https://api.groq.com/openai/v1")})
    candidates = load_experiment(directory).candidates
    results = RunResults(str(directory), "local", Role.CANDIDATE, None)
    results.add(CaseResult(experiment_dir=str(directory), template_id="local", role=Role.CANDIDATE, case_id="c1",
                           predicted_route=Route.SERVE, outcome=Outcome.PASS,
                           calls=(Usage(input_tokens=10, output_tokens=1, latency_ms=1.0),)))
    pricing = Pricing()
    assert pricing.pricer(candidates["local"], results) is None  # a loopback server: not in the list
    groq = pricing.pricer(candidates["groq"], results)
    assert groq is not None and groq(Usage(input_tokens=1_000_000, output_tokens=0)) > 0


def test_calls_without_usage_leave_the_reported_cost_known_and_block_only_spending_limits() -> None:
    # the cost is that of the calls that reported; a latency-only budget is not blocked by calls without usage
    reported = case_cost([Usage(input_tokens=1000, output_tokens=500, latency_ms=80.0)], Price(1, 1).of)
    silent = case_cost([Usage(latency_ms=80.0, usage_missing=1)], Price(1, 1).of)
    metrics = cost_metrics([reported, silent], [80.0, 80.0])
    assert (metrics.cost_usd, metrics.calls_without_usage) == (0.0015, 1)
    assert over_budget(Budget(max_cost_per_case_usd=0.01, unknown_figures=UnknownFigures.ALLOW), metrics) == ()
    assert over_budget(Budget(max_latency_p95_ms=100), metrics) == ()


def test_allowed_calls_without_usage_do_not_dilute_the_per_case_figures() -> None:
    # stop 36: the silent case counted as zero spend, so 10 output tokens per reporting case showed as 5 and
    # passed max_output_tokens_per_case 8; the calls that reported stand for every call
    reported = case_cost([Usage(input_tokens=100, output_tokens=10, latency_ms=5.0)], Price(1, 1).of)
    silent = case_cost([Usage(latency_ms=5.0, usage_missing=1)], Price(1, 1).of)
    metrics = cost_metrics([reported, silent], [5.0, 5.0])
    assert (metrics.output_tokens, metrics.output_tokens_per_case) == (10, 10.0)
    assert metrics.cost_per_case_usd == metrics.cost_usd == 0.00011
    allowed = Budget(max_output_tokens_per_case=8, max_cost_per_case_usd=0.0001, unknown_figures=UnknownFigures.ALLOW)
    assert over_budget(allowed, metrics) == (
        "cost per case $0.00011 > max_cost_per_case_usd $0.0001",
        "output tokens per case 10 > max_output_tokens_per_case 8")
    # two trials in a case, one silent: the case's one reported call stands for both
    mixed = case_cost([Usage(input_tokens=100, output_tokens=10), Usage(usage_missing=1)], Price(1, 1).of)
    assert cost_metrics([mixed], []).output_tokens_per_case == 20.0
    # a call that reported one count only is a call without usage: its half figure is not scaled up as a whole one
    # (the review of stop 37: 100 output tokens on each of two calls showed as 400 per case and broke a limit of 300)
    partial = case_cost([Usage(output_tokens=100, usage_missing=1), Usage(input_tokens=10, output_tokens=100)],
                        Price(1, 1).of)
    assert (partial.output_tokens, cost_metrics([partial], []).output_tokens_per_case) == (100, 200.0)
    # every call reported: the plain mean, as before
    assert cost_metrics([reported, reported], []).output_tokens_per_case == 10.0


@pytest.mark.parametrize(("concurrent", "bounded"), [(False, True), (False, False), (True, False)])
def test_a_trial_that_fails_carries_the_calls_of_the_trials_answered_before_it(concurrent: bool, bounded: bool) -> None:
    # the usage of every trial answered before a failing one was dropped with the case: paid calls went uncounted
    from pytest_llmgate.engine.providing import Answers
    from pytest_llmgate.model.errors import ProviderError, with_calls
    from pytest_llmgate.model.vocab import Route

    class Failing:
        trials = 3

        def __init__(self) -> None:
            self.concurrent, self.bounded = concurrent, bounded

        def answer(self, case: Any, trial: int = 0) -> tuple[Route, Usage]:
            if trial == 2:  # its own reply came back, unreadable: it carries its call too
                raise with_calls(ProviderError("unreadable reply"), (Usage(input_tokens=30),))
            return Route.SERVE, Usage(input_tokens=10 + trial)

    provider = Failing()
    answers = Answers(concurrency=2)
    try:
        with pytest.raises(ProviderError) as raised:
            answers.routes(provider, {"case_id": "c1"}, timeout=5)  # type: ignore[arg-type]
    finally:
        answers.shutdown()
    assert [usage.input_tokens for usage in raised.value.calls] == [10, 11, 30]


def test_trials_made_after_a_failing_one_are_counted_and_leave_the_pool() -> None:
    # prefetched trials after a failing trial were made and paid, then dropped, their futures kept to the end
    from pytest_llmgate.engine.providing import Answers
    from pytest_llmgate.model.errors import ProviderError
    from pytest_llmgate.model.vocab import Route

    class FirstFails:
        trials, concurrent, bounded = 3, True, False

        def answer(self, case: Any, trial: int = 0) -> tuple[Route, Usage]:
            if trial == 0:
                raise ProviderError("HTTP 500 from the endpoint")
            return Route.SERVE, Usage(input_tokens=10 + trial)

    answers, case = Answers(concurrency=4), {"case_id": "c1"}
    try:
        with pytest.raises(ProviderError) as raised:
            answers.routes(FirstFails(), case, upcoming=lambda: [case], timeout=5)  # type: ignore[arg-type]
        assert sorted(usage.input_tokens for usage in raised.value.calls) == [11, 12]
        assert not answers.pool._futures  # taken, not kept to the session's end
    finally:
        answers.shutdown()


def test_a_pool_shut_down_makes_no_call_and_starts_no_thread() -> None:
    # the review of this stop: a judged answer still in flight after the session ended made new live calls
    import threading

    from pytest_llmgate.model.errors import ProviderError
    from pytest_llmgate.providers.calls import CallPool

    pool = CallPool(1)
    assert pool.result("before", lambda: 1) == 1
    pool.shutdown()
    before = threading.active_count()
    made: list[int] = []
    with pytest.raises(ProviderError, match="not made: the session was ending"):
        pool.result("after", lambda: made.append(1))
    assert made == [] and threading.active_count() == before


def test_a_plugin_s_calls_that_are_not_a_tuple_never_hide_its_error() -> None:
    from pytest_llmgate.model.errors import ProviderError, with_calls

    error = ProviderError("its own reason")
    error.calls = Usage(input_tokens=1)  # type: ignore[assignment]  # a slip for (usage,)
    assert with_calls(error, (Usage(input_tokens=2),)).calls == (Usage(input_tokens=2),)



def test_a_stored_budget_keeps_any_finite_limit_it_was_written_with() -> None:
    # the manifest refuses .inf where it loads; a record read back is not capped (1e20 as "no limit" was valid)
    import msgspec

    from pytest_llmgate.model.costs import Budget

    assert msgspec.json.decode(b'{"max_cost_per_case_usd": 1e20}', type=Budget).max_cost_per_case_usd == 1e20
