"""The canary window (``llmgate canary --window FILE.jsonl``): the requests a canary saw, one JSON object a line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from pytest_llmgate.model.errors import RecordError
from pytest_llmgate.model.vocab import Route
from pytest_llmgate.records.codec import TOO_DEEP, read_bytes
from pytest_llmgate.records.convert import explain


class CanaryRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request the canary saw, a line of the window: a served request whose claim is not supported is an
    unsafe claim. Other keys (a log line's own) are ignored."""

    request_id: Annotated[str | int, Meta(description="The request's id, named when it counts as unsafe.")]
    route: Annotated[Route, Meta(description="What the canary did with the request: SERVE or ABSTAIN.")]
    supported: Annotated[bool, Meta(description="Whether the claim was supported by its evidence (true or false).")]


_decode_request = msgspec.json.Decoder(CanaryRequest).decode
_FIELDS = tuple(f'"{name}"'.encode() for name in CanaryRequest.__struct_fields__)


def unsafe_requests_in(window: Path) -> list[str]:
    """The ids of the served requests whose claim was not supported, in a JSON Lines window of canary requests;
    a line that is not a ``CanaryRequest`` raises ``RecordError`` naming the file, the line and the field, and so
    does a window with no request at all."""
    unsafe: list[str] = []
    seen = 0
    for number, line in enumerate(read_bytes(window).split(b"\n"), start=1):
        if not line.strip():
            continue
        seen += 1
        try:
            request = _decode_request(line)
            twice = _given_twice(line)
            if twice is not None:  # JSON decoders keep the last: "supported": false, "supported": true is no alibi
                raise RecordError(window, number, f"gives {twice!r} twice; a request is read only when each of "
                                                  f"its fields is given once")
            if request.route is Route.SERVE and not request.supported:
                unsafe.append(str(request.request_id))
        except msgspec.ValidationError as exc:  # JSON, but not a request: said as the other input files say it
            raise RecordError(window, number, _not_a_request(line, exc)) from None
        except msgspec.DecodeError as exc:
            raise RecordError(window, number, f"cannot be read as JSON ({exc})") from None
        except RecursionError:
            raise RecordError(window, number, TOO_DEEP) from None
        except ValueError as exc:  # what the duplicate-key check's reader refuses
            raise RecordError(window, number, str(exc)) from None
    if not seen:  # a log export that failed is no evidence of a healthy canary
        raise RecordError(window, None, "holds no request: an empty window says nothing of the canary")
    return unsafe


def _given_twice(line: bytes) -> str | None:
    """A field of ``CanaryRequest`` the line's object gives more than once (None: none). Checked in full only when
    a field's name appears twice in the text, or an escape could spell one."""
    if b"\\u" not in line and all(line.count(field) <= 1 for field in _FIELDS):
        return None
    try:  # the values are not read (parse_* keep a log line's 5,000-digit number from Python's int limit)
        pairs = json.loads(line, object_pairs_hook=list, parse_int=len, parse_float=len, parse_constant=len)
    except ValueError as exc:
        raise ValueError(f"cannot be read as JSON ({exc})") from None
    names = [name for name, _ in pairs]
    return next((name for name in CanaryRequest.__struct_fields__ if names.count(name) > 1), None)


def _not_a_request(line: bytes, exc: msgspec.ValidationError) -> str:
    try:
        data = msgspec.json.decode(line)
    except RecursionError:
        return TOO_DEEP
    return explain(exc, data, CanaryRequest).message() if isinstance(data, dict) else "not a JSON object"
