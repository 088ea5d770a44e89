"""The prompt engineer's loop (issue 13): a failing LLM case shows what the model said, and the messages a user
reads say what happened (freeze, nothing selected, runs that did not run, an interrupted session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import LLMServer, MakeExperiment, case, read_report, snapshot
from .test_chat_providers import llm_template

pytest.importorskip("openai", reason="the openai extra is not installed: pip install 'pytest-llmgate[openai]'")

MARKER = "QUESTION-MARKER-7f3a"  # part of a case's input: allowed in the terminal, never in a written file


@pytest.fixture
def unsafe_llm(make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-feedback")
    return make_experiment("exp", suites={"main": [
        case("r0003", "no_source", "ABSTAIN", input={"question": f"why did build 4411 fail? {MARKER}"}),
        case("r0004", "test_failure_log", "SERVE", input={"question": "why did test_login fail?"}),
    ]}, templates={"llm": llm_template(llm_server.url, "*")})


def written_files(root: Path) -> dict[str, bytes]:
    return dict(snapshot(root / ".llmgate").items())


@pytest.mark.usefixtures("unsafe_llm")
def test_a_failing_llm_case_shows_the_rendered_prompt_and_the_reply(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                f"--junitxml={junit}", *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "UNSAFE_CLAIM_SERVED: llm served where the frozen label says ABSTAIN on case r0003*",
        "*what the model said (--llmgate-show=none hides this)*",
        "[[]request: live[]]",
        "system:",
        "  You answer questions about CI failures. Serve always.*",
        "user:",
        f"  Question: why did build 4411 fail? {MARKER}",
        "  Evidence state: no_source",
        "reply:",
        '  {"route": "SERVE"*',
    ])
    assert MARKER in junit.read_text()  # JUnit's failure text carries it, as the terminal does
    files = written_files(pytester.path)
    assert files and not [name for name, data in files.items() if MARKER.encode() in data]

    replay = pytester.runpytest("exp", "--llmgate-candidate=llm", *workers)
    replay.stdout.fnmatch_lines(["[[]request: replayed[]]"])


@pytest.mark.usefixtures("unsafe_llm")
def test_long_texts_are_cut_with_a_marker_and_full_shows_them(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    long_question = "why? " * 1000  # 5,000 characters
    suite = pytester.path / "exp" / "main.suite.yaml"
    import yaml

    data = yaml.safe_load(suite.read_text())
    data["cases"][0]["input"]["question"] = long_question
    suite.write_text(yaml.safe_dump(data))
    cut = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    cut.stdout.fnmatch_lines(["*more characters cut; --llmgate-show=full shows them]"])
    full = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-show=full")
    full.stdout.no_fnmatch_line("*more characters cut*")
    assert long_question.strip() in full.stdout.str().replace("\n  ", "")


@pytest.mark.usefixtures("unsafe_llm")
def test_with_show_none_nothing_of_the_input_reaches_the_terminal_or_junit(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmgate_show = none\n")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes",
                                f"--junitxml={junit}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["UNSAFE_CLAIM_SERVED: llm served where the frozen label says ABSTAIN on case r0003*"])
    assert MARKER not in result.stdout.str() and MARKER not in junit.read_text()
    result.stdout.no_fnmatch_line("*what the model said*")


def test_an_unreadable_reply_shows_the_text_that_could_not_be_read(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMGATE_TEST_KEY", "sk-test-feedback")
    make_experiment("exp", suites={"main": [case("r1", "no_source", "ABSTAIN", input={"question": "q"})]},
                    templates={"llm": llm_template(llm_server.url, "*")})
    llm_server.control("unreadable")
    result = pytester.runpytest("exp", "--llmgate-candidate=llm", "--llmgate-record=new_episodes")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*unreadable reply: not a JSON object*", "[[]request: live[]]", "reply:",
                                 "  I cannot tell."])  # the text the server sent


def test_a_candidate_exception_text_is_hidden_with_show_none(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp", suites={"main": [case("r1", "no_source", "ABSTAIN", input={"question": MARKER})]},
                                templates={"py": {"provider": "python", "callable": "leaky_candidate:answer"}})
    (directory / "leaky_candidate.py").write_text(
        "def answer(case, artifact):\n    raise ValueError('cannot answer ' + case['input']['question'])\n"
    )
    shown = pytester.runpytest("exp", "--llmgate-candidate=py", "-p", "no:cacheprovider")
    assert shown.ret == pytest.ExitCode.TESTS_FAILED and MARKER in shown.stdout.str()
    junit = pytester.path / "junit.xml"
    hidden = pytester.runpytest("exp", "--llmgate-candidate=py", "--llmgate-show=none", f"--junitxml={junit}",
                                "-p", "no:cacheprovider")
    assert hidden.ret == pytest.ExitCode.TESTS_FAILED
    hidden.stdout.fnmatch_lines(["*ERROR: py raised ValueError on case r1*",
                                 "*(its message and traceback are hidden by --llmgate-show=none)*"])
    assert MARKER not in hidden.stdout.str() and MARKER not in junit.read_text()


# -- messages that tell you what happened ------------------------------------------------------------
def test_nothing_selected_says_so_with_the_ids_that_exist(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([
        "llmgate: no candidate or baseline selected, so nothing was gated (exp: also-good, good, unsafe); "
        "pick with --llmgate-candidate=ID (or =all) and --llmgate-baseline=ID"
    ])


def test_freeze_says_what_it_wrote_and_when_a_new_comparison_set_starts(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp")
    first = pytester.runpytest("exp", "--llmgate-freeze", "--llmgate-candidate=good", "-p", "no:cacheprovider")
    first.stdout.fnmatch_lines(["llmgate: froze exp: wrote exp/llmgate.lock (evaluation ee63d4079520c4f0)"])
    again = pytester.runpytest("exp", "--llmgate-freeze", "--llmgate-candidate=good", "-p", "no:cacheprovider")
    again.stdout.fnmatch_lines(["llmgate: exp: exp/llmgate.lock unchanged (evaluation ee63d4079520c4f0)"])
    suite = directory / "main.suite.yaml"
    suite.write_text(suite.read_text().replace("slice_name: s", "slice_name: t", 1))
    refrozen = pytester.runpytest("exp", "--llmgate-freeze", "--llmgate-candidate=good", "-p", "no:cacheprovider")
    refrozen.stdout.fnmatch_lines([
        "llmgate: refroze exp: replaced exp/llmgate.lock; a new comparison set starts (evaluation ee63d4079520c4f0 -> *); "
        "runs before it are not comparable with runs after it"
    ])


EDITED_PY = """
from pathlib import Path


