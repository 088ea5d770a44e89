"""Where records go: time-sortable run ids and atomic writes that never half-write or overwrite a run."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from pytest_llmgate.model.errors import RecordError, display_path
from pytest_llmgate.records.codec import dump_chunks
from pytest_llmgate.records.run import Artifact, RunRecord, redacted_eval

RUNS = "runs"
REPORTS = "reports"
REPORT_FILE = "report.json"
PREVIOUS_REPORT_FILE = "report.previous.json"


def redacted_path(run_id: str) -> str:
    """A run's redacted evaluation report, relative to the records folder."""
    return f"{REPORTS}/{run_id}-redacted-eval.json"


def write_redacted(draft: RunRecord, out_dir: Path) -> RunRecord:
    """Write a run's redacted evaluation report, piece by piece; the record with it as its last artifact."""
    relative = redacted_path(draft.run_id)
    digest = hashlib.sha256()  # worked out on its way to the file
    _write(out_dir / relative, dump_chunks(redacted_eval(draft)), replace=False, digest=digest)
    artifact = Artifact(path=relative, sha256=digest.hexdigest())
    return msgspec.structs.replace(draft, artifacts=(*draft.artifacts, artifact))


def relative_to_records(directory: Path, out_dir: Path) -> str | None:
    """A directory (an experiment's) relative to a records folder, as a record's ``experiment_path`` names it
    (None when they are on different drives)."""
    try:
        return Path(os.path.relpath(directory.resolve(), out_dir.resolve())).as_posix()
    except ValueError:
        return None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(moment: datetime) -> str:
    """Sortable by time to the microsecond, unique by 32 random bits."""
    return f"{moment.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def write_new(path: Path, payload: bytes | Iterable[bytes]) -> None:
    """Write ``path`` atomically (``payload``: bytes, or pieces written one after another); an existing file of
    that name is never replaced."""
    _write(path, payload, replace=False, digest=None)


def write_replacing(path: Path, payload: bytes | Iterable[bytes]) -> None:
    """Write ``path`` atomically, replacing an earlier version whole (``payload`` as ``write_new``'s)."""
    _write(path, payload, replace=True, digest=None)


def check_writable(path: Path) -> None:
    """A ``RecordError`` now, naming why, when ``path`` could not be written at the end of the session (its folder
    cannot be made, or holds no file of ours, or ``path`` is a folder); nothing is left behind but the folder."""
    if path.is_dir():
        raise RecordError(path, None, "cannot be written: is a folder")
    fd, tmp = _temporary(path)
    os.close(fd)
    tmp.unlink(missing_ok=True)


def _temporary(path: Path) -> tuple[int, Path]:
    """A new temporary file beside ``path`` (its folder made first), open for writing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise RecordError(path, None, f"cannot be written: {display_path(blocker)} is a file, not a folder") from None
        raise RecordError(path, None, f"cannot be written: {exc.strerror or exc}") from None
    return fd, Path(tmp_name)


def _write(path: Path, payload: bytes | Iterable[bytes], *, replace: bool, digest: hashlib._Hash | None) -> None:
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as handle:
            for piece in (payload,) if isinstance(payload, bytes) else payload:
                handle.write(piece)
                if digest is not None:
                    digest.update(piece)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the name exists: no run is ever overwritten
    except FileExistsError:
        raise RecordError(path, None, "already exists; run records are never overwritten") from None
    except OSError as exc:
        raise RecordError(path, None, f"cannot be written: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
