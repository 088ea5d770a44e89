"""What a failing LLM case shows: the rendered messages and each trial's reply, for the terminal and JUnit only.

A transcript holds case input (the rendered prompt) and model output, so it is never written to a record, the
report, an export or the Markdown summary; ``--llmgate-show=none`` turns it off for CI logs that must hold no
input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import msgspec

from pytest_llmgate.model.vocab import ShowMode

#: Characters of one message or reply shown before it is cut (``--llmgate-show=full`` shows all).
CUT_AT = 2000

#: Where a trial's reply came from: the endpoint, a recording, or nowhere (the call failed or was not made).
ReplySource = Literal["live", "replayed", "no reply"]


class TrialTranscript(msgspec.Struct, frozen=True, kw_only=True):
    """One trial of a case: the messages sent, the reply's text (None: no reply) and where it came from."""

    trial: int
    messages: tuple[tuple[str, str], ...]
    reply: str | None
    source: ReplySource
    note: str | None = None  # why there is no reply or messages (a missing placeholder, say)


#: Characters that act instead of showing: C0 and C1 controls but the newline and the tab (an ESC starts a terminal
#: sequence, a carriage return overwrites a line) and the bidirectional marks, overrides and isolates (they reorder
#: what a reviewer reads).
_ACTING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with each character that would act rather than show written as its escape (``\\u001b``,
    ``\\u202e``): what a model replied, or a file holds, reaches a terminal or a PR comment as it reads. The
    escape is JSON's, so JSON printed stays the same JSON."""
    return _ACTING.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def inline(text: str) -> str:
    """``visible``, and on one line: a line break is written as ``\\n`` too (a summary line, a failure message,
    where a suite's or a manifest's text must not start a line of its own)."""
    return visible(text).replace("\n", "\\n")


def cut(text: str, limit: int | None) -> str:
    """``text`` whole, or its first ``limit`` characters and a marker saying how much was left out and how to see it."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters cut; --llmgate-show=full shows them]"


def format_transcripts(trials: Sequence[TrialTranscript], mode: ShowMode) -> str:
    """The section shown under a failing case; empty for ``ShowMode.NONE`` or when there is nothing to show.

    With several trials the prompt is shown once (once per distinct prompt) and each distinct reply once, with
    the trials that gave it: 20 trials of one prompt and two replies are one prompt and two replies."""
    if mode is ShowMode.NONE or not trials:
        return ""
    limit = None if mode is ShowMode.FULL else CUT_AT
    lines = ["", "---------- what the model said (--llmgate-show=none hides this) ----------"]
    if len(trials) == 1:
        (transcript,) = trials
        lines.append(f"[request: {transcript.source}]")
        lines.extend(_message_lines(transcript.messages, limit))
        lines.extend(_reply(transcript, "reply:", limit))
        return "\n".join(lines)
    prompts: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for transcript in trials:
        prompts.setdefault(transcript.messages, []).append(transcript.trial)
    for messages, numbers in prompts.items():
        lines.append(f"[request: {len(trials)} trials]" if len(prompts) == 1 else f"[request: {_trials(numbers)}]")
        lines.extend(_message_lines(messages, limit))
    replies: dict[tuple[str | None, str | None], list[TrialTranscript]] = {}
    for transcript in trials:
        replies.setdefault((transcript.reply, transcript.note), []).append(transcript)
    for same in replies.values():
        sources = ", ".join(dict.fromkeys(transcript.source for transcript in same))
        header = f"{_trials([transcript.trial for transcript in same])}: {sources}"
        lines.extend(_reply(same[0], f"reply ({header}):", limit) if same[0].reply is not None
                     else [f"[{header}]", *_reply(same[0], "", limit)])
    return "\n".join(lines)


def _trials(numbers: Sequence[int]) -> str:
    return f"trial {numbers[0]}" if len(numbers) == 1 else f"trials {', '.join(map(str, numbers))}"


def _message_lines(messages: Sequence[tuple[str, str]], limit: int | None) -> list[str]:
    lines = []
    for role, text in messages:
        lines.append(f"{role}:")
        lines.extend("  " + line for line in cut(visible(text), limit).splitlines() or [""])
    return lines


def _reply(transcript: TrialTranscript, header: str, limit: int | None) -> list[str]:
    lines = [f"note: {visible(transcript.note)}"] if transcript.note else []
    if transcript.reply is not None:
        lines.append(header)
        lines.extend("  " + line for line in cut(visible(transcript.reply), limit).splitlines() or [""])
    return lines
