"""One definition per file format: msgspec ``Struct`` types, and from them the JSON written, read and described.

Every format the gate writes (run record, redacted evaluation, session report and its decision, lock,
recordings line, the result an xdist worker sends) is a ``msgspec.Struct`` defined once in the module that owns
it. This module turns those definitions into bytes (``dump``), back into typed objects (``load``) and into the
JSON Schemas shipped in ``schemas/`` (``json_schema``). msgspec encodes and validates in C: reading a record
is a typed decode, not a walk over a dict.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ._errors import LlmgateError, RecordError

T = TypeVar("T")

_encode = msgspec.json.Encoder().encode


def to_data(obj: Any) -> Any:
    """Plain JSON data (dicts, lists, strings, numbers) of a format object, for hooks and exporters."""
    return msgspec.to_builtins(obj)


def from_data(data: Any, kind: type[T]) -> T:
    """A format object from plain data (a hook's edited copy, say); a mismatch raises ``msgspec.ValidationError``."""
    return msgspec.convert(data, kind)


def dump(obj: Any) -> bytes:
    """JSON for people and diffs: objects indented by two spaces; a list of objects or lists has each element on
    one line of its own (100,000 cases are 100,000 lines, each encoded in C), except a short list of objects that
    hold objects (the report's experiments and runs), which is indented like an object."""
    return (_pretty(msgspec.to_builtins(obj), "") + "\n").encode("utf-8")


#: A list of at most this many nested objects is indented in full; a longer one (per-case lists) is one per line.
_SHORT_LIST = 8


def _pretty(value: Any, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        members = (f"{inner}{_encode(str(key)).decode()}: {_pretty(item, inner)}" for key, item in value.items())
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, list, tuple)):
        if len(value) <= _SHORT_LIST and any(_nested(item) for item in value):
            return "[\n" + ",\n".join(inner + _pretty(item, inner) for item in value) + f"\n{indent}]"
        return "[\n" + ",\n".join(inner + _encode(item).decode() for item in value) + f"\n{indent}]"
    return _encode(value).decode()


def _nested(item: Any) -> bool:
    return isinstance(item, dict) and any(isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict))
                                          for v in item.values())


def load(raw: bytes, kind: type[T], path: Path | None, error: type[LlmgateError] = RecordError) -> T:
    """Decode ``raw`` as ``kind``; anything else raises ``error`` naming the file and what is wrong."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise error(path, None, f"is not a valid {_name(kind)} ({exc})") from None
    except msgspec.DecodeError as exc:
        offset = re.search(r"\(byte (\d+)\)", str(exc))
        line = raw.count(b"\n", 0, int(offset.group(1))) + 1 if offset else None
        raise error(path, line, f"cannot be read as JSON ({exc})") from None


def _name(kind: type[Any]) -> str:
    config = getattr(kind, "__struct_config__", None)
    tag = getattr(config, "tag", None)
    return str(tag) if isinstance(tag, str) else kind.__name__


def json_schema(kind: type[Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a format, as shipped in ``schemas/``."""
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema.update(msgspec.json.schema(kind))
    return schema
