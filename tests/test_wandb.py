"""The W&B exporter in offline mode, read back from what it wrote with ``wandb leet inspect --json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import BASELINE, FIX, FIX_B, THREE_RUNS, read_report, runs_by_template

pytestmark = pytest.mark.slow  # a real (offline) W&B run for every test


@pytest.fixture(scope="module", autouse=True)
def _wandb_imported() -> None:
    """W&B imported before any pytester run (whose in-process runs drop the modules first imported inside them), in
    a fixture so that a session leaving these tests out does not pay for it. Skips without the extra."""
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install 'pytest-llmgate[wandb]'")


def inspect(run_dir: Path, *args: str) -> str:
    wandb_cli = Path(sys.executable).parent / "wandb"
    done = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", *args, str(run_dir)], capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout


def read_back(run_dir: Path) -> dict[str, Any]:
    state = json.loads(inspect(run_dir, "--summary"))
    artifacts = [json.loads(line)["artifact"] for line in inspect(run_dir).splitlines()
                 if json.loads(line).get("type") == "artifact"]
    return {"state": state, "artifacts": artifacts}


@pytest.fixture(autouse=True)
def _no_wandb_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own W&B settings (WANDB_MODE, WANDB_DIR ...) are not the tests'."""
    for variable in [v for v in os.environ if v.startswith("WANDB_")]:
        monkeypatch.delenv(variable)


