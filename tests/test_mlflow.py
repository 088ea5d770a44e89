"""The MLflow exporter against a real MLflow tracking store on a temporary SQLite file."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate import check_json

from .conftest import EVALUATION_SHA, FIX_B, THREE_RUNS, read_report, runs_by_template

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("mlflow_imported")]  # a real MLflow tracking store for every test

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

NO_NETWORK = '''
import json, os, socket

_connect = socket.socket.connect


def _recording_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        with open(os.environ["LLMGATE_CONNECTS"], "a") as log:
            log.write(json.dumps([str(a) for a in address]) + "\\n")
    return _connect(self, address)


def pytest_configure(config):
    socket.socket.connect = _recording_connect


def pytest_unconfigure(config):
    socket.socket.connect = _connect  # in-process runs share the socket module with the outer session
    if "LLMGATE_CONNECTS" in os.environ:  # after the export (at session finish): was MLflow's telemetry turned off?
        with open(os.environ["LLMGATE_CONNECTS"] + ".telemetry", "w") as out:
            out.write(os.environ.get("MLFLOW_DISABLE_TELEMETRY", "unset"))
'''


def client(uri: str):  # type: ignore[no-untyped-def]
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.mark.usefixtures("example")
def test_every_run_becomes_an_mlflow_run_and_the_promotion_a_prompt_alias(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: tuple[str, ...]
) -> None:
    uri = f"sqlite:///{pytester.path / 'tracking' / 'mlflow.db'}"
    connects = pytester.path / "connects.jsonl"
    monkeypatch.setenv("LLMGATE_CONNECTS", str(connects))
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")  # set for this module's own client: the exporter must set it
    pytester.makeconftest(NO_NETWORK)
    # pytest-rerunfailures (installed for other tests) opens a localhost socket under xdist: not this test's concern
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-mlflow", f"--llmgate-mlflow-uri={uri}",
                                "-p", "no:rerunfailures", *workers)
    assert (pytester.path / "connects.jsonl.telemetry").read_text() == "true"  # MLflow's telemetry turned off
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # v1.2-fix gates and fails; the export itself succeeded
    result.stdout.no_fnmatch_line("*ERROR llmgate*")
    result.stdout.fnmatch_lines([f"mlflow: 3 run(s) logged to {uri}", "mlflow: experiment ci-claim-gate-repair (id *)",
                                 f"mlflow: promoted prompt prompts:/{FIX_B}@canary_candidate"])
    out = pytester.path / ".llmgate"
    records = runs_by_template(out)
    tracking = client(uri)
    experiment = tracking.get_experiment_by_name("ci-claim-gate-repair")
    runs = {run.info.run_name: run for run in tracking.search_runs([experiment.experiment_id])}
    assert set(runs) == set(records)
    for template_id, record in records.items():
        run = runs[template_id]
        check_json(record, "run")
        assert record["tags"]["mlflow_run_id"] == run.info.run_id
        assert run.data.params == record["params"]
        def flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:  # the cost figures join the counts
            cost = metrics.get("cost", {})
            merged = {**{k: v for k, v in metrics.items() if k != "cost"}, **cost}
            return {f"{prefix}{k}": float(v) for k, v in merged.items() if v is not None}

        expected_metrics = flat(record["metrics"])
        assert expected_metrics["latency_p95_ms"] >= 0 and "cost_usd" not in expected_metrics  # a policy: no tokens
        for suite, metrics in record["suite_metrics"].items():
            expected_metrics.update(flat(metrics, f"{suite}."))
        assert run.data.metrics == expected_metrics
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        assert {k: v for k, v in record["tags"].items() if k != "mlflow_run_id"}.items() <= tags.items()
        assert tags["llmgate.status"] == record["status"] and tags["llmgate.run_id"] == record["run_id"]
        assert tags["llmgate.decision_status"] == "PROMOTE"
        (dataset_input,) = tracking.get_run(run.info.run_id).inputs.dataset_inputs
        assert dataset_input.dataset.digest == record["params"]["evaluation_sha"] == EVALUATION_SHA
        assert json.loads(dataset_input.dataset.source)["fingerprints"] == record["fingerprints"]
        artifacts = {a.path for a in tracking.list_artifacts(run.info.run_id, "llmgate")}
        assert f"llmgate/{template_id}.yaml" in artifacts and "llmgate/run_record.json" in artifacts
    decision = read_report(out)["experiments"][0]["decision"]
    assert decision["prompt_uri"] == f"prompts:/{FIX_B}@canary_candidate"
    prompt = tracking.load_prompt(decision["prompt_uri"])
    assert "State a root cause only when" in prompt.template
    assert tracking.get_prompt_version_by_alias(FIX_B, "canary_candidate").version == prompt.version
    assert not connects.exists() or connects.read_text() == ""  # no network: no telemetry, no server


@pytest.mark.usefixtures("example")
def test_a_failing_store_is_one_clear_error_and_the_local_records_are_written(pytester: pytest.Pytester) -> None:
    (pytester.path / "not-a-folder").write_text("a file where the store's folder should be")
    uri = f"sqlite:///{pytester.path / 'not-a-folder' / 'mlflow.db'}"
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow",
                                f"--llmgate-mlflow-uri={uri}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    errors = [line for line in result.stdout.lines if line.startswith("ERROR llmgate:")]
    assert len(errors) == 1 and f"mlflow ({uri})" in errors[0]
    record = runs_by_template(pytester.path / ".llmgate")[FIX_B]
    assert record["status"] == "ELIGIBLE_FOR_CANARY_REVIEW" and "mlflow_run_id" not in record["tags"]
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "PROMOTE"


@pytest.mark.usefixtures("example")
def test_the_default_store_is_sqlite_in_the_records_folder(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow")
    assert result.ret == pytest.ExitCode.OK
    store = pytester.path / ".llmgate" / "mlflow.db"
    assert store.is_file()
    runs = client(f"sqlite:///{store}").search_runs(
        [client(f"sqlite:///{store}").get_experiment_by_name("ci-claim-gate-repair").experiment_id])
    assert [run.info.run_name for run in runs] == [FIX_B]
    # Artifacts go beside the store, under the records folder, never to ./mlruns in the working directory.
    assert not (pytester.path / "mlruns").exists()
    logged = pytester.path / ".llmgate" / "mlflow-artifacts" / "ci-claim-gate-repair"
    assert sorted(p.name for p in logged.rglob("*.json")) == sorted([
        "run_record.json", f"{runs_by_template(pytester.path / '.llmgate')[FIX_B]['run_id']}-redacted-eval.json"])


@pytest.mark.usefixtures("example")
def test_mlflow_is_not_imported_without_the_option(pytester: pytest.Pytester) -> None:
    """A gate session that writes its records and report but was not asked to export imports no MLflow."""
    pytester.makeconftest("import sys\ndef pytest_unconfigure(config):\n"
                          "    open('mods.txt', 'w').write(str('mlflow' in sys.modules))\n")
    result = pytester.runpytest_subprocess("example_suites", f"--llmgate-candidate={FIX_B}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    assert set(runs_by_template(pytester.path / ".llmgate")) == {FIX_B}
    assert (Path(pytester.path) / "mods.txt").read_text() == "False"


@pytest.mark.usefixtures("example")
def test_mlflow_adds_no_warnings_of_its_own_to_the_session(pytester: pytest.Pytester) -> None:
    # A fresh process: MLflow's import-time warnings are raised once per process.
    pytester.makeconftest(NO_NETWORK)
    result = pytester.runpytest_subprocess("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["mlflow: 1 run(s) logged to sqlite:///*/.llmgate/mlflow.db", "*= 5 passed in *"])
    result.stdout.no_fnmatch_line("*warnings summary*")


MEASURED = ("latency_p50_ms", "latency_p95_ms", "latency_max_ms")  # per-call timings: not the same in two runs


def exported(uri: str) -> dict[str, dict[str, Any]]:
    """What an MLflow store holds per run name: params, metrics, tags, dataset, artifact names, without run ids."""
    tracking = client(uri)
    experiment = tracking.get_experiment_by_name("ci-claim-gate-repair")
    found = {}
    for run in tracking.search_runs([experiment.experiment_id]):
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.") and k != "llmgate.run_id"}
        (dataset_input,) = tracking.get_run(run.info.run_id).inputs.dataset_inputs
        found[run.info.run_name] = {
            "params": run.data.params, "tags": tags, "status": run.info.status,
            "metrics": {k: v for k, v in run.data.metrics.items() if not k.endswith(MEASURED)},
            "dataset": (dataset_input.dataset.digest, dataset_input.dataset.source),
            "artifacts": sorted(a.path.replace(tags.get("llmgate.run_id", "-"), "ID") if "redacted" not in a.path
                                else "redacted" for a in tracking.list_artifacts(run.info.run_id, "llmgate")),
        }
    return found


@pytest.mark.usefixtures("example")
def test_llmgate_merge_exports_the_merged_runs_as_one_session_does(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_llmgate.cli.main import main

    single_uri = f"sqlite:///{pytester.path / 'single.db'}"
    single = pytester.runpytest("example_suites", "-p", "no:cacheprovider", *THREE_RUNS, "--llmgate-out=single",
                                "--llmgate-mlflow", f"--llmgate-mlflow-uri={single_uri}")
    assert single.ret == pytest.ExitCode.TESTS_FAILED
    for group in (1, 2):
        pytester.runpytest("example_suites", "-p", "no:cacheprovider", *THREE_RUNS, f"--llmgate-out=parts/{group}",
                           "--splits", "2", "--group", str(group))
    merged_uri = f"sqlite:///{pytester.path / 'merged.db'}"
    code = main(["merge", "parts/1", "parts/2", "--out", "merged", "--mlflow", "--mlflow-uri", merged_uri])
    assert code == 1  # v1.2-fix broke a guardrail, as in the single session; the export itself succeeded
    out = capsys.readouterr().out
    assert f"mlflow: 3 run(s) logged to {merged_uri}" in out
    assert f"mlflow: promoted prompt prompts:/{FIX_B}@canary_candidate" in out
    assert exported(merged_uri) == exported(single_uri)
    assert exported(merged_uri)[FIX_B]["tags"]["llmgate.decision_status"] == "PROMOTE"
    records = runs_by_template(pytester.path / "merged")
    runs = {run.info.run_name: run.info.run_id for run in client(merged_uri).search_runs(
        [client(merged_uri).get_experiment_by_name("ci-claim-gate-repair").experiment_id])}
    assert {template: record["tags"]["mlflow_run_id"] for template, record in records.items()} == runs
    decision = read_report(pytester.path / "merged")["experiments"][0]["decision"]
    assert decision["prompt_uri"] == f"prompts:/{FIX_B}@canary_candidate"
    assert "State a root cause only when" in client(merged_uri).load_prompt(decision["prompt_uri"]).template
    assert main(["verify", "merged"]) == 0  # the records the exporter tagged are still whole


@pytest.mark.usefixtures("example")
def test_llmgate_merge_refuses_to_export_a_candidate_file_changed_since_the_run(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_llmgate.cli.main import main

    pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={FIX_B}", "--llmgate-out=p1",
                       "--splits", "2", "--group", "1")
    candidate = pytester.path / "example_suites" / "ci-claim-gate-repair" / "templates" / f"{FIX_B}.yaml"
    candidate.write_text(candidate.read_text() + "# edited\n")
    uri = f"sqlite:///{pytester.path / 'merged.db'}"
    assert main(["merge", "p1", "--out", "merged", "--mlflow", "--mlflow-uri", uri]) == 2
    assert f"{FIX_B}.yaml: changed after run" in capsys.readouterr().err
    assert (pytester.path / "merged" / "report.json").is_file()  # the merged records are written all the same
    assert not (pytester.path / "merged.db").exists()


@pytest.mark.usefixtures("example")
def test_llmgate_merge_imports_no_mlflow_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.runpytest("example_suites", "-p", "no:cacheprovider", f"--llmgate-candidate={FIX_B}", "--llmgate-out=p1",
                       "--splits", "2", "--group", "1")
    code = ("import sys; from pytest_llmgate.cli.main import main; main(['merge', 'p1', '--out', 'm']); "
            "print(sorted(m for m in ('mlflow', 'wandb', 'pytest_llmgate.exporters.mlflow') if m in sys.modules))")
    result = pytester.run(sys.executable, "-c", code)
    assert result.outlines[-1] == "[]" and (pytester.path / "m" / "report.json").is_file()


@pytest.mark.usefixtures("example")
def test_a_failing_exporter_never_keeps_another_from_its_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pluggy ends a hook call at the first implementation that raises: W&B, called first, failed and MLflow, healthy,
    # got no run
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.setenv("WANDB_MODE", "bogus")
    uri = f"sqlite:///{pytester.path / 'mlflow.db'}"
    result = pytester.runpytest("example_suites", *THREE_RUNS, "--llmgate-mlflow", f"--llmgate-mlflow-uri={uri}",
                                "--llmgate-wandb")
    errors = [line for line in result.stdout.lines if line.startswith("ERROR llmgate:")]
    assert len(errors) == 1 and errors[0].startswith("ERROR llmgate: wandb: ")  # said once
    records = runs_by_template(pytester.path / ".llmgate")
    assert len(records) == 3 and all("mlflow_run_id" in record["tags"] for record in records.values())
    assert f"mlflow: 3 run(s) logged to {uri}" in result.stdout.str()
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision"]["prompt_uri"] == (
        f"prompts:/{FIX_B}@canary_candidate")


@pytest.mark.usefixtures("example")
def test_a_run_whose_record_cannot_be_written_is_not_exported(pytester: pytest.Pytester) -> None:
    (pytester.path / ".llmgate").mkdir()
    (pytester.path / ".llmgate" / "runs").write_text("a file where the runs folder should be")
    uri = f"sqlite:///{pytester.path / 'mlflow.db'}"
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow",
                                f"--llmgate-mlflow-uri={uri}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert read_report(pytester.path / ".llmgate")["experiments"][0]["decision_status"] == "INCOMPLETE_EVALUATION"
    # an MLflow run tagged ELIGIBLE for a run that has no record was left behind before
    store = client(uri)
    experiment = store.get_experiment_by_name("ci-claim-gate-repair")
    assert experiment is None or store.search_runs([experiment.experiment_id]) == []
    assert not list((pytester.path / ".llmgate" / "reports").glob("*.json"))


@pytest.mark.usefixtures("example")
def test_a_tracking_uris_secret_never_reaches_the_error_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    uri = "http://127.0.0.1:1/mlflow?api_key=TOPSECRET"  # nothing listens on port 1
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow",
                                f"--llmgate-mlflow-uri={uri}", "--llmgate-markdown=summary.md")
    errors = [line for line in result.stdout.lines if line.startswith("ERROR llmgate:")]
    assert len(errors) == 1 and "mlflow (http://127.0.0.1:1/mlflow?***): " in errors[0]
    assert "TOPSECRET" not in result.stdout.str() + result.stderr.str()
    assert "TOPSECRET" not in (pytester.path / "summary.md").read_text()


@pytest.mark.usefixtures("example")
def test_an_alias_mlflow_refuses_registers_nothing_and_says_why(pytester: pytest.Pytester, example: Path) -> None:
    manifest = example / "llmgate.yaml"
    manifest.write_text(manifest.read_text().replace("alias: canary_candidate", "alias: canary.candidate"))
    uri = f"sqlite:///{pytester.path / 'mlflow.db'}"
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow",
                                f"--llmgate-mlflow-uri={uri}")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["ERROR llmgate: mlflow (*): the promotion alias 'canary.candidate' is not one MLflow "
                                 "accepts *: no prompt was registered; *"])
    assert client(uri).search_prompts() == []
    decision = read_report(pytester.path / ".llmgate")["experiments"][0]["decision"]
    assert decision["alias"] == "canary.candidate" and "prompt_uri" not in decision


@pytest.mark.usefixtures("example")
def test_a_run_that_fails_half_way_ends_as_failed_not_running(pytester: pytest.Pytester) -> None:
    # the experiment's artifact store is a path under a file: the run is made, its artifacts cannot be logged
    uri = f"sqlite:///{pytester.path / 'mlflow.db'}"
    (pytester.path / "blocker").write_text("a file")
    store = client(uri)
    store.create_experiment("ci-claim-gate-repair", artifact_location=(pytester.path / "blocker" / "a").as_uri())
    result = pytester.runpytest("example_suites", f"--llmgate-candidate={FIX_B}", "--llmgate-mlflow",
                                f"--llmgate-mlflow-uri={uri}")
    assert len([line for line in result.stdout.lines if line.startswith("ERROR llmgate: mlflow")]) == 1
    experiment = store.get_experiment_by_name("ci-claim-gate-repair")
    (run,) = store.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"  # was left RUNNING
