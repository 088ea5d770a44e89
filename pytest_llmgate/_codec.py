"""One definition per file format: msgspec ``Struct`` types, and from them the JSON written, read and described.

Every format the gate writes (run record, redacted evaluation, session report and its decision, lock,
recordings line, the result an xdist worker sends) is a ``msgspec.Struct`` defined once in the module that owns
it. This module turns those definitions into bytes (``dump``), back into typed objects (``load``) and into the
JSON Schemas shipped in ``schemas/`` (``json_schema``). msgspec encodes and validates in C: reading a record
is a typed decode, not a walk over a dict.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
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
    out = io.BytesIO()  # getvalue() hands over its buffer: the output is never copied whole
    for part in dump_parts(obj):
        out.write(part)
    return out.getvalue()


def dump_parts(obj: Any) -> Iterator[bytes]:
    """``dump``'s bytes in parts, in order, for a writer that writes them as they come.

    A format object's long lists of objects (a record's cases) are encoded element by element, never as plain data
    first: the bytes are the same, and a record of 100,000 cases is never held as dicts, nor whole as bytes."""
    streamed: dict[str, tuple[Any, ...]] = {}
    markers: dict[int, str] = {}
    if isinstance(obj, msgspec.Struct):
        for name in obj.__struct_fields__:
            value = getattr(obj, name)
            if isinstance(value, tuple) and len(value) > _SHORT_LIST and isinstance(value[0], msgspec.Struct):
                streamed[name] = value
        if streamed:  # each such field holds a marker (a string known by its identity) until the text is put together
            fresh = {name: "".join(("\0", name)) for name in streamed}
            markers = {id(marker): name for name, marker in fresh.items()}
            obj = msgspec.structs.replace(obj, **{name: (marker,) for name, marker in fresh.items()})
    text = _pretty(msgspec.to_builtins(obj), "", markers) + "\n"
    if not streamed:
        yield text.encode("utf-8")
        return
    # A raw NUL never occurs in JSON text (a string's NUL is written \u0000): the text splits into its own pieces
    # and, between them, each marker's field name and indent.
    pieces = text.split("\0")
    for index, piece in enumerate(pieces):
        if index % 3 == 0:
            yield piece.encode("utf-8")
        elif index % 3 == 1:
            indent = pieces[index + 1].encode("ascii")
            first = True
            for item in streamed[piece]:
                yield (b"[\n" if first else b",\n") + indent + _encode(item)
                first = False
            yield b"\n" + indent[:-2] + b"]"


#: A list of at most this many nested objects is indented in full; a longer one (per-case lists) is one per line.
_SHORT_LIST = 8


def _pretty(value: Any, indent: str, markers: dict[int, str]) -> str:
    inner = indent + "  "
    if markers and isinstance(value, (list, tuple)) and len(value) == 1 and id(value[0]) in markers:
        return f"\0{markers[id(value[0])]}\0{inner}\0"
    if isinstance(value, dict) and value:
        members = (f"{inner}{_encode(str(key)).decode()}: {_pretty(item, inner, markers)}" for key, item in value.items())
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, list, tuple)):
        if len(value) <= _SHORT_LIST and any(_nested(item) for item in value):
            return "[\n" + ",\n".join(inner + _pretty(item, inner, markers) for item in value) + f"\n{indent}]"
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
