"""Our own hooks: called on the controller only, once per run record and once per session report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate.exporters.export import export_written
from pytest_llmgate.io.store import REPORT_FILE
from pytest_llmgate.model.errors import ExportError, LlmgateError, kept
from pytest_llmgate.records.codec import dump
from pytest_llmgate.records.outcome import SessionResult
from pytest_llmgate.records.report import SessionReport

from .conftest import MakeExperiment, runs_by_template

CONFTEST = '''
import json, os

def pytest_llmgate_run_record(config, record, files):
    assert all(path.is_file() for path in files.values()) and len(files) == 2
    record["tags"]["exporter_run_id"] = "exp-" + record["params"]["template_id"]
    with open("calls.jsonl", "a") as calls:
        calls.write(json.dumps({"hook": "run_record", "pid": os.getpid(),
                                "worker": hasattr(config, "workerinput")}) + "\\n")

def pytest_llmgate_session_report(config, report, path):
    with open("calls.jsonl", "a") as calls:
        calls.write(json.dumps({"hook": "session_report", "pid": os.getpid(), "path": str(path),
                                "decisions": [e["decision_status"] for e in report["experiments"]],
                                "worker": hasattr(config, "workerinput")}) + "\\n")
'''


def test_hooks_fire_on_the_controller_once_per_record_and_report(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, workers: tuple[str, ...]
) -> None:
    make_experiment("exp")
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-baseline=unsafe", *workers)
    assert result.ret == pytest.ExitCode.OK
    calls = [json.loads(line) for line in (pytester.path / "calls.jsonl").read_text().splitlines()]
    assert [c["hook"] for c in calls] == ["run_record", "run_record", "session_report"]
    assert not any(c["worker"] for c in calls)
    assert len({c["pid"] for c in calls}) == 1
    assert calls[-1]["decisions"] == ["PROMOTE"]
    assert calls[-1]["path"] == str(pytester.path / ".llmgate" / "report.json")
    runs = runs_by_template(pytester.path / ".llmgate")
    assert runs["good"]["tags"]["exporter_run_id"] == "exp-good"
    assert runs["unsafe"]["tags"]["exporter_run_id"] == "exp-unsafe"


def test_hookspecs_are_registered_with_docs(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    for name in ("pytest_llmgate_run_record", "pytest_llmgate_session_report"):
        caller = getattr(config.hook, name)
        assert caller.spec is not None and caller.spec.function.__doc__


def test_a_failing_session_report_hook_fails_a_passing_session(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # protects: an exporter hook that fails is an ERROR line and exit status 1, though every test passed
    make_experiment("exp")
    pytester.makeconftest("def pytest_llmgate_session_report(config, report, path):\n    raise OSError('store down')\n")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["ERROR llmgate: OSError: store down"])
    assert (pytester.path / ".llmgate" / "report.json").is_file()  # the local records are written all the same


@pytest.mark.parametrize("partial", [True, False], ids=["with-session-notes", "without"])
def test_a_session_report_hook_sees_the_sessions_notes_and_its_own_notes_are_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment, partial: bool
) -> None:
    # protects: the report reaches the hook as data, its notes a list (empty or the session's) that the hook may
    # add to (docs/tracking.md), and the hook's edit is what is written
    make_experiment("exp")
    pytester.makeconftest(
        "def pytest_llmgate_session_report(config, report, path):\n"
        f"    assert any('partial session' in note for note in report['notes']) is {partial}, report['notes']\n"
        "    report['notes'].append('exported to the team store')\n")
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good",
                                *(["-k", "not c2"] if partial else []))
    # a partial session's run is incomplete
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if partial else pytest.ExitCode.OK)
    result.stdout.no_fnmatch_line("*ERROR llmgate*")
    notes = json.loads((pytester.path / ".llmgate" / "report.json").read_text())["notes"]
    assert any("partial session" in note for note in notes) is partial
    assert notes[-1] == "exported to the team store"


class NoteAdder:
    """An exporter (the ``Exporter`` protocol of ``llmgate merge``) that adds a note to the report, as W&B's does."""

    def __init__(self) -> None:
        self.failures: list[LlmgateError] = []

    def pytest_llmgate_run_record(self, config: object, record: dict[str, object], files: object) -> None:
        pass

    def pytest_llmgate_session_report(self, config: object, report: dict[str, Any], path: Path) -> None:
        report.setdefault("notes", []).append("exported to the team store")

    def summary_lines(self) -> list[str]:
        return []


