"""SPEC §6: every bad input gets an error naming the file, the line and the problem; no record is lost."""

from __future__ import annotations

import json

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import MakeExperiment, read_report, snapshot, write_yaml

SUITE_HEAD = "cases:\n  - case_id: c1\n    slice_name: s\n    evidence_state: log\n    expected_route: SERVE\n    source: t\n"


def replace_suite(text: str) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        (directory / "main.suite.yaml").write_text(text)

    return breaker


def edit_manifest(**changes: object) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        import yaml

        manifest = yaml.safe_load((directory / "llmgate.yaml").read_text())
        manifest.update(changes)
        write_yaml(directory / "llmgate.yaml", manifest)

    return breaker


def write_template(name: str, text: str) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        (directory / "templates" / name).write_text(text)

    return breaker


def stray_suite(directory: Path) -> None:
    (directory / "stray.suite.yaml").write_text(SUITE_HEAD)


def outside_suite(directory: Path) -> None:
    (directory.parent / "outside.suite.yaml").write_text(SUITE_HEAD.replace("c1", "o1"))
    manifest = (directory / "llmgate.yaml").read_text()
    (directory / "llmgate.yaml").write_text(manifest.replace("main: main.suite.yaml", "main: ../outside.suite.yaml"))


def callable_exiting_on_import(directory: Path) -> None:
    (directory / "exits_on_import.py").write_text("import sys\n\nsys.exit(3)\n")
    (directory / "templates" / "good.yaml").write_text(
        "template_id: good\nprovider: python\ncallable: exits_on_import:route\n")


LLM_TEMPLATE = "template_id: good\nprovider: openai_chat\nmodel: m\nprompt:\n  user: 'Evidence: {{ evidence_state }}'\n"


def recordings_not_utf8(directory: Path) -> None:
    (directory / "templates" / "good.yaml").write_text(LLM_TEMPLATE)
    (directory / "recordings").mkdir()
    (directory / "recordings" / "good.jsonl").write_bytes(b'{"key": "k", "reply": "{}"}\n{"key": "\xff"}\n')


def brackets_escaped(pattern: str) -> str:
    """Square brackets matched literally by fnmatch."""
    return re.sub(r"[\[\]]", lambda m: f"[{m.group()}]", pattern)


BAD_INPUTS = [
    pytest.param(replace_suite(SUITE_HEAD + "  - case_id: [c2\n"), "exp/main.suite.yaml:8: YAML syntax error",
                 id="yaml-syntax"),
    pytest.param(replace_suite(SUITE_HEAD + "  - case_id: c2\n    slice_name: s\n    evidence_state: log\n"
                               "    expected_route: SERVE\n"),
                 "exp/main.suite.yaml:7: cases[1]: 'source' is a required property", id="schema-missing-field"),
    pytest.param(replace_suite(SUITE_HEAD + "    colour: blue\n"),
                 "exp/main.suite.yaml:7: cases[0]: unknown key 'colour' (allowed: case_id, slice_name, evidence_state, "
                 "expected_route, source, input)", id="schema-unknown-key"),
    pytest.param(edit_manifest(owner="me"), "exp/llmgate.yaml:*: unknown key 'owner'", id="manifest-unknown-key"),
    pytest.param(replace_suite(SUITE_HEAD + "    source: u\n"),
                 "exp/main.suite.yaml:7: duplicate key 'source' (first defined on line 6)", id="duplicate-key"),
    pytest.param(replace_suite(SUITE_HEAD + SUITE_HEAD.replace("cases:\n", "")),
                 "exp/main.suite.yaml:7: duplicate case_id 'c1' (first on line 2)", id="duplicate-case-id"),
    pytest.param(replace_suite(SUITE_HEAD.replace("SERVE", "MAYBE")),
                 "exp/main.suite.yaml:5: cases[0].expected_route: 'MAYBE' is not one of ['SERVE', 'ABSTAIN']",
                 id="unknown-route"),
    pytest.param(write_template("good.yaml", "template_id: goood\nprovider: evidence_policy\nserve_evidence: [log]\n"),
                 "exp/templates/good.yaml:1: template_id 'goood' differs from the file name 'good'*", id="template-id"),
    pytest.param(stray_suite, "exp/stray.suite.yaml: is not listed in the suites of any llmgate.yaml*",
                 id="unlisted-suite"),
    pytest.param(write_template("good.yaml", "template_id: good\nprovider: python\ncallable: no_such_module:route\n"),
                 "exp/templates/good.yaml:3: callable 'no_such_module:route' cannot be imported: "
                 "ModuleNotFoundError*", id="callable-import"),
    pytest.param(callable_exiting_on_import, "exp/templates/good.yaml:3: callable 'exits_on_import:route' cannot be "
                 "imported: SystemExit: 3", id="callable-exits-on-import"),
    pytest.param(write_template("good.yaml", LLM_TEMPLATE + "route:\n  regex: '(unclosed'\n"),
                 "exp/templates/good.yaml:7: route.regex '(unclosed' is not a regular expression: missing ), "
                 "unterminated subpattern at position 0", id="route-regex"),
    pytest.param(recordings_not_utf8, "exp/recordings/good.jsonl:2: not UTF-8 text (byte 0xff at column 10)",
                 id="recordings-not-utf8"),
    pytest.param(write_template("good.yaml", "template_id: good\nprovider: evidence_policy\nserve_evidence: [log]\n"
                                "model: m\n"),
                 "exp/templates/good.yaml:4: unknown key 'model' (allowed: template_id, provider, description, case_timeout, "
                 "serve_evidence, prompt)", id="setting-of-another-provider"),
    pytest.param(outside_suite, "exp/llmgate.yaml:6: suites.main: path '../outside.suite.yaml' leaves the "
                 "experiment directory", id="path-leaves-directory"),
]


