"""A quiet terminal (issue 27): a failing case with trials shows its prompt once and each distinct reply once, a
session narrowed by -k/--deselect/--lf says plainly that it is partial, a first run without recordings prints one
hint, a missing API key is one usage error before any case runs, and 429s absorbed are counted in the summary."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

from pytest_llmgate.cli.main import main

from .conftest import LLMServer, MakeExperiment, case
from .test_chat_providers import llm_template

pytest.importorskip("openai", reason="the openai extra is not installed: pip install 'pytest-llmgate[openai]'")

MARKER = "PROMPT-MARKER-51c2"
CASES = [case("r1", "no_source", "ABSTAIN", input={"question": f"why? {MARKER}"}),
         case("r2", "test_failure_log", "SERVE", input={"question": "why did test_login fail?"})]


@pytest.fixture
def llm_exp(make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> LLMServer:
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-quiet")
    make_experiment("exp", suites={"main": CASES}, templates={"llm": llm_template(llm_server.url, "*")})
    return llm_server


def test_with_trials_a_failing_case_shows_its_prompt_once_and_each_distinct_reply_with_its_trials(
        pytester: pytest.Pytester, llm_exp: LLMServer, workers: tuple[str, ...]) -> None:
    llm_exp.control("alternate")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                "--llmgate-trials=6", *workers)
    text = result.stdout.str()
    assert text.count(MARKER) == 1, text  # the prompt once, not once per trial
    result.stdout.fnmatch_lines([
        "*what the model said (--llmgate-show=none hides this)*",
        "[[]request: 6 trials[]]",
        "system:",
        "  You answer questions about CI failures. Serve always.*",
        "user:",
        f"  Question: why? {MARKER}",
        "  Evidence state: no_source",
    ])
    # the server alternates SERVE and ABSTAIN per request: two distinct replies, each once with its three trials
    result.stdout.re_match_lines([r"reply \(trials \d, \d, \d: live\):", r'  \{"route": "(SERVE|ABSTAIN)"',
                                  r"reply \(trials \d, \d, \d: live\):", r'  \{"route": "(SERVE|ABSTAIN)"'])
    assert text.count("reply (") == 4 and text.count("[request: 6 trials]") == 2, text  # two failing cases


def test_a_deselecting_session_says_it_is_partial_not_a_part_and_llmgate_runs_hides_it_unless_all(
        pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]) -> None:
    make_experiment()
    full = pytester.runpytest("exp", "--llmgate-candidate=good", *workers)
    assert full.ret == pytest.ExitCode.OK
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--deselect", "exp/main.suite.yaml::c2[good]",
                                *workers)
    result.assert_outcomes(passed=1, failed=1, deselected=0 if workers else 1)
    text = result.stdout.str()
    assert "split run" not in text and "llmgate merge" not in text, text
    result.stdout.fnmatch_lines([
        "  decision: INCOMPLETE_EVALUATION: incomplete runs cannot be promoted: good*",
        "llmgate: partial session (--deselect 1 id(s); 1 case item(s) deselected): its runs list the cases it did "
        "not run as NOT_RUN, are incomplete and are never promoted; run every case for a decision (llmgate runs "
        "lists partial runs with --all)",
    ])
    (partial,) = [path for path in (pytester.path / ".llmgate" / "runs").glob("*.json")
                  if '"part"' not in path.read_text() and '"NOT_RUN"' in path.read_text()]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path)
        lines = []
        for extra in ([], ["--all"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["runs", *extra]) == 0
            lines.append(out.getvalue())
    shown, every = lines
    assert partial.stem not in shown and partial.stem in every
    assert "1 partial run(s) hidden (sessions narrowed by -k, --deselect or --lf, or stopped early); --all lists them" in shown
    assert "hidden" not in every
    assert shown.count("ELIGIBLE_FOR_CANARY_REVIEW") == every.count("ELIGIBLE_FOR_CANARY_REVIEW") == 1


def test_a_first_run_with_no_recordings_prints_the_hint_once_and_runs_no_case(
        pytester: pytest.Pytester, llm_exp: LLMServer, workers: tuple[str, ...]) -> None:
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", *workers)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    hint = ("llm (exp/templates/llm.yaml) has no recordings to replay (exp/recordings/llm.jsonl does not exist) and "
            "--llmgate-record=none only replays: record them once with --llmgate-record=once (a live run; needs "
            "LLMGATE_TEST_KEY)")
    assert text.count(hint) == 1, text
    assert MARKER not in text and "not recorded" not in text and llm_exp.requests == 0
    # as it says: one live run records, then the default replays with no key and no server call
    assert pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=once", *workers).ret == 1
    called = llm_exp.requests
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("LLMGATE_TEST_KEY")
        replay = pytester.runpytest("exp", "--llmgate-candidate=llm", *workers)
    assert replay.ret == pytest.ExitCode.TESTS_FAILED  # r1 is served unsafely, from the recording
    replay.assert_outcomes(passed=2, failed=1)
    assert llm_exp.requests == called


def test_a_missing_api_key_is_one_usage_error_before_any_case_runs(
        pytester: pytest.Pytester, llm_exp: LLMServer, monkeypatch: pytest.MonkeyPatch,
        workers: tuple[str, ...]) -> None:
    monkeypatch.delenv("LLMGATE_TEST_KEY")
    for mode in ("once", "new_episodes", "all"):
        result = pytester.runpytest("exp", "--llmgate-candidate=llm", f"--llmgate-record={mode}", *workers)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        text = result.stdout.str() + result.stderr.str()
        said = ("ERROR: LLMGATE_TEST_KEY is not set; llm (exp/templates/llm.yaml) calls its endpoint live "
                f"(--llmgate-record={mode}, nothing recorded yet): set LLMGATE_TEST_KEY, or replay recordings with "
                "--llmgate-record=none")
        assert text.count(said) == 1, text
        assert MARKER not in text and "r1" not in text and llm_exp.requests == 0
    assert not (pytester.path / ".llmgate" / "runs").exists()


PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
COST_DELTA = (r".*all: unsafe \+0, unnecessary \+0, exact \+0 pt, errors \+0, cost \+\$0\.000008, tokens in \+8, "
              r"tokens out \+0, p50 [+-][0-9.]+(e-0\d)?ms, p95 [+-][0-9.]+(e-0\d)?ms$")


def test_diffs_show_cost_tokens_and_latency_changes_and_a_policy_run_none(
        pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-quiet")
    directory = make_experiment("exp", suites={"main": CASES}, templates={
        "llm": llm_template(llm_server.url, ["test_failure_log"], price=PRICE),
        "policy": {"provider": "evidence_policy", "serve_evidence": ["test_failure_log"]}})
    args = ["exp", "--llmgate-candidate=all", "--llmgate-record=new_episodes"]
    assert pytester.runpytest(*args, "--llmgate-out=main").ret == 0
    template = directory / "templates" / "llm.yaml"  # four more words of system prompt: 8 input tokens over 2 cases
    template.write_text(template.read_text().replace("You answer questions", "Be brief and exact. You answer questions"))
    result = pytester.runpytest(*args, "--llmgate-out=branch", "--llmgate-compare-to=main",
                                "--llmgate-markdown=comment.md")
    assert result.ret == 0
    result.stdout.re_match_lines([r"    llm \(candidate\):", r".*template llm, edited\): 0 broken, 0 fixed",
                                  COST_DELTA, r"    policy \(candidate\):",
                                  r".*all: unsafe \+0, unnecessary \+0, exact \+0 pt, errors \+0$"])
    # the policy candidate made no call: its latency is no column, its table cells say so
    result.stdout.re_match_lines([r"  template +role +unsafe +unnecessary +exact +tokens in +tokens out +cost +p50 +p95 "
                                  r"+status", r"  llm +candidate +0 +0 +100% +\d+ +\d+ +\$0\.0\d+ +\S+ms +\S+ms +ELIG.*",
                                  r"  policy +candidate +0 +0 +100% +- +- +- +- +- +ELIG.*"])
    comment = (pytester.path / "comment.md").read_text()
    assert "cost +$0.000008, tokens in +8, tokens out +0, p50 " in comment
    capsys.readouterr()
    assert main(["diff", str(pytester.path / "main"), str(pytester.path / "branch")]) == 0
    out = capsys.readouterr().out
    assert any(re.match(COST_DELTA, line) for line in out.splitlines()), out
    runs = {}
    for folder in ("main", "branch"):
        for path in (pytester.path / folder / "runs").glob("*.json"):
            if '"llm"' in path.read_text():
                runs[folder] = path
    assert main(["compare", str(runs["main"]), str(runs["branch"])]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\ncost +\$0\.0\d+ +\$0\.0\d+ \(\+\$0\.000008\)\n", out), out
    assert re.search(r"\ntokens in +(\d+) +(\d+) \(\+8\)\n", out), out
    assert re.search(r"\nlatency p95 +\S+ms +\S+ms \([+-]\S+ms\)\n", out), out


def test_an_lf_rerun_is_partial_too(pytester: pytest.Pytester, make_experiment: MakeExperiment,
                                    workers: tuple[str, ...]) -> None:
    make_experiment()
    first = pytester.runpytest("exp", "--llmgate-candidate=unsafe")
    first.assert_outcomes(passed=2, failed=1)  # c2 served unsafely; c1 and the run item passed
    rerun = pytester.runpytest("exp", "--llmgate-candidate=unsafe", "--lf", *workers)
    rerun.assert_outcomes(failed=1)  # c1 is dropped at collection; the manifest, with no failure, not collected
    rerun.stdout.fnmatch_lines(["  unsafe * 1 * INCOMPLETE_EVALUATION",
                                "llmgate: partial session (--lf): its runs list the cases it did not run as NOT_RUN, "
                                "are incomplete and are never promoted; *"])
    assert "split run" not in rerun.stdout.str()


def test_a_judge_with_nothing_recorded_is_the_same_one_hint(pytester: pytest.Pytester) -> None:
    prose = Path(__file__).resolve().parent.parent / "example_suites" / "ci-claim-gate-prose"
    shutil.copytree(prose, pytester.path / "prose")
    (pytester.path / "prose" / "recordings" / "claim-judge-v1.jsonl").unlink()
    result = pytester.runpytest("prose", "--llmgate-candidate=ci-answerer-prose-v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert text.count("ERROR: judge claim-judge-v1 (prose/evaluators/") == 1, text
    assert "has no recordings to replay (prose/recordings/claim-judge-v1.jsonl does not exist)" in text
    assert "record them once with --llmgate-record=once" in text


@pytest.mark.parametrize(("budget", "latency"), [({"max_cost_per_case_usd": 0.01}, False),
                                                 ({"max_latency_p95_ms": 1000}, True)])
def test_latency_columns_are_left_out_when_no_candidate_made_a_call_unless_the_budget_limits_latency(
        pytester: pytest.Pytester, make_experiment: MakeExperiment, budget: dict[str, float], latency: bool) -> None:
    make_experiment(budget=budget)
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == 0
    header = next(line for line in result.outlines if line.startswith("  template "))
    assert "tokens in" in header and "cost" in header
    assert ("p50" in header and "p95" in header) is latency, header
