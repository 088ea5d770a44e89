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
from pytest_llmgate.providers.calls import abandoned

RECORDINGS = "recordings"


class RecordingLine(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded reply, a line of ``recordings/<template_id>.jsonl``: the request's key (``request_key``), the
    model, trial and case it was asked for, and the reply's text. A replay gives a case the line recorded for it
    (two cases can send the same request, and a sampled model answer them differently), else the request's latest
    line; a later line for the same key and case wins.

    ``usage``: the call's tokens and latency as the endpoint reported and the clock measured them, so that a
    replay reports (and gates on) the same figures; absent in recordings made before they were kept. The 429s a
    call absorbed belong to the session that met them and are not recorded."""

    key: Annotated[str, msgspec.Meta(description="SHA-256 of everything that determines the reply (provider, model, "
                                                 "sampling settings, rendered messages, trial).")]
    model: Annotated[str | None, msgspec.Meta(description="The model asked.")] = None
    reply: Annotated[str, msgspec.Meta(description="The reply's text.")]
    trial: Annotated[int | None, msgspec.Meta(description="The trial's index (0, 1, ...).")] = None
    usage: Annotated[Usage | None, msgspec.Meta(description="The call's tokens and latency.")] = None
    case_id: Annotated[str | None, msgspec.Meta(
        description="The case the request was sent for; absent in recordings made before it was kept.")] = None


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
        #: the latest reply to each request key, and to each (key, case)
        self._replies: dict[str | tuple[str, str], tuple[str, Usage | None]] = self._read() if self.existed else {}
        self._lock = threading.Lock()
        self._folder_made = self.existed
        self._live: set[str | tuple[str, str]] = set()  # replies the endpoint gave in this process
        #: (key, case) whose latest ask in this process went live and got no reply (its call failed, or its case
        #: stopped waiting): what the file holds for them is not what the model said this session
        self._unanswered: set[tuple[str, str | None]] = set()

    def _found(self, key: str, case_id: str | None) -> tuple[str | tuple[str, str], tuple[str, Usage | None] | None]:
        """The reply recorded for ``key`` and ``case_id``, else the latest for ``key``; with where it was kept."""
        if case_id is not None and (key, case_id) in self._replies:
            return (key, case_id), self._replies[(key, case_id)]
        return key, self._replies.get(key)

    def seen(self, request: Mapping[str, Any], case_id: str | None = None) -> tuple[str | None, bool]:
        """The reply this process has for ``request`` (recorded or called) and whether it came from a live call;
        None when it has none: nothing recorded, a live call for it that failed (whatever the file holds), or,
        in mode ``all`` (always call), no call of this case's that answered."""
        key = request_key(request)
        if (key, case_id) in self._unanswered:
            return None, False
        where, found = self._found(key, case_id)
        live = where in self._live and (case_id is None or where == (key, case_id))  # another case's call: replayed
        if found is None or (self.mode is RecordMode.ALL and not live):
            return None, False
        return found[0], live

    def _read(self) -> dict[str | tuple[str, str], tuple[str, Usage | None]]:
        replies: dict[str | tuple[str, str], tuple[str, Usage | None]] = {}
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
            if entry.case_id is not None:
                replies[(entry.key, entry.case_id)] = replies[entry.key]
        return replies

    def reply(
        self, request: Mapping[str, Any], call: Callable[[], tuple[str, Usage]], case_id: str | None = None
    ) -> tuple[str, Usage | None]:
        """The recorded reply to ``request`` for ``case_id`` and its usage (else the request's latest), or
        ``call()``'s, recorded, when the mode allows.

        A replayed reply's usage is the recorded one (its tokens and latency), with no 429s. A request recorded
        for another case is replayed, not called again (``once``, ``new_episodes``), as it was in the session
        that recorded it."""
        key = request_key(request)
        found = self._found(key, case_id)[1]
        if self.mode is not RecordMode.ALL and found is not None:
            if self._unanswered:  # asked again (a rerun) and replayed: answered now
                with self._lock:
                    self._unanswered.discard((key, case_id))
            return found
        if self.mode is RecordMode.NONE:
            raise NotRecorded("not recorded; run with --llmgate-record=new_episodes")
        try:
            reply, usage = call()
        except BaseException:
            self._no_reply(key, case_id)
            raise
        if abandoned():  # its case stopped waiting (case_timeout): an error there, so never a reply to replay
            self._no_reply(key, case_id)
            return reply, usage
        kept = msgspec.structs.replace(usage, rate_limited=0)
        line = _encode_line(RecordingLine(key=key, model=request.get("model"), reply=reply, trial=request.get("trial"),
                                          usage=kept, case_id=case_id)) + b"\n"
        with self._lock:
            for where in (key,) if case_id is None else (key, (key, case_id)):
                self._replies[where] = (reply, kept)
                self._live.add(where)
            self._unanswered.discard((key, case_id))
            if not self._folder_made:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._folder_made = True
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)  # one write with O_APPEND: lines from several processes never interleave
            finally:
                os.close(fd)
        return reply, usage

    def _no_reply(self, key: str, case_id: str | None) -> None:
        """A live call for ``key`` and ``case_id`` gave no reply: ``seen`` shows none for them (in mode ``all`` the
        file may hold an earlier session's, in ``new_episodes`` another case's call may have recorded one)."""
        with self._lock:
            self._unanswered.add((key, case_id))


def recordings_sha256(path: Path) -> str | None:
    """SHA-256 of a recordings file as it is now (None: there is none)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
