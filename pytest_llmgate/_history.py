"""Stored runs: reading ``DIR/runs/*.json`` back, and finding runs by id, id prefix or path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ._audit import StoredRun, read_run
from ._codec import load
from ._errors import RecordError
from ._record import RunRecord
from ._store import RUNS


def run_files(out_dir: Path) -> list[Path]:
    """Every stored run record, oldest first (run ids sort by time)."""
    runs = out_dir / RUNS
    if runs.exists() and not runs.is_dir():
        raise RecordError(runs, None, "is a file, not a folder: run records are kept in the folder DIR/runs")
    return sorted(runs.glob("*.json"))


def load_run(path: Path) -> RunRecord:
    """One stored run record, decoded and checked against its definition."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    return load(raw, RunRecord, path)


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
        if not matches:
            raise RecordError(out_dir / RUNS, None, f"no stored run matches {ref!r}")
        if len(matches) > 1 and not any(path.stem == ref for path in matches):
            names = ", ".join(path.stem for path in matches[:5])
            raise RecordError(out_dir / RUNS, None, f"{ref!r} matches {len(matches)} runs ({names}…); give more of the id")
        exact = [path for path in matches if path.stem == ref]
        found.append(read_run(exact[0] if exact else matches[0]))
    return found
