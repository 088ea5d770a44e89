"""Stored runs: reading ``DIR/runs/*.json`` back, and finding runs by id, id prefix or path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from jsonschema import ValidationError

from ._errors import RecordError
from ._record import RunRecord
from ._schemas import check_json
from ._store import RUNS


def run_files(out_dir: Path) -> list[Path]:
    """Every stored run record, oldest first (run ids sort by time)."""
    return sorted((out_dir / RUNS).glob("*.json"))


def load_run(path: Path) -> RunRecord:
    """One stored run record, checked against the shipped schema."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RecordError(path, getattr(exc, "lineno", None), f"is not JSON: {exc}") from None
    try:
        check_json(data, "run")
    except ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise RecordError(path, None, f"is not a llmgate.run/1 record ({where or 'root'}: {exc.message})") from None
    return RunRecord.from_json(data)


def find_runs(refs: Iterable[str], out_dir: Path) -> list[RunRecord]:
    """Runs named by path, full run id or unique run-id prefix, in the order given."""
    stored = run_files(out_dir)
    found: list[RunRecord] = []
    for ref in refs:
        candidate = Path(ref)
        if candidate.is_file():
            found.append(load_run(candidate))
            continue
        matches = [path for path in stored if path.stem.startswith(ref)]
        if not matches:
            raise RecordError(out_dir / RUNS, None, f"no stored run matches {ref!r}")
        if len(matches) > 1 and not any(path.stem == ref for path in matches):
            names = ", ".join(path.stem for path in matches[:5])
            raise RecordError(out_dir / RUNS, None, f"{ref!r} matches {len(matches)} runs ({names}…); give more of the id")
        exact = [path for path in matches if path.stem == ref]
        found.append(load_run(exact[0] if exact else matches[0]))
    return found
