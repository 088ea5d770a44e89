"""Weights & Biases exporter: each run record becomes a W&B run with the candidate as an artifact.

A plugin of the ``pytest_llmgate_*`` hooks, registered on the controller only when ``--llmgate-wandb`` is
given. W&B (``pip install 'pytest-llmgate[wandb]'``) is imported only then; it runs offline unless the user
set ``WANDB_MODE`` themselves, and every W&B directory lies under ``DIR/wandb``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_llmgate.model.errors import ExportError, LlmgateError, display_path, kept, redact_urls
from pytest_llmgate.records.run import run_metrics

#: What W&B cannot do offline; skipped with a note in the report.
OFFLINE_NOTE = "wandb: offline mode: the candidate artifact was logged with its alias, but not linked to a registry"


class WandbExporter:
    """Maps run records onto W&B runs: config, summary, tags, and a ``candidate`` artifact with its alias; for a
    records folder (a session's, or ``llmgate merge --out``), W&B's files in ``DIR/wandb``."""

    def __init__(self, out_dir: Path, project: str | None) -> None:
        self.directory = out_dir / "wandb"
        self.project = project
        self._wandb: Any = None
        self._failed: str | None = None
        self.failures: list[LlmgateError] = []  # its failure, said once (its hooks never raise: ``kept``)
        self._open: dict[str, tuple[Any, dict[str, Any], Mapping[str, Path]]] = {}  # our run id -> run, record, files
        self._logged = 0  # runs finished with their artifact

    def _module(self) -> Any:
        if self._wandb is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.environ.setdefault("WANDB_MODE", "offline")  # init(mode=...) alone would still reach the network
            for variable, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"),
                                  ("WANDB_DATA_DIR", "data"), ("WANDB_ARTIFACT_DIR", "artifacts")):
                os.environ.setdefault(variable, str(self.directory / sub) if sub else str(self.directory))
            os.environ.setdefault("WANDB_SILENT", "true")
            try:
                import wandb
            except ImportError:
                self._fail("the wandb extra is not installed: pip install 'pytest-llmgate[wandb]'")
            self._wandb = wandb
        return self._wandb

    def _fail(self, reason: str) -> None:
        self._failed = redact_urls(reason.splitlines()[0]) if reason else "unknown error"
        for run, _, _ in self._open.values():  # the runs it opened end as failed, not left running
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
        self._open.clear()
        raise ExportError(None, None, f"wandb: {self._failed}; the local records are written")

    def summary_lines(self) -> list[str]:
        """Where the runs went, for the terminal summary: how many, offline or not, and W&B's folder."""
        if self._failed is not None or not self._logged:
            return []
        mode = "offline (wandb sync uploads them)" if self.offline else "online"
        return [f"wandb: {self._logged} run(s) logged, {mode}; files in {display_path(self.directory)}"]

    @property
    def offline(self) -> bool:
        return os.environ.get("WANDB_MODE", "offline") in ("offline", "dryrun", "disabled")

    def pytest_llmgate_run_record(self, config: Any, record: dict[str, Any], files: Mapping[str, Path]) -> None:
        if self._failed is not None:
            return
        with kept(self.failures):
            self._log_run(record, files)

    def _log_run(self, record: dict[str, Any], files: Mapping[str, Path]) -> None:
        try:
            wandb = self._module()
            run = wandb.init(
                project=self.project or record["experiment"], name=record["params"]["template_id"],
                dir=str(self.directory), reinit="create_new", job_type="llmgate-evaluation",
                config={**record["params"], "experiment": record["experiment"], "role": record["role"],
                        "status": record["status"], "complete": record["complete"], "frozen": record["frozen"],
                        "llmgate_run_id": record["run_id"], "fingerprints": record["fingerprints"]},
                tags=[record["role"], record["status"], record["experiment"]],
                settings=wandb.Settings(console="off", x_disable_stats=True, x_disable_meta=True,
                                        x_disable_machine_info=True, disable_git=True, save_code=False),
            )
            self._open[record["run_id"]] = (run, record, files)  # from here a failure ends it as failed
            run.summary.update(run_metrics(record))
        except ExportError:
            raise
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        record["tags"]["wandb_run_id"] = run.id

    def pytest_llmgate_session_report(self, config: Any, report: dict[str, Any], path: Path) -> None:
        if self._failed is not None:
            return
        with kept(self.failures):
            self._finish_runs(report)

    def _finish_runs(self, report: dict[str, Any]) -> None:
        try:
            promoted = {e["decision"]["source_run_id"]: e["decision"] for e in report["experiments"] if e["decision"]}
            verdicts = {run["run_id"]: e["decision_status"] for e in report["experiments"] for run in e["runs"]}
            for run_id, (run, record, files) in list(self._open.items()):
                decision = promoted.get(run_id)
                if run_id in verdicts:  # the experiment's verdict, as MLflow's llmgate.decision_status tag
                    run.config.update({"decision_status": verdicts[run_id]}, allow_val_change=True)
                artifact = self._wandb.Artifact(
                    record["params"]["template_id"], type="candidate",
                    metadata={"evaluation_sha": record["params"]["evaluation_sha"], "llmgate_run_id": run_id,
                              "template_sha256": record["params"]["template_sha256"], "status": record["status"],
                              "fingerprints": record["fingerprints"]},
                )
                for name, file in files.items():
                    artifact.add_file(str(file), name=f"llmgate/{Path(name).name}")
                with artifact.new_file("llmgate/run_record.json") as handle:
                    handle.write(json.dumps(record, indent=2))
                aliases = ["latest", decision["alias"]] if decision else ["latest"]
                run.log_artifact(artifact, aliases=aliases)
                notes = report.setdefault("notes", [])
                if decision and self.offline and OFFLINE_NOTE not in notes:  # once, however many runs promoted
                    notes.append(OFFLINE_NOTE)
                run.finish()
                del self._open[run_id]
                self._logged += 1
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
