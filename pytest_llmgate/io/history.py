"""Stored runs: reading ``DIR/runs/*.json`` back, and finding runs by id, id prefix or path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pytest_llmgate.io.audit import Audited, StoredRun, SuiteCheck, audit, read_run, read_verdict, report_runs
from pytest_llmgate.io.store import REPORT_FILE, RUNS
from pytest_llmgate.model.errors import RecordError, display_path
from pytest_llmgate.records.codec import load, read_bytes
from pytest_llmgate.records.report import SessionReport
from pytest_llmgate.records.run import RunRecord


def run_files(out_dir: Path) -> list[Path]:
    """Every stored run record, oldest first (run ids sort by time)."""
    runs = out_dir / RUNS
    if runs.exists() and not runs.is_dir():
        raise RecordError(runs, None, "is a file, not a folder: run records are kept in the folder DIR/runs")
    return sorted(runs.glob("*.json"))


def find_runs(refs: Iterable[str], out_dir: Path) -> list[StoredRun]:
    """Runs named by path, full run id or unique run-id prefix, in the order given (read, not yet audited)."""
    stored = run_files(out_dir)
    found: list[StoredRun] = []
    for ref in refs:
        candidate = Path(ref)
        if candidate.is_file():
            found.append(read_run(candidate))
            continue
        matches = [path for path in stored if path.stem.startswith(ref)]
        exact = [path for path in matches if path.stem == ref]
        if not matches:
            raise RecordError(out_dir / RUNS, None, f"no stored run matches {ref!r}")
        if len(matches) > 1 and not exact:
            names = ", ".join(path.stem for path in matches[:5]) + ("…" if len(matches) > 5 else "")
            raise RecordError(out_dir / RUNS, None, f"{ref!r} matches {len(matches)} runs ({names}); give more of the id")
        found.append(read_run((exact or matches)[0]))
    return found


def stored_runs(path: Path, key: bytes | None) -> Audited:
    """The runs a path stands for, oldest first, each checked as ``llmgate verify`` checks it: a records folder's
    every stored run, a session report's runs (read from the ``runs/`` folder beside it; its signature, with a key,
    and its verdict checked), or one run record file. A refused file raises ``RecordError``; an unverifiable or
    changed one is read, with a note."""
    if path.is_dir():
        files = run_files(path)
        if not files:
            hint = f"; its {REPORT_FILE} is there" if (path / REPORT_FILE).is_file() else ""
            raise RecordError(path, None, f"holds no run records (no {RUNS}/*.json){hint}")
        return audit([read_run(file) for file in files], key)
    raw = read_bytes(path)
    found = load(raw, RunRecord | SessionReport, path)  # type: ignore[arg-type]
    if isinstance(found, RunRecord):
        return audit([StoredRun(path=path, record=found, raw=raw)], key)
    report = read_verdict(path, key)
    records: list[RunRecord] = []
    notes: list[str] = []
    suites = SuiteCheck()
    for experiment in report.experiments:
        audited = report_runs(path, experiment, key, suites=suites)[1]
        records += audited.records
        notes += audited.notes
    return Audited(sorted(records, key=lambda run: run.run_id), notes)


def comparable_runs(path: Path, key: bytes | None) -> Audited:
    """``stored_runs`` of a folder or report to compare with (``llmgate diff``, ``--llmgate-compare-to``): refused
    when it holds only parts of split runs, which are compared only once merged."""
    audited = stored_runs(path, key)
    if audited.records and all(run.part is not None for run in audited.records):
        raise RecordError(path, None, f"holds only parts of split runs ({len(audited.records)} part record(s)): "
                                      "merge them with llmgate merge, then compare the merged folder")
    whole = {(run.experiment, run.template_id) for run in audited.records if run.part is None}
    parted = sorted({(run.experiment, run.template_id) for run in audited.records if run.part is not None} - whole)
    notes = [f"{display_path(path)}: {experiment}: {template_id} has only parts of split runs here: it is not "
             "compared (merge them with llmgate merge)" for experiment, template_id in parted]
    return Audited(audited.records, audited.notes + notes)


def latest_per_template(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The newest whole run of each (experiment, template), in run order: a part of a split run is not one."""
    newest: dict[tuple[str, str], RunRecord] = {}
    for run in sorted(runs, key=lambda run: run.run_id):
        if run.part is None:
            newest[(run.experiment, run.template_id)] = run
    return sorted(newest.values(), key=lambda run: run.run_id)


def resolve_runs(ref: str, out_dir: Path, key: bytes | None) -> Audited:
    """``llmgate diff``'s side, checked: a records folder or a report (every run it holds), a run file, or a run id
    (prefix) in ``out_dir``."""
    path = Path(ref)
    if path.is_dir() or path.is_file():
        return comparable_runs(path, key)
    return audit(find_runs([ref], out_dir), key)

