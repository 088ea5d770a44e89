"""Options come from one table: each has an ini key (but --llmgate-freeze), merged one way, documented once."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmgate.plugin.options import OPTIONS

from .conftest import MakeExperiment, read_report

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_option_and_its_ini_key_is_in_the_readme_table() -> None:
    text = README.read_text(encoding="utf-8")
    for option in OPTIONS:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{option.flag}")), None)
        assert row is not None, f"{option.flag} is missing from the README's options table"
        if option.ini:
            assert f"`{option.ini_key}`" in row, f"{option.ini_key} is missing from the row of {option.flag}"


def test_ini_keys_select_runs_and_place_the_outputs(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp")
    pytester.makeini(
        "[pytest]\nllmgate_candidates = good\nllmgate_baselines = unsafe\nllmgate_out = records\n"
        "llmgate_markdown = summary.md\nllmgate_trials = 2\nllmgate_concurrency = 3\n"
    )
    result = pytester.runpytest("exp", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=3 + 1, xfailed=1)  # + good's run item
    (experiment,) = read_report(pytester.path / "records")["experiments"]
    assert [(run["template_id"], run["role"]) for run in experiment["runs"]] == [("unsafe", "baseline"), ("good", "candidate")]
    assert "### exp" in (pytester.path / "summary.md").read_text()


def test_the_command_line_wins_over_the_ini_key(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp")
    pytester.makeini("[pytest]\nllmgate_candidates = unsafe\nllmgate_out = records\n")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--llmgate-out=elsewhere")
    assert result.ret == pytest.ExitCode.OK
    (experiment,) = read_report(pytester.path / "elsewhere")["experiments"]
    assert [run["template_id"] for run in experiment["runs"]] == ["good"]
    assert not (pytester.path / "records").exists()


@pytest.mark.parametrize(
    ("ini", "words"),
    [
        ("llmgate_trials = two", "llmgate_trials (ini)='two': expected a whole number"),
        ("llmgate_concurrency = 0", "llmgate_concurrency (ini)=0: must be 1 or more"),
        ("llmgate_record = sometimes", "llmgate_record (ini)='sometimes': expected one of none, once, new_episodes, all"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error_naming_the_key(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, ini: str, words: str
) -> None:
    make_experiment("exp")
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{words}*"])


def test_a_bad_command_line_count_names_the_flag(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--llmgate-trials=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmgate-trials=0: must be 1 or more*"])
    # a trillion trials filled the memory within seconds: the trials have a ceiling, here and in an artifact
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good",
                                "--llmgate-trials=1000000000000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmgate-trials=1000000000000: must be at most 10000*"])
    (pytester.path / "exp/templates/many.yaml").write_text(
        "template_id: many\nprovider: python\ncallable: nowhere:route\ntrials: 10001\n")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=many")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*exp/templates/many.yaml:4: trials: 10001 is greater than the maximum of 10000*"])


def test_an_ini_path_is_relative_to_the_rootdir(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # protects: llmgate_out in an ini file names the same folder wherever pytest is invoked from
    make_experiment("exp")
    pytester.makeini("[pytest]\nllmgate_out = records\n")
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest("../exp", "-p", "no:cacheprovider", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.OK
    assert (pytester.path / "records" / "report.json").is_file() and not (pytester.path / "sub" / "records").exists()


def test_all_candidates_leave_out_the_baselines(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: --llmgate-candidate=all never runs a baseline a second time, as a candidate
    make_experiment("exp")
    pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=all", "--llmgate-baseline=unsafe")
    (experiment,) = read_report(pytester.path / ".llmgate")["experiments"]
    assert sorted((run["template_id"], run["role"]) for run in experiment["runs"]) == [
        ("also-good", "candidate"), ("good", "candidate"), ("unsafe", "baseline")]


def test_all_as_a_baseline_is_a_usage_error(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    # protects: --llmgate-baseline=all is refused, never silently a session without a baseline
    make_experiment("exp")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good", "--llmgate-baseline=all")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'all' selects candidates only; name each baseline*"])
