"""The replies file (``--llmgate-save-replies=PATH``): what each candidate was sent and answered, case by case.

It holds case input (the rendered prompt) and model output, so it is written only when asked, never inside the
records folder, and nothing else the gate writes (records, report, exports, Markdown, HTML report) reads it:
``llmgate view`` turns it into a page for the person who ran the session (docs/report.md, "Replies")."""

from __future__ import annotations

from pathlib import Path

import msgspec

from pytest_llmgate.model.errors import RecordError
from pytest_llmgate.model.vocab import Outcome, Role, Route

REPLIES_SCHEMA = "llmgate.replies/1"


class TrialReply(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One trial of a case: the messages sent, the reply (None: none), where it came from, the route read."""

    trial: int
    messages: tuple[tuple[str, str], ...]
    reply: str | None
    source: str  # "live", "replayed" or "no reply"
    note: str | None = None
    route: Route | None = None


class CaseReplies(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One case for one candidate: its trials and, once the session has judged it, the verdict."""

    experiment: str
    suite: str
    case_id: str
    template_id: str
    role: Role
    expected_route: Route
    trials: tuple[TrialReply, ...]
    outcome: Outcome | None = None
    passed_trials: int | None = None


class SavedReplies(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="schema",
                   tag=REPLIES_SCHEMA):
    """The whole file: when it was written and every case's replies, in run order."""

    written_at: str
    cases: tuple[CaseReplies, ...]


def read_replies(path: Path) -> SavedReplies:
    """The replies file at ``path``; a clear error naming it when it is missing or not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        return msgspec.json.decode(data, type=SavedReplies)
    except msgspec.DecodeError as exc:
        raise RecordError(path, None, f"not a replies file written by --llmgate-save-replies: {exc}") from None
