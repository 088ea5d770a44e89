"""MLflow exporter: each run record becomes an MLflow run; a promotion registers the prompt and sets the alias.

A plugin of the ``pytest_llmgate_*`` hooks, registered on the controller only when ``--llmgate-mlflow`` is
given. MLflow (``pip install 'pytest-llmgate[mlflow]'``) is imported only then, with its telemetry off unless
the user set ``MLFLOW_DISABLE_TELEMETRY`` themselves, and only through an explicit ``MlflowClient``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from pytest_llmgate.model.errors import ExportError, LlmgateError, kept, redact_urls
from pytest_llmgate.records.run import run_metrics

#: The embedded SQLite store in the records folder, when no tracking URI is given: no server needed.
DEFAULT_STORE = "mlflow.db"
#: Artifacts of the experiments the exporter creates, beside the default store: ``DIR/mlflow-artifacts/<experiment>``.
ARTIFACTS_DIR = "mlflow-artifacts"

#: The aliases MLflow's registry accepts (mlflow.utils.validation): word characters and -, at most 255; ``latest``
#: and a version's own name (``v3``) are reserved.
_ALIAS = re.compile(r"[\w-]{1,255}")
_VERSION_ALIAS = re.compile(r"[vV]\d+")


class MlflowExporter:
    """Maps run records onto MLflow runs (SPEC mapping in the README), for a records folder (a session's, or
    ``llmgate merge --out``): to ``uri``, else ``MLFLOW_TRACKING_URI``, else the default store in that folder."""

    def __init__(self, out_dir: Path, uri: str | None) -> None:
        self.uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{out_dir / DEFAULT_STORE}"
        self.artifacts = out_dir / ARTIFACTS_DIR  # where a new MLflow experiment keeps its artifacts
        self._client: Any = None
        self._failed: str | None = None
        self._runs: dict[str, str] = {}  # our run id -> MLflow run id
        self._templates: dict[str, Path] = {}  # our run id -> the candidate artifact
        self._experiments: dict[str, str] = {}  # experiment name -> MLflow experiment id
        self._prompts: list[str] = []
        self.failures: list[LlmgateError] = []  # its failure, said once (its hooks never raise: ``kept``)

    def summary_lines(self) -> list[str]:
        """Where the runs went, for the terminal summary: the store, each experiment, each registered prompt."""
        if self._failed is not None or not self._runs:
            return []
        lines = [f"mlflow: {len(self._runs)} run(s) logged to {redact_urls(self.uri)}"]
        lines += [f"mlflow: experiment {name} (id {experiment_id})" for name, experiment_id in self._experiments.items()]
        lines += [f"mlflow: promoted prompt {uri}" for uri in self._prompts]
        return lines

    def _mlflow(self) -> Any:
        if self._client is None:
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            try:
                from mlflow import MlflowClient
            except ImportError:
                self._fail("the mlflow extra is not installed: pip install 'pytest-llmgate[mlflow]'")
            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def _fail(self, reason: str) -> None:
        self._failed = redact_urls(reason.splitlines()[0], self.uri) if reason else "unknown error"
        raise ExportError(None, None, f"mlflow ({redact_urls(self.uri)}): {self._failed}; the local records are "
                                       "written")

    @contextlib.contextmanager
    def _exporting(self) -> Iterator[None]:
        """An error of MLflow's is one ``ExportError`` (``_fail``); its own warnings (SQLAlchemy deprecations, say)
        are not the session's: kept out of its summary."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except ExportError:
            raise
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")

    def pytest_llmgate_run_record(self, config: Any, record: dict[str, Any], files: Mapping[str, Path]) -> None:
        if self._failed is not None:
            return  # reported once, where it failed
        with kept(self.failures), self._exporting():
            record["tags"]["mlflow_run_id"] = self._log_run(self._mlflow(), record, files)

    def _log_run(self, client: Any, record: dict[str, Any], files: Mapping[str, Path]) -> str:
        experiment = client.get_experiment_by_name(record["experiment"])
        if experiment:
            experiment_id = experiment.experiment_id
        else:
            location = (self.artifacts / record["experiment"]).resolve().as_uri()
            experiment_id = client.create_experiment(record["experiment"], artifact_location=location)
        self._experiments[record["experiment"]] = experiment_id
        template_id = record["params"]["template_id"]
        mlflow_id = client.create_run(experiment_id, run_name=template_id).info.run_id
        try:
            self._fill_run(client, mlflow_id, record, files)
        except Exception:
            with contextlib.suppress(Exception):  # the run ends as failed, not left running
                client.set_terminated(mlflow_id, "FAILED")
            raise
        self._runs[record["run_id"]] = mlflow_id
        self._templates[record["run_id"]] = next(iter(files.values()))
        return mlflow_id  # type: ignore[no-any-return]

    def _fill_run(self, client: Any, mlflow_id: str, record: dict[str, Any], files: Mapping[str, Path]) -> None:
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

        metrics = [Metric(key, value, 0, 0) for key, value in run_metrics(record).items()]
        tags = {**record["tags"], "llmgate.run_id": record["run_id"], "llmgate.role": record["role"],
                "llmgate.status": record["status"], "llmgate.complete": str(record["complete"]).lower(),
                "llmgate.frozen": str(record["frozen"]).lower()}
        client.log_batch(mlflow_id, metrics=metrics, params=[Param(k, v) for k, v in record["params"].items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        fingerprints = record["fingerprints"]
        dataset = Dataset(name=record["experiment"], digest=fingerprints["evaluation"][:16], source_type="llmgate",
                          source=json.dumps({"fingerprints": fingerprints}, sort_keys=True))
        client.log_inputs(mlflow_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "evaluation")])])
        for path in files.values():
            client.log_artifact(mlflow_id, str(path), "llmgate")
        client.log_dict(mlflow_id, record, "llmgate/run_record.json")
        client.set_terminated(mlflow_id, "FINISHED")

    def pytest_llmgate_session_report(self, config: Any, report: dict[str, Any], path: Path) -> None:
        if self._failed is not None:
            return
        with kept(self.failures), self._exporting():
            self._report(report)

    def _report(self, report: dict[str, Any]) -> None:
        client = self._mlflow()
        for experiment in report["experiments"]:
            for run in experiment["runs"]:
                if run["run_id"] in self._runs:
                    client.set_tag(self._runs[run["run_id"]], "llmgate.decision_status", experiment["decision_status"])
            decision = experiment["decision"]
            if decision is not None and decision["source_run_id"] in self._runs:
                decision["prompt_uri"] = self._register(client, decision)
                self._prompts.append(decision["prompt_uri"])

    def _register(self, client: Any, decision: dict[str, Any]) -> str:
        """Register the promoted artifact's prompt and point the decision's alias at that version; nothing is
        registered when MLflow would refuse the alias (the manifest allows any line of text)."""
        alias = decision["alias"]
        if not _ALIAS.fullmatch(alias) or alias.lower() == "latest" or _VERSION_ALIAS.fullmatch(alias):
            self._fail(f"the promotion alias {alias!r} is not one MLflow accepts (1-255 letters, digits, _ and -; "
                       "not latest nor v<N>): no prompt was registered; name another in the manifest's promotion block")
        artifact = self._templates[decision["source_run_id"]]
        settings = yaml.safe_load(artifact.read_text(encoding="utf-8"))
        prompt = settings.get("prompt")
        if isinstance(prompt, Mapping):
            template: Any = [{"role": role, "content": text} for role, text in prompt.items()]
        else:
            template = prompt or artifact.read_text(encoding="utf-8")
        name = decision["artifact_name"]
        version = client.register_prompt(
            name=name, template=template, commit_message=f"promoted by pytest-llmgate from run {decision['source_run_id']}",
            tags={"llmgate.source_run_id": decision["source_run_id"], "llmgate.evaluation_sha": decision["evaluation_sha"],
                  "mlflow_run_id": self._runs[decision["source_run_id"]]},
        )
        client.set_prompt_alias(name, alias=alias, version=version.version)
        return f"prompts:/{name}@{alias}"