@pytest.mark.parametrize(("breaker", "message"), BAD_INPUTS)
def test_bad_input_is_a_clear_error_and_keeps_every_record(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, breaker: Callable[[Path], None], message: str
) -> None:
    directory = make_experiment("exp")
    good = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert good.ret == pytest.ExitCode.OK
    before = snapshot(pytester.path / ".llmgate")
    assert len(before) == 3  # a run record, its redacted report, the session report

    breaker(directory)
    result = pytester.runpytest("exp", "--llmgate-candidate=good")

    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*{brackets_escaped(message)}*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    after = snapshot(pytester.path / ".llmgate")
    # Every record is kept; the last report is kept whole beside the marker that replaced it (no stale verdict).
    assert after.pop("report.previous.json") == before["report.json"]
    marker = json.loads(after.pop("report.json"))
    assert (marker["in_progress"], marker["experiments"]) == (True, [])
    assert after == {name: data for name, data in before.items() if name != "report.json"}


def test_a_collection_error_in_one_experiment_names_it_even_with_continue(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("first")
    broken = make_experiment("second")
    (broken / "main.suite.yaml").write_text("cases: [\n")
    result = pytester.runpytest("first", "second", "--llmgate-candidate=good", "--continue-on-collection-errors")
    result.stdout.fnmatch_lines(["*ERROR collecting second*", "*second/main.suite.yaml:2: YAML syntax error*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = (pytester.path / ".llmgate" / "report.json").read_text()
    assert '"experiment": "first"' in report and '"experiment": "second"' not in report


def test_a_missing_suite_file_names_the_manifest_line(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    directory = make_experiment("exp")
    (directory / "main.suite.yaml").unlink()
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/llmgate.yaml:6: suite 'main': no file 'main.suite.yaml'*"])


def test_a_case_id_repeated_across_suites_is_an_error(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    from .conftest import case

    make_experiment("exp", suites={"a": [case("c1", "log", "SERVE")], "b": [case("c1", "log", "SERVE")]})
    result = pytester.runpytest("exp", "--llmgate-candidate=good")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*exp/b.suite.yaml:2: duplicate case_id 'c1': already in suite 'a'*"])


def test_an_unwritable_out_dir_is_one_clear_error_before_any_run(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    make_experiment("exp")
    (pytester.path / "blocked").write_text("a file where the records folder should be")
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-out=blocked")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found at the start, before any candidate is called
    result.stderr.fnmatch_lines(["ERROR: blocked/report.json: cannot be written: blocked is a file, not a folder"])
    result.stdout.no_fnmatch_line("*passed*")
    assert (pytester.path / "blocked").read_text().startswith("a file")


def test_a_run_record_that_cannot_be_written_stops_the_promotion(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # Two eligible candidates tie; if one's record is lost, the other must not be promoted in its place.
    make_experiment("exp")
    pytester.makeconftest('''
        import os

        def pytest_llmgate_run_record(config, record, files):
            if record["params"]["template_id"] == "also-good":  # something takes the record's name first
                os.makedirs(os.path.join(".llmgate", "runs", record["run_id"] + ".json"))
    ''')
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*decision: INCOMPLETE_EVALUATION: no run record could be written for also-good; nothing is promoted*",
        "*ERROR llmgate: .llmgate/runs/*.json: already exists; run records are never overwritten*",
    ])
    report = read_report(pytester.path / ".llmgate")["experiments"][0]
    assert report["decision_status"] == "INCOMPLETE_EVALUATION" and report["decision"] is None
    assert [run["template_id"] for run in report["runs"]] == ["good"]
