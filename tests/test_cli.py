"""The ``llmgate`` command, run as a user runs it, on records the plugin wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BASELINE, FIX, FIX_B, MadeRuns, MakeExperiment, llmgate, read_report, runs_by_template


@pytest.fixture
def three_runs(pytester: pytest.Pytester, example: Path, made_runs: MadeRuns) -> dict[str, dict]:  # type: ignore[type-arg]
    return made_runs.into(pytester)


def test_the_console_script_is_installed_and_loads_no_pytest_layer_session_or_provider(tmp_path: Path) -> None:
    probe = "import json, sys, pytest_llmgate.cli.main; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    assert [m for m in loaded if m.split(".")[0] in ("pytest", "_pytest", "openai", "anthropic", "mlflow", "wandb")] == []
    ours = {m for m in loaded if m.startswith("pytest_llmgate")}
    pytest_layer_session_providers = {"pytest_llmgate.plugin.entry", "pytest_llmgate.plugin.nodes", "pytest_llmgate.engine.session",
                                      "pytest_llmgate.plugin.options", "pytest_llmgate.reports.terminal", "pytest_llmgate.reports.markdown"}
    assert not ours & pytest_layer_session_providers
    assert not {m for m in ours if "provider" in m or "openai" in m or "anthropic" in m}
    script = Path(sys.executable).parent / "llmgate"
    assert script.exists()
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("runs", "compare", "promote", "canary", "fingerprint"):
        assert command in done.stdout


def test_runs_lists_one_line_per_stored_run(pytester: pytest.Pytester, three_runs: dict) -> None:  # type: ignore[type-arg]
    done = llmgate(pytester.path, "runs")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["time", "run", "id", "template", "role", "status", "unsafe", "unnecessary", "exact",
                              "evaluation", "frozen"]
    assert len(lines) == 3
    fix_line = next(line for line in lines if f" {FIX} " in line)
    assert fix_line.split()[1:] == [three_runs[FIX]["run_id"], FIX, "candidate", "REJECT_UNNECESSARY_ABSTENTION",
                                    "0", "1", "75%", "94dfc930d2829d2c", "yes"]
    assert llmgate(pytester.path, "runs", "--experiment", "other").stdout.startswith("no stored runs")
    missing = llmgate(pytester.path, "runs", "--dir", "nowhere")  # a mistyped folder is no empty history
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith("llmgate: error: nowhere: is no records folder (a session writes one with ")
    (pytester.path / "fresh").mkdir()
    fresh = subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", "runs"], cwd=pytester.path / "fresh",
                           capture_output=True, text=True, check=False)
    assert (fresh.returncode, fresh.stdout) == (0, "no stored runs in .llmgate\n")  # no session here yet


@pytest.mark.parametrize("command", [("runs",), ("verify", ".llmgate")])
def test_output_into_a_closed_pipe_ends_quietly(pytester: pytest.Pytester, three_runs: dict, command: tuple[str, ...]  # type: ignore[type-arg]
                                                ) -> None:
    # `llmgate verify .llmgate | head -1`: the reader is gone before the output is; no BrokenPipeError traceback
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_llmgate.cli.main", *command], cwd=pytester.path,
                              stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (1, "")


def test_compare_comparable_runs_side_by_side(pytester: pytest.Pytester, three_runs: dict) -> None:  # type: ignore[type-arg]
    ids = [three_runs[t]["run_id"][:24] for t in (BASELINE, FIX, FIX_B)]  # unique prefixes
    done = llmgate(pytester.path, "compare", *ids)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("comparable: same policy, evidence, evaluator and fingerprints (evaluation 94dfc930d2829d2c)")
    assert "latency" not in done.stdout  # policy candidates make no call: no call latency to compare (it showed 0.00072ms)
    assert any(line.split() == ["unnecessary_abstention", "0", "1", "0"] for line in done.stdout.splitlines())
    assert any(line.split() == ["holdout.exact_route_rate", "50%", "50%", "100%"] for line in done.stdout.splitlines())


def test_compare_after_a_refreeze_is_not_comparable_and_names_the_fields(
    pytester: pytest.Pytester, example: Path, three_runs: dict  # type: ignore[type-arg]
) -> None:
    holdout = example / "holdout.suite.yaml"
    holdout.write_text(holdout.read_text().replace("expected_route: ABSTAIN", "expected_route: SERVE", 1))
    pytester.runpytest("example_suites", "--llmgate-freeze", f"--llmgate-candidate={FIX_B}", "--llmgate-out=after")
    after = runs_by_template(pytester.path / "after")[FIX_B]
    done = llmgate(pytester.path, "compare", three_runs[FIX_B]["run_id"],
                   str(pytester.path / "after" / "runs" / f"{after['run_id']}.json"))
    assert done.returncode == 2
    note, verdict, *rest = done.stdout.splitlines()  # the older run is read, saying its suites changed since
    assert note.startswith(f"note: .llmgate/runs/{three_runs[FIX_B]['run_id']}.json: suites changed since this run")
    assert verdict.startswith("NOT COMPARABLE")
    assert [line.split(":")[0].strip() for line in rest] == ["holdout_sha", "evaluation_sha"]


def test_promote_gives_the_decision_the_plugin_wrote(pytester: pytest.Pytester, three_runs: dict) -> None:  # type: ignore[type-arg]
    ids = [three_runs[t]["run_id"] for t in (BASELINE, FIX, FIX_B)]
    done = llmgate(pytester.path, "promote", *ids)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == read_report(pytester.path / ".llmgate")["experiments"][0]["decision"]

    done = llmgate(pytester.path, "promote", *ids, "--alias", "canary_b", "--rollback", "ci-answerer-v0",
                   "--out", "decision.json")
    assert done.returncode == 0, done.stderr
    decision = json.loads((pytester.path / "decision.json").read_text())
    assert (decision["alias"], decision["rollback_artifact"], decision["artifact_name"]) == (
        "canary_b", "ci-answerer-v0", FIX_B)
    assert done.stdout.startswith(f"decision written to decision.json: PROMOTE {FIX_B} -> canary_b (source run ")
    assert "; rollback ci-answerer-v0;" in done.stdout  # what the file holds (it printed the recorded ones)
    # a canary never rolls back to the promoted artifact, and a name is one line (a line break would forge the
    # verdict line `llmgate canary` prints)
    done = llmgate(pytester.path, "promote", *ids, "--rollback", FIX_B, "--out", "bad.json")
    assert done.returncode == 2 and "is the artifact being promoted: a canary would roll back to itself" in done.stderr
    done = llmgate(pytester.path, "promote", *ids, "--rollback", "v0\nCONTINUE_CANARY_MONITORING", "--out", "bad.json")
    assert done.returncode == 2 and "--rollback: must be one line of printable text" in done.stderr
    assert not (pytester.path / "bad.json").exists()
    forged = json.loads((pytester.path / "decision.json").read_text())
    forged["rollback_artifact"] = "v0\nCONTINUE_CANARY_MONITORING"
    (pytester.path / "forged.json").write_text(json.dumps(forged))
    done = llmgate(pytester.path, "canary", "forged.json", "--unsafe-claims", "1")
    assert done.returncode == 2 and "CONTINUE_CANARY_MONITORING" not in done.stdout
    # into a folder not made yet, replacing an earlier decision whole, no temporary file left
    for alias in ("first", "second"):
        done = llmgate(pytester.path, "promote", *ids, "--alias", alias, "--out", "decisions/d.json")
        assert done.returncode == 0, done.stderr
    assert json.loads((pytester.path / "decisions" / "d.json").read_text())["alias"] == "second"
    assert [p.name for p in (pytester.path / "decisions").iterdir()] == ["d.json"]


def test_promote_refuses_a_tie_and_names_both(pytester: pytest.Pytester, make_experiment: MakeExperiment) -> None:
    make_experiment("exp")
    pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good")
    runs = runs_by_template(pytester.path / ".llmgate")
    done = llmgate(pytester.path, "promote", runs["good"]["run_id"], runs["also-good"]["run_id"])
    assert done.returncode == 1
    assert done.stdout == ""
    assert "TIE_REQUIRES_REVIEW" in done.stderr
    assert f"good (run {runs['good']['run_id']})" in done.stderr
    assert f"also-good (run {runs['also-good']['run_id']})" in done.stderr


def test_promote_refuses_an_incomplete_run(pytester: pytest.Pytester, example: Path) -> None:
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "-k", "hold_001")
    run = runs_by_template(pytester.path / ".llmgate")[FIX_B]
    done = llmgate(pytester.path, "promote", run["run_id"])
    assert done.returncode == 1 and "INCOMPLETE_EVALUATION" in done.stderr


def test_unknown_and_ambiguous_run_references_are_clear_errors(pytester: pytest.Pytester, three_runs: dict) -> None:  # type: ignore[type-arg]
    done = llmgate(pytester.path, "promote", "19990101")
    assert done.returncode == 2 and "no stored run matches '19990101'" in done.stderr
    done = llmgate(pytester.path, "compare", "2")
    assert done.returncode == 2 and "'2' matches 3 runs" in done.stderr


@pytest.mark.parametrize("source", ["report", "decision"])
def test_canary_from_a_number(pytester: pytest.Pytester, three_runs: dict, source: str) -> None:  # type: ignore[type-arg]
    path = pytester.path / ".llmgate" / "report.json"
    if source == "decision":
        path = pytester.path / "decision.json"
        path.write_text(json.dumps(read_report(pytester.path / ".llmgate")["experiments"][0]["decision"]))
    calm = llmgate(pytester.path, "canary", str(path), "--unsafe-claims", "0")
    assert (calm.returncode, calm.stdout) == (0, "CONTINUE_CANARY_MONITORING\n")
    alarm = llmgate(pytester.path, "canary", str(path), "--unsafe-claims", "1")
    assert (alarm.returncode, alarm.stdout) == (1, "ROLL_BACK_TO:ci-answerer-v1\n")


def test_canary_from_a_window_file(pytester: pytest.Pytester, three_runs: dict) -> None:  # type: ignore[type-arg]
    report = str(pytester.path / ".llmgate" / "report.json")
    window = pytester.path / "window.jsonl"
    safe = [{"request_id": "r1", "route": "SERVE", "supported": True, "latency_ms": 412},  # other keys: ignored
            {"request_id": "r2", "route": "ABSTAIN", "supported": False}]
    window.write_text("".join(json.dumps(line) + "\n" for line in safe) + "\n")
    calm = llmgate(pytester.path, "canary", report, "--window", str(window))
    assert (calm.returncode, calm.stdout) == (0, "CONTINUE_CANARY_MONITORING\n")
    with window.open("a") as handle:
        handle.write(json.dumps({"request_id": "r3", "route": "SERVE", "supported": False}) + "\n")
    alarm = llmgate(pytester.path, "canary", report, "--window", str(window))
    assert (alarm.returncode, alarm.stdout) == (1, "ROLL_BACK_TO:ci-answerer-v1\n")
    # a log line's own huge number, on a line the repeated-key check reads: no traceback (Python's int limit)
    window.write_text('{"request_id": "r\\u0031", "route": "SERVE", "supported": true, "n": ' + "1" * 5000 + "}\n")
    big = llmgate(pytester.path, "canary", report, "--window", str(window))
    assert (big.returncode, big.stdout, big.stderr) == (0, "CONTINUE_CANARY_MONITORING\n", "")
    # a window with no request (a log export that failed) is no evidence of a healthy canary: it said CONTINUE
    for empty in (b"", b"\n  \n"):
        window.write_bytes(empty)
        done = llmgate(pytester.path, "canary", report, "--window", str(window))
        assert (done.returncode, done.stdout) == (2, "")
        assert "window.jsonl: holds no request: an empty window says nothing of the canary" in done.stderr


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"request_id": "r9", "route": "MAYBE", "supported": false}',
         "route: 'MAYBE' is not one of ['SERVE', 'ABSTAIN']"),
        ('{"request_id": "r9", "route": "SERVE"}', "missing required key 'supported'"),
        ('{"request_id": "r9", "route": "SERVE", "suported": false}',
         "missing required key 'supported' (unknown key 'suported', a misspelling of 'supported'?)"),
        ('{"request_id": "r9", "rout": "SERVE"}',  # every missing key at once, each with its misspelling
         "missing required keys 'route' (unknown key 'rout', a misspelling of 'route'?) and 'supported'"),
        ('{"request_id": "r9", "route": "SERVE", "supported": "no"}', "supported: 'no' is not true or false"),
        ('{"request_id": null, "route": "SERVE", "supported": false}',
         "request_id: null is not a string or an integer"),
        ("{not json", "cannot be read as JSON (JSON is malformed: object keys must be strings"),
        (b'{"request_id": "r\xff", "route": "SERVE", "supported": false}',
         "cannot be read as JSON (Invalid UTF-8 encoded string)"),
        ('["r9", "SERVE", false]', "not a JSON object"),
        # JSON decoders keep the last of a repeated key: the unsafe claim was read as supported (stop 36's review)
        ('{"request_id": "r9", "route": "SERVE", "supported": false, "supported": true}',
         "gives 'supported' twice; a request is read only when each of its fields is given once"),
        ('{"request_id": "r9", "route": "SERVE", "\\u0073upported": false, "supported": true}',
         "gives 'supported' twice"),
    ],
)
def test_a_malformed_window_line_is_an_error_naming_the_line(
    pytester: pytest.Pytester, three_runs: dict, bad_line: str | bytes, problem: str  # type: ignore[type-arg]
) -> None:
    window = pytester.path / "window.jsonl"
    line = bad_line if isinstance(bad_line, bytes) else bad_line.encode()
    window.write_bytes(b'{"request_id": 1, "route": "SERVE", "supported": true}\n' + line + b"\n")
    done = llmgate(pytester.path, "canary", str(pytester.path / ".llmgate" / "report.json"), "--window", str(window))
    assert done.returncode == 2 and done.stdout == ""
    assert f"window.jsonl:2: {problem}" in done.stderr


def test_fingerprint_of_an_experiment_and_a_suite_against_the_lock(pytester: pytest.Pytester, example: Path) -> None:
    done = llmgate(pytester.path, "fingerprint", "example_suites/ci-claim-gate-repair",
                   "example_suites/ci-claim-gate-repair/holdout.suite.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ci-claim-gate-repair (example_suites/ci-claim-gate-repair): regression 2be42790a4f41355  "
        "holdout d47cdbbfe1caae89  evaluation 94dfc930d2829d2c",
        "  lock: matches",
        "example_suites/ci-claim-gate-repair/holdout.suite.yaml: d47cdbbfe1caae89 (suite holdout; lock: matches)",
    ]
    regression = example / "regression.suite.yaml"
    regression.write_text(regression.read_text().replace("source: known_good", "source: known_bad"))
    done = llmgate(pytester.path, "fingerprint", "example_suites/ci-claim-gate-repair")
    assert done.returncode == 1
    assert "  lock: DIFFERS" in done.stdout and "    reg_002: source known_good -> known_bad" in done.stdout


def test_runs_filters_by_experiment_and_template_and_shows_the_last_n(
    pytester: pytest.Pytester, three_runs: dict  # type: ignore[type-arg]
) -> None:
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}")  # a second session: four runs of FIX_B's
    done = llmgate(pytester.path, "runs", "--template", FIX_B)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()[1:]
    assert len(rows) == 2 and all(FIX_B in row for row in rows)
    last = llmgate(pytester.path, "runs", "--last", "1").stdout.splitlines()[1:]
    assert len(last) == 1 and FIX_B in last[0]
    none = llmgate(pytester.path, "runs", "--experiment", "ci-claim-gate-repair", "--template", "nope")
    assert none.stdout.strip() == "no stored runs in .llmgate for experiment ci-claim-gate-repair and template nope"
    bad = llmgate(pytester.path, "runs", "--last", "0")
    assert bad.returncode == 2 and "--last: must be 1 or more" in bad.stderr


def test_compare_and_promote_take_a_session_by_its_report_or_last(
    pytester: pytest.Pytester, three_runs: dict  # type: ignore[type-arg]
) -> None:
    last = llmgate(pytester.path, "promote", "--last")
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["source_run_id"] == three_runs[FIX_B]["run_id"]
    by_report = llmgate(pytester.path, "compare", "--report", ".llmgate/report.json")
    assert by_report.returncode == 0, by_report.stderr
    assert by_report.stdout.splitlines()[0].startswith("comparable:")
    assert all(three_runs[t]["run_id"] in by_report.stdout for t in (BASELINE, FIX, FIX_B))
    neither = llmgate(pytester.path, "promote")
    assert neither.returncode == 2
    assert "name the runs (run ids or paths), or give --report REPORT.json or --last" in neither.stderr


def test_every_option_of_every_command_has_help_text() -> None:
    from pytest_llmgate.cli.main import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for name, command in subparsers.choices.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"llmgate {name}: {action.option_strings or action.dest} has no help text"


def test_canary_names_the_requests_and_the_figure_behind_a_rollback(
    pytester: pytest.Pytester, three_runs: dict  # type: ignore[type-arg]
) -> None:
    window = pytester.path / "window.jsonl"
    window.write_text("\n".join(json.dumps(r) for r in [
        {"request_id": "req_301", "route": "SERVE", "supported": True},
        {"request_id": "req_302", "route": "SERVE", "supported": False},
        {"request_id": "req_303", "route": "ABSTAIN", "supported": False},
    ]) + "\n")
    done = llmgate(pytester.path, "canary", ".llmgate/report.json", "--window", "window.jsonl")
    assert done.returncode == 1
    assert done.stdout == "ROLL_BACK_TO:ci-answerer-v1\n"
    assert done.stderr.strip() == (f"llmgate: 1 unsafe claim(s) served, in window.jsonl: request(s) req_302; the canary "
                                   f"of {FIX_B} allows none: roll back to ci-answerer-v1")
    figure = llmgate(pytester.path, "canary", ".llmgate/report.json", "--unsafe-claims", "3")
    assert figure.returncode == 1 and "3 unsafe claim(s) served, --unsafe-claims 3" in figure.stderr


def test_promote_last_of_a_session_whose_other_candidate_did_not_run_promotes_nothing(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # the report's not-run candidate keeps the decision incomplete: deselecting one side never breaks a tie
    make_experiment("exp")
    pytester.runpytest("exp", "--llmgate-candidate=good", "--llmgate-candidate=also-good", "-k", "not also")
    done = llmgate(pytester.path, "promote", "--last")
    assert (done.returncode, done.stdout) == (1, "")
    assert "no promotion: INCOMPLETE_EVALUATION: not run in this session: also-good" in done.stderr


def test_fingerprint_of_several_paths_fails_when_any_differs_from_the_lock(
    pytester: pytest.Pytester, example: Path
) -> None:
    # a later path that matches its lock does not hide an earlier one that differs
    regression = example / "regression.suite.yaml"
    regression.write_text(regression.read_text().replace("source: known_good", "source: known_bad"))
    done = llmgate(pytester.path, "fingerprint", "example_suites/ci-claim-gate-repair",
                   "example_suites/ci-claim-gate-repair/holdout.suite.yaml")
    assert done.returncode == 1
    assert "  lock: DIFFERS" in done.stdout and "(suite holdout; lock: matches)" in done.stdout


def test_promote_of_runs_that_are_not_comparable_is_an_error_not_a_rejection(
    pytester: pytest.Pytester, example: Path, three_runs: dict  # type: ignore[type-arg]
) -> None:
    # exit 2: the runs cannot be ranked at all (1 would say a candidate was judged and rejected)
    manifest = example / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("claim-route-eval-v2", "claim-route-eval-v3"))
    pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-out=after")
    after = runs_by_template(pytester.path / "after")[FIX_B]
    done = llmgate(pytester.path, "promote", three_runs[BASELINE]["run_id"],
                   str(pytester.path / "after" / "runs" / f"{after['run_id']}.json"))
    assert (done.returncode, done.stdout) == (2, "")
    assert "no promotion: RUNS_NOT_COMPARABLE: runs differ in evaluator_version" in done.stderr


def test_a_partial_run_over_its_budget_is_listed_not_refused(
    pytester: pytest.Pytester, make_experiment: MakeExperiment
) -> None:
    # an incomplete run gets no budget verdict when written, and llmgate does not demand one when reading it
    make_experiment("exp", budget={"max_latency_p95_ms": 0})
    pytester.runpytest("exp", "--llmgate-candidate=good")
    pytester.runpytest("exp", "--llmgate-candidate=good", "-k", "c1")
    done = llmgate(pytester.path, "runs", "--all")
    assert done.returncode == 0, done.stderr
    statuses = [line.split()[4] for line in done.stdout.splitlines()[1:]]
    assert statuses == ["REJECT_OVER_BUDGET", "INCOMPLETE_EVALUATION"]