def test_an_exporter_of_llmgate_merge_may_add_a_note_beside_the_merged_reports_notes(tmp_path: Path) -> None:
    # the merge's export read the written report back as data whose notes were a tuple: W&B's offline note failed
    report_path = tmp_path / REPORT_FILE
    report_path.write_bytes(dump(SessionReport(generated_at="2026-12-06T00:00:00Z", experiments=(),
                                               notes=("llmgate: no known price for model m",))))
    export_written(SessionResult(outcomes=(), report_path=report_path, run_paths=(), errors=()), tmp_path,
                   [NoteAdder()])
    assert json.loads(report_path.read_text())["notes"] == ["llmgate: no known price for model m",
                                                            "exported to the team store"]


class Broken(NoteAdder):
    """An exporter whose service is down: it keeps its failure, as the built-in ones do."""

    def pytest_llmgate_session_report(self, config: object, report: dict[str, Any], path: Path) -> None:
        with kept(self.failures):
            raise ExportError(None, None, "the team store is down")


def test_llmgate_merge_hands_each_exporter_the_report_whichever_failed_before_it(tmp_path: Path) -> None:
    report_path = tmp_path / REPORT_FILE
    report_path.write_bytes(dump(SessionReport(generated_at="2026-12-06T00:00:00Z", experiments=())))
    _, errors = export_written(SessionResult(outcomes=(), report_path=report_path, run_paths=(), errors=()), tmp_path,
                               [Broken(), NoteAdder()])
    assert [error.message() for error in errors] == ["the team store is down"]
    assert json.loads(report_path.read_text())["notes"] == ["exported to the team store"]


def gate_with_hook(pytester: pytest.Pytester, make_experiment: MakeExperiment, hook: str) -> pytest.RunResult:
    """The gate over ``exp`` with ``hook`` (a conftest's source) listening; failed by the hook's error line."""
    make_experiment("exp")
    pytester.makeconftest(hook)
    result = pytester.runpytest("exp", "-p", "no:cacheprovider", "--llmgate-candidate=good")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    return result


def test_a_session_report_hook_that_leaves_the_report_invalid_is_an_error_and_the_report_is_not_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    result = gate_with_hook(pytester, make_experiment,
                            "def pytest_llmgate_session_report(config, report, path):\n    report['experiments'] = 'none'\n")
    result.stdout.fnmatch_lines(["*an exporter hook left it invalid*it is not written*"])
    written = json.loads((pytester.path / ".llmgate" / "report.json").read_text())
    assert written["in_progress"] is True and written["experiments"] == []  # the marker that no verdict was reached


def test_a_run_record_hook_that_leaves_the_record_invalid_is_an_error_and_the_record_stays_as_written(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # the record is written before the hooks see it (a tracker never holds a run without one): an invalid edit must
    # not delete the record another exporter may already have logged
    result = gate_with_hook(pytester, make_experiment,
                            "def pytest_llmgate_run_record(config, record, files):\n    record['tags']['n'] = 1\n")
    result.stdout.fnmatch_lines(["  decision: PROMOTE good *",
                                 "ERROR llmgate: *an exporter hook left it invalid*it stays as written"])
    record = runs_by_template(pytester.path / ".llmgate")["good"]
    assert "n" not in record["tags"] and record["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"
