"""What a failing LLM case shows: the rendered messages and each trial's reply, for the terminal and JUnit only.

A transcript holds case input (the rendered prompt) and model output, so it is never written to a record, the
report, an export or the Markdown summary; ``--llmgate-show=none`` turns it off for CI logs that must hold no
input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llmgate.model.vocab import ShowMode

#: Characters of one message or reply shown before it is cut (``--llmgate-show=full`` shows all).
CUT_AT = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialTranscript:
    """One trial of a case: the messages sent, the reply's text (None: no reply) and where it came from."""

    trial: int
    messages: tuple[tuple[str, str], ...]
    reply: str | None
    source: str  # "live", "replayed" or "no reply"
    note: str | None = None  # why there is no reply or messages (a missing placeholder, say)


def cut(text: str, limit: int | None) -> str:
    """``text`` whole, or its first ``limit`` characters and a marker saying how much was left out and how to see it."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters cut; --llmgate-show=full shows them]"


def format_transcripts(trials: Sequence[TrialTranscript], mode: ShowMode) -> str:
    """The section shown under a failing case; empty for ``ShowMode.NONE`` or when there is nothing to show."""
    if mode is ShowMode.NONE or not trials:
        return ""
    limit = None if mode is ShowMode.FULL else CUT_AT
    lines = ["", "---------- what the model said (--llmgate-show=none hides this) ----------"]
    for transcript in trials:
        header = f"trial {transcript.trial}" if len(trials) > 1 else "request"
        lines.append(f"[{header}: {transcript.source}]")
        for role, text in transcript.messages:
            lines.append(f"{role}:")
            lines.extend("  " + line for line in cut(text, limit).splitlines() or [""])
        if transcript.note:
            lines.append(f"note: {transcript.note}")
        if transcript.reply is not None:
            lines.append("reply:")
            lines.extend("  " + line for line in cut(transcript.reply, limit).splitlines() or [""])
    return "\n".join(lines)
