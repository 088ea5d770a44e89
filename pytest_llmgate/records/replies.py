"""The replies file (``--llmgate-save-replies=PATH``): what each candidate was sent and answered, case by case.

It holds case input (the rendered prompt) and model output, so it is written only when asked, never inside the
records folder, and nothing else the gate writes (records, report, exports, Markdown, HTML report) reads it:
``llmgate view`` turns it into a page for the person who ran the session (docs/report.md, "Replies")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from pytest_llmgate.model.errors import RecordError
from pytest_llmgate.model.transcript import ReplySource
from pytest_llmgate.model.vocab import Outcome, Role, Route
from pytest_llmgate.records.codec import read_bytes

REPLIES_SCHEMA = "llmgate.replies/1"


class TrialReply(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One trial of a case: the messages sent, the reply (None: none), where it came from, the route read."""

    trial: Annotated[int, Meta(ge=0, description="The trial's index (0, 1, ...).")]
    messages: Annotated[tuple[tuple[Annotated[str, Meta(description="Who says it: system, user ...")],
                                    Annotated[str, Meta(description="The message's text.")]], ...],
                        Meta(description="The rendered messages sent, in order, each [role, text]; empty when "
                                         "none were (see note).")]
    reply: Annotated[str | None, Meta(description="The reply's text; null: no reply.")]
    source: Annotated[ReplySource, Meta(description="live: the endpoint answered; replayed: from the recordings; "
                                                    "no reply: none (see note).")]
    note: Annotated[str | None, Meta(description="Why there is no reply or no messages (a missing placeholder, "
                                                 "a failed call); absent otherwise.")] = None
    route: Annotated[Route | None, Meta(description="The route read from this trial's reply, as its run record "
                                                    "keeps it; absent when none was read or the session wrote no "
                                                    "record of the case.")] = None


class CaseReplies(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One case for one candidate: its trials and, once the session has judged it, the verdict."""

    experiment: Annotated[str, Meta(description="The experiment's name.")]
    suite: Annotated[str, Meta(description="The suite the case is in.")]
    case_id: Annotated[str, Meta(description="The case's id.")]
    template_id: Annotated[str, Meta(description="The candidate or baseline that was asked.")]
    role: Annotated[Role, Meta(description="candidate or baseline.")]
    expected_route: Annotated[Route, Meta(description="The case's label: SERVE or ABSTAIN.")]
    trials: Annotated[tuple[TrialReply, ...], Meta(description="Each trial's messages and reply, in trial order.")]
    outcome: Annotated[Outcome | None, Meta(description="The case's outcome in its run record; absent when the "
                                                        "session wrote no record of it.")] = None
    passed_trials: Annotated[int | None, Meta(description="How many trials passed; absent when the case has "
                                                                "no outcome or no route was read.")] = None


class SavedReplies(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="schema",
                   tag=REPLIES_SCHEMA):
    """The whole file: when it was written and every case's replies, in run order."""

    written_at: Annotated[str, Meta(description="When the session wrote the file (UTC, ISO 8601).")]
    cases: Annotated[tuple[CaseReplies, ...], Meta(description="Every case of every LLM candidate, in the records' "
                                                               "order.")]


def read_replies(path: Path) -> SavedReplies:
    """The replies file at ``path``; a clear error naming it when it is missing or not one."""
    try:
        return msgspec.json.decode(read_bytes(path), type=SavedReplies)
    except msgspec.DecodeError as exc:
        raise RecordError(path, None, f"not a replies file written by --llmgate-save-replies: {exc}") from None