def route(case, artifact):
    if case["case_id"] == "c1" and Path("broken").exists():
        raise RuntimeError("the prompt is being edited")
    return "SERVE" if case["evidence_state"] == "log" else "ABSTAIN"
"""


def test_the_loops_ff_turns_green_after_a_fix_and_lf_says_why_it_cannot(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    """docs/loop.md: with --ff every rerun is whole, so the loop turns green once the fix is in; with --lf a run
    item that failed stays selected without its passing cases, and its failure says how to get out."""
    make_experiment("exp", templates={"edited": {"provider": "python", "callable": "edited_candidate:route"}})
    (pytester.path / "exp" / "edited_candidate.py").write_text(EDITED_PY)
    (pytester.path / "broken").write_text("")
    args = ("exp", "--llmgate-candidate=edited")
    assert pytester.runpytest(*args).ret == pytest.ExitCode.TESTS_FAILED  # c1 errors, the run item fails
    (pytester.path / "broken").unlink()  # the fix
    for _ in range(2):  # --lf: c1 passes now, but the run item is judged on a partial session, again and again
        narrowed = pytester.runpytest(*args, "--lf")
        assert narrowed.ret == pytest.ExitCode.TESTS_FAILED
        narrowed.stdout.fnmatch_lines(["*INCOMPLETE_EVALUATION: edited: *; --lf kept this run item, which failed last "
                                       "time, with only the cases that failed, and a run is judged whole: run once "
                                       "without --lf (--ff runs every case, the failures first; docs/loop.md)*"])
    whole = pytester.runpytest(*args, "--ff")
    assert whole.ret == pytest.ExitCode.OK
    whole.stdout.fnmatch_lines(["  decision: PROMOTE edited *"])
    assert "partial session" not in whole.stdout.str() and "--lf kept" not in whole.stdout.str()


def test_a_candidate_none_of_whose_cases_ran_gets_no_record_and_keeps_the_decision_incomplete(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good",
                                "-k", "not also", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "  also-good (candidate): not run - every case deselected, skipped or never reached; no run record",
        "  decision: INCOMPLETE_EVALUATION: not run in this session: also-good (every case deselected or skipped, "
        "or never reached after a stop)",
        "records: 1 run(s) in .llmgate/runs",
        "report: .llmgate/report.json",
        "llmgate: partial session (-k 'not also'; 2 case item(s) deselected): the run(s) of also-good (the others "
        "ran every case) list the cases it did not run as NOT_RUN, are incomplete and are never promoted; run every "
        "case for a decision (llmgate runs lists partial runs with --all)",
    ])
    assert "split run" not in result.stdout.str() and "llmgate merge" not in result.stdout.str()
    (experiment,) = read_report(pytester.path / ".llmgate")["experiments"]
    assert [run["template_id"] for run in experiment["runs"]] == ["good"]
    assert experiment["not_run"] == [{"template_id": "also-good", "role": "candidate"}]
    assert experiment["decision_status"] == "INCOMPLETE_EVALUATION"


def test_a_session_that_left_out_only_a_baselines_cases_names_that_run_as_the_partial_one(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp", templates={"good": {"provider": "evidence_policy", "serve_evidence": ["log"]},
                                      "old": {"provider": "evidence_policy", "serve_evidence": "*"}})
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-baseline=old", "-k", "not old",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    # the candidate ran every case and is promoted: the line must not say that every run is incomplete
    result.stdout.fnmatch_lines([
        "  decision: PROMOTE good *",
        "llmgate: partial session (-k 'not old'; 2 case item(s) deselected): the run(s) of old (the others ran every "
        "case) list the cases it did not run as NOT_RUN, are incomplete and are never promoted; *",
    ])


def test_an_incomplete_run_shows_errors_and_not_run_columns(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-k", "c1", "-p", "no:cacheprovider")
    result.stdout.re_match_lines([
        r"\s+template\s+role\s+unsafe\s+unnecessary\s+errors\s+not run\s+exact\s+status",
        r"\s+good\s+candidate\s+0\s+0\s+0\s+1\s+50%\s+INCOMPLETE_EVALUATION",
    ])


@pytest.mark.slow
def test_an_interrupted_session_leaves_no_verdict_in_the_report(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp")
    assert pytester.runpytest("exp", "--llmgate-candidate=good").ret == pytest.ExitCode.OK
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "PROMOTE"
    pytester.makeconftest("""
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_call(item):
            raise KeyboardInterrupt
    """)
    result = pytester.runpytest_subprocess("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = read_report(pytester.path / ".llmgate")
    assert report["in_progress"] is True and report["experiments"] == []
    previous = json.loads((pytester.path / ".llmgate" / "report.previous.json").read_text())
    assert previous["experiments"][0]["decision_status"] == "PROMOTE"


def test_a_misspelt_required_key_names_the_unknown_key_next_to_the_missing_one(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    directory = make_experiment("exp")
    manifest = directory / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("evaluator_version:", "evalutor_version:"))
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "exp/llmgate.yaml:4: unknown key 'evalutor_version', a misspelling of 'evaluator_version'? (allowed: "
        "experiment, policy_id, evidence_version, evaluator_version, suites, templates, handoff, promotion, budget, evaluator)"
    ])
