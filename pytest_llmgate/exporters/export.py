"""Exports of written records (``llmgate merge --mlflow/--wandb``): each run handed to the exporters as a session
hands it, then the report; what an exporter adds (its run id tag, the ``prompt_uri``, notes) is written back."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from pytest_llmgate.io.signing import sign, signing_key
from pytest_llmgate.io.store import REPORT_FILE, RUNS, write_replacing
from pytest_llmgate.model.errors import ExportError, LlmgateError, display_path
from pytest_llmgate.records.codec import dump, from_data, to_data
from pytest_llmgate.records.outcome import SessionResult
from pytest_llmgate.records.report import SessionReport, report_data
from pytest_llmgate.records.run import RunRecord


class Exporter(Protocol):
    """What a session's exporter implements (``exporters.mlflow.MlflowExporter``,
    ``exporters.wandb.WandbExporter``): the record hooks of ``plugin.hookspecs``, called here with no pytest config.
    Its hooks never raise: pluggy ends a hook call at the first implementation that raises, which would keep the
    other exporters from their runs. An exporter keeps its failure in ``failures`` (``kept``), one error line."""

    failures: list[LlmgateError]

    def pytest_llmgate_run_record(self, config: Any, record: dict[str, Any], files: Mapping[str, Path]) -> None: ...

    def pytest_llmgate_session_report(self, config: Any, report: dict[str, Any], path: Path) -> None: ...

    def summary_lines(self) -> list[str]:
        """Where the runs went, for the terminal summary (none when nothing was exported)."""
        ...


def exporters_for(out_dir: Path, *, mlflow: bool, mlflow_uri: str | None, wandb: bool,
                  wandb_project: str | None) -> dict[str, Exporter]:
    """The exporters asked for, by plugin name, for a records folder (a session's, or ``llmgate merge --out``);
    each imports its library at the first run it exports."""
    exporters: dict[str, Exporter] = {}
    if mlflow:
        from pytest_llmgate.exporters.mlflow import MlflowExporter

        exporters["llmgate-mlflow"] = MlflowExporter(out_dir, mlflow_uri)
    if wandb:
        from pytest_llmgate.exporters.wandb import WandbExporter

        exporters["llmgate-wandb"] = WandbExporter(out_dir, wandb_project)
    return exporters


def exported_files(record: RunRecord, out_dir: Path) -> dict[str, Path]:
    """The files a record names, as a session hands them to the exporters: the candidate file (from the experiment
    directory the record names) and the redacted report; refused when the candidate file is not the one run."""
    template, *produced = record.artifacts
    candidate = out_dir / (record.experiment_path or ".") / template.path
    try:
        data = candidate.read_bytes()
    except OSError as exc:
        raise ExportError(candidate, None, f"cannot be read ({exc.strerror or exc}): the candidate file of run "
                          f"{record.run_id} is exported from the experiment its record names from {display_path(out_dir)} "
                          "(run llmgate merge where the experiment is, see docs/cli.md)") from None
    if hashlib.sha256(data).hexdigest() != template.sha256:
        raise ExportError(candidate, None, f"changed after run {record.run_id}: its sha256 is not the recorded one; "
                          "nothing was exported")
    return {template.path: candidate, **{artifact.path: out_dir / artifact.path for artifact in produced}}


def export_written(result: SessionResult, out_dir: Path,
                   exporters: Sequence[Exporter]) -> tuple[SessionResult, list[LlmgateError]]:
    """Hand every run of ``result`` (written in ``out_dir``), then its report, to the exporters in the order a
    session's hook calls them (the last registered first); write back the tags and report entries they add
    (signed again when a key is set). Returns the result with those records, and the exporters' failures."""
    ordered = list(reversed(exporters))
    key = signing_key()
    files = {record.run_id: exported_files(record, out_dir) for outcome in result.outcomes for record in outcome.records}
    outcomes = []
    for outcome in result.outcomes:
        records = []
        for record in outcome.records:
            data = to_data(msgspec.structs.replace(record, signature=None))
            for exporter in ordered:
                exporter.pytest_llmgate_run_record(None, data, files[record.run_id])
            if data["tags"] != record.tags:
                record = sign(msgspec.convert(data, RunRecord), key)
                write_replacing(out_dir / RUNS / f"{record.run_id}.json", dump(record))
            records.append(record)
        outcomes.append(msgspec.structs.replace(outcome, records=tuple(records)))
    path = out_dir / REPORT_FILE
    report = report_data(msgspec.structs.replace(from_data(msgspec.json.decode(path.read_bytes()), SessionReport),
                                                 signature=None))
    before = msgspec.json.encode(report)
    for exporter in ordered:
        exporter.pytest_llmgate_session_report(None, report, path)
    if msgspec.json.encode(report) != before:
        write_replacing(path, dump(sign(from_data(report, SessionReport), key)))
    return msgspec.structs.replace(result, outcomes=tuple(outcomes)), [
        failure for exporter in exporters for failure in exporter.failures]
