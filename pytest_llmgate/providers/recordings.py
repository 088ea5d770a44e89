"""Record and replay of LLM replies: ``recordings/<template_id>.jsonl`` beside the experiment, keyed by request."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.errors import CandidateError, ProviderError
from pytest_llmgate.model.fingerprint import value_sha256
from pytest_llmgate.model.vocab import RecordMode

RECORDINGS = "recordings"


class RecordingLine(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded reply, a line of ``recordings/<template_id>.jsonl``: the request's key (``request_key``), the
    model and trial it was asked for, and the reply's text. A later line for the same key wins.

    ``usage``: the call's tokens and latency as the endpoint reported and the clock measured them, so that a
    replay reports (and gates on) the same figures; absent in recordings made before they were kept. The 429s a
    call absorbed belong to the session that met them and are not recorded."""

    key: Annotated[str, msgspec.Meta(description="SHA-256 of everything that determines the reply (provider, model, "
                                                 "sampling settings, rendered messages, trial).")]
    model: Annotated[str | None, msgspec.Meta(description="The model asked.")] = None
    reply: Annotated[str, msgspec.Meta(description="The reply's text.")]
    trial: Annotated[int | None, msgspec.Meta(description="The trial's index (0, 1, ...).")] = None
    usage: Annotated[Usage | None, msgspec.Meta(description="The call's tokens and latency.")] = None


_decode_line = msgspec.json.Decoder(RecordingLine).decode
_encode_line = msgspec.json.Encoder().encode


class NotRecorded(ProviderError):
    """Replay only, and this request has no recording."""


def recordings_path(experiment_dir: Path, template_id: str) -> Path:
    """Where a candidate's recordings live: ``recordings/<template_id>.jsonl`` beside its manifest."""
    return experiment_dir / RECORDINGS / f"{template_id}.jsonl"


def checked_recordings_path(experiment_dir: Path, template_id: str) -> Path:
    """``recordings_path``, as the file it really is: a ``CandidateError`` when a link (the recordings folder or
    the file) leads it out of the experiment directory, or when it exists but is not a regular file (a FIFO, a
    device: reading it could hang)."""
    path = recordings_path(experiment_dir, template_id)
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(experiment_dir))):
        raise CandidateError(path, None, f"leads through a link to {str(real)!r}, which leaves the experiment "
                                         "directory; recordings are read and written only inside it")
    if real.exists() and not real.is_file():
        raise CandidateError(path, None, "is not a regular file")
    return real


def request_key(request: Mapping[str, Any]) -> str:
    """SHA-256 of everything that determines a reply (provider, model, settings, messages, trial); never headers or keys."""
    return value_sha256(request)  # JSON is ASCII (escaped): the same bytes as the UTF-8 encoding keys were made with


class Recordings:
    """One candidate's recordings file: read once, appended to with one write per reply (safe across processes)."""

    def __init__(self, path: Path, mode: RecordMode) -> None:
        self.path = path
        self.existed = path.exists()
        self.mode = RecordMode.NONE if mode is RecordMode.ONCE and self.existed else mode
        self._replies: dict[str, tuple[str, Usage | None]] = self._read() if self.existed else {}
        self._lock = threading.Lock()
        self._folder_made = self.existed
        self._live: set[str] = set()  # keys answered by the endpoint in this process

    def seen(self, request: Mapping[str, Any]) -> tuple[str | None, bool]:
        """The reply this process has for ``request`` (recorded or called) and whether it came from a live call."""
        key = request_key(request)
        found = self._replies.get(key)
        return (found[0] if found is not None else None), key in self._live

    def _read(self) -> dict[str, tuple[str, Usage | None]]:
        replies: dict[str, tuple[str, Usage | None]] = {}
        for number, raw in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CandidateError(
                    self.path, number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                entry = _decode_line(raw)
            except msgspec.DecodeError as exc:
                raise CandidateError(
                    self.path, number, f"not a recording line ({{\"key\": ..., \"reply\": ...}}): {exc}"
                ) from None
            replies[entry.key] = (entry.reply, entry.usage)  # a later line for a key wins (mode "all")
        return replies

    def reply(
        self, request: Mapping[str, Any], call: Callable[[], tuple[str, Usage]]
    ) -> tuple[str, Usage | None]:
        """The recorded reply to ``request`` and its usage, or ``call()``'s, recorded, when the mode allows.

        A replayed reply's usage is the recorded one (its tokens and latency), with no 429s."""
        key = request_key(request)
        if self.mode is not RecordMode.ALL and key in self._replies:
            return self._replies[key]
        if self.mode is RecordMode.NONE:
            raise NotRecorded("not recorded; run with --llmgate-record=new_episodes")
        reply, usage = call()
        kept = msgspec.structs.replace(usage, rate_limited=0)
        line = _encode_line(RecordingLine(key=key, model=request.get("model"), reply=reply, trial=request.get("trial"),
                                          usage=kept))
        line += b"\n"
        with self._lock:
            self._replies[key] = (reply, kept)
            self._live.add(key)
            if not self._folder_made:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._folder_made = True
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)  # one write with O_APPEND: lines from several processes never interleave
            finally:
                os.close(fd)
        return reply, usage


def recordings_sha256(path: Path) -> str | None:
    """SHA-256 of a recordings file as it is now (None: there is none)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