@pytest.mark.usefixtures("example")
def test_every_run_becomes_an_offline_wandb_run_with_its_candidate_artifact(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("example_suites", *THREE_RUNS, "--llmgate-wandb")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # v1.2-fix gates; the export itself succeeded
    result.stdout.no_fnmatch_line("*ERROR llmgate*")
    result.stdout.fnmatch_lines(["wandb: 3 run(s) logged, offline (wandb sync uploads them); files in .llmgate/wandb"])
    out = pytester.path / ".llmgate"
    records = runs_by_template(out)
    run_dirs = sorted((out / "wandb" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 3
    assert not [p for p in pytester.path.iterdir() if p.name == "wandb"]  # everything under DIR/wandb
    seen = {}
    for run_dir in run_dirs:
        back = read_back(run_dir)
        state = back["state"]
        record = records[state["name"]]
        seen[state["name"]] = back
        assert state["project"] == "ci-claim-gate-repair" and state["state"] == "finished"
        assert record["tags"]["wandb_run_id"] == state["run_id"]
        assert set(state["tags"]) == {record["role"], record["status"], "ci-claim-gate-repair"}
        for key, value in record["metrics"].items():
            if key != "cost":
                assert state["summary"][key] == value
        for key, value in record["metrics"]["cost"].items():  # the cost figures join the counts; null ones do not
            assert state["summary"].get(key) == value
        assert state["summary"]["holdout.unnecessary_abstention"] == record["suite_metrics"]["holdout"]["unnecessary_abstention"]
        assert state["config"]["evaluation_sha"] == record["params"]["evaluation_sha"]
        assert state["config"]["template_sha256"] == record["params"]["template_sha256"]
        assert state["config"]["decision_status"] == "PROMOTE"  # the experiment's verdict (it was not exported)
        (artifact,) = back["artifacts"]
        assert (artifact["name"], artifact["type"]) == (state["name"], "candidate")
        assert state.get("console_lines", 0) == 0  # pytest's output (and any input in it) is not captured
    assert sorted(seen[FIX_B]["artifacts"][0]["aliases"]) == ["canary_candidate", "latest"]
    assert seen[FIX]["artifacts"][0]["aliases"] == ["latest"] and seen[BASELINE]["artifacts"][0]["aliases"] == ["latest"]
    assert read_report(out)["notes"] == [
        "wandb: offline mode: the candidate artifact was logged with its alias, but not linked to a registry"]


@pytest.mark.usefixtures("example")
def test_the_project_option_names_the_wandb_project(pytester: pytest.Pytester) -> None:
    pytester.runpytest_subprocess("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-wandb",
                                  "--llmgate-wandb-project=gates")
    (run_dir,) = (pytester.path / ".llmgate" / "wandb" / "wandb").glob("offline-run-*")
    assert read_back(run_dir)["state"]["project"] == "gates"


def offline_runs(out: Path) -> dict[str, dict[str, Any]]:
    """Each offline W&B run under ``out`` by name: project, config, summary, tags, artifacts, without run ids,
    times and measured latencies."""
    found = {}
    for run_dir in (out / "wandb" / "wandb").glob("offline-run-*"):
        back = read_back(run_dir)
        state = back["state"]
        found[state["name"]] = {
            "project": state["project"], "state": state["state"], "tags": sorted(state["tags"]),
            "config": {k: v for k, v in state["config"].items() if k != "llmgate_run_id"},
            "summary": {k: v for k, v in state["summary"].items() if not k.startswith("_") and "latency" not in k},
            "artifacts": [(a["name"], a["type"], sorted(a["aliases"])) for a in back["artifacts"]],
        }
    return found


@pytest.mark.usefixtures("example")
def test_llmgate_merge_exports_the_merged_runs_to_wandb_as_one_session_does(pytester: pytest.Pytester) -> None:
    single = pytester.runpytest_subprocess("example_suites", *THREE_RUNS, "--llmgate-wandb", "--llmgate-out=single")
    assert single.ret == pytest.ExitCode.TESTS_FAILED
    for group in (1, 2):
        pytester.runpytest("example_suites", "-p", "no:cacheprovider", *THREE_RUNS, f"--llmgate-out=parts/{group}",
                           "--splits", "2", "--group", str(group))
    merged = pytester.run(sys.executable, "-m", "pytest_llmgate.cli.main", "merge", "parts/1", "parts/2", "--out", "merged",
                          "--wandb")
    assert merged.ret == 1, merged.stderr.str()  # v1.2-fix broke a guardrail; the export itself succeeded
    assert "error" not in merged.stderr.str()
    exported = offline_runs(pytester.path / "merged")
    assert exported == offline_runs(pytester.path / "single")
    assert exported[FIX_B]["artifacts"] == [(FIX_B, "candidate", ["canary_candidate", "latest"])]
    records = runs_by_template(pytester.path / "merged")
    assert all(record["tags"]["wandb_run_id"] for record in records.values())
    assert read_report(pytester.path / "merged")["notes"] == read_report(pytester.path / "single")["notes"]
    assert not [p for p in pytester.path.iterdir() if p.name == "wandb"]


def test_the_wandb_project_of_llmgate_merge(pytester: pytest.Pytester, example: Path) -> None:
    pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={FIX_B}", "--llmgate-out=p1",
                       "--splits", "2", "--group", "1")
    merged = pytester.run(sys.executable, "-m", "pytest_llmgate.cli.main", "merge", "p1", "--out", "merged", "--wandb",
                          "--wandb-project", "gates")
    assert merged.ret == 1  # one part of two: the merged run is incomplete, and exported as such
    (state,) = [read_back(run_dir)["state"] for run_dir in (pytester.path / "merged" / "wandb" / "wandb").glob("offline-run-*")]
    assert state["project"] == "gates" and "INCOMPLETE_EVALUATION" in state["tags"]


@pytest.mark.usefixtures("example")
def test_runs_a_failure_left_without_their_artifact_end_as_failed(pytester: pytest.Pytester) -> None:
    # a user's hook takes a candidate file away once its record is written: W&B cannot add it to the artifact
    pytester.makeconftest(f"""
        def pytest_llmgate_run_record(config, record, files):
            if record["params"]["template_id"] == "{FIX_B}":
                next(iter(files.values())).unlink()
    """)
    result = pytester.runpytest_subprocess("example_suites", *THREE_RUNS, "--llmgate-wandb")
    assert len([line for line in result.stdout.lines if line.startswith("ERROR llmgate: wandb")]) == 1
    run_dirs = sorted((pytester.path / ".llmgate" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 3
    states = sorted(json.loads(inspect(run_dir, "--summary"))["state"] for run_dir in run_dirs)
    # W&B finished them at exit as if whole before
    assert "running" not in states and "failed" in states, states


def test_a_run_that_fails_right_after_it_opened_ends_as_failed(tmp_path: Path) -> None:
    # W&B cannot be made to refuse a summary for real: a stand-in run refuses it, in the exporter's own W&B handle
    from types import SimpleNamespace

    from pytest_llmgate.exporters.wandb import WandbExporter

    finished: list[int] = []

    class Summary:
        def update(self, figures: dict[str, Any]) -> None:
            raise ValueError("refused")

    run = SimpleNamespace(id="w1", summary=Summary(), finish=lambda exit_code=0: finished.append(exit_code))
    exporter = WandbExporter(tmp_path, None)
    exporter._wandb = SimpleNamespace(init=lambda **_: run, Settings=lambda **_: None)
    record = {"experiment": "e", "params": {"template_id": "t"}, "role": "candidate", "status": "ELIGIBLE",
              "complete": True, "frozen": True, "run_id": "r1", "fingerprints": {}, "tags": {},
              "metrics": {"case_count": 1}, "suite_metrics": {}}
    exporter.pytest_llmgate_run_record(None, record, {})
    assert finished == [1]  # W&B would have finished it at exit as successful
    assert [str(error) for error in exporter.failures] == ["wandb: ValueError: refused; the local records are written"]
