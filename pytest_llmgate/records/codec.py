"""One definition per file format (a ``msgspec.Struct`` in the module that owns it, docs/architecture.md), and from
it the JSON written (``dump``), read (``load``) and described (``json_schema``, the schemas in ``schemas/``).
msgspec encodes and validates in C: reading a record is a typed decode, not a walk over a dict."""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import msgspec

from pytest_llmgate.model.errors import LlmgateError, RecordError

T = TypeVar("T")

_encode = msgspec.json.Encoder().encode

#: What a JSON document nested deeper than the decoder goes (a ``RecursionError``) is said to be.
TOO_DEEP = "cannot be read as JSON: it nests arrays or objects too deeply"


def to_data(obj: Any) -> Any:
    """Plain data of a format object, for hooks and exporters: dicts, strings, numbers, and lists, but a tuple
    field stays a tuple (``msgspec.to_builtins``)."""
    return msgspec.to_builtins(obj)


def from_data(data: Any, kind: type[T]) -> T:
    """A format object from plain data (a hook's edited copy, say); a mismatch raises ``msgspec.ValidationError``."""
    return msgspec.convert(data, kind)


def dump(obj: Any) -> bytes:
    """JSON for people and diffs: objects indented by two spaces; a list of objects or lists has each element on
    one line of its own (100,000 cases are 100,000 lines, each encoded in C), except a short list of objects that
    hold objects (the report's experiments and runs), which is indented like an object."""
    return b"".join(dump_chunks(obj))


def dump_chunks(obj: Any) -> Iterator[bytes]:
    """``dump``'s bytes in pieces, for writing a large record without holding it twice: a per-case list of
    ``Struct`` entries is encoded entry by entry from the objects (never turned into dicts first)."""
    yield from _pieces(shallow_data(obj), b"")
    yield b"\n"


def shallow_data(obj: Any) -> Any:
    """``msgspec.to_builtins(obj)``, except that a field of ``obj`` holding more than a few Structs (the per-case
    lists of a record) stays a list of Structs (an ``Entries``), encoded one by one when written."""
    fields = msgspec.structs.asdict(obj) if isinstance(obj, msgspec.Struct) else {}
    long = {name: value for name, value in fields.items()
            if isinstance(value, (tuple, list)) and len(value) > _SHORT_LIST and isinstance(value[0], msgspec.Struct)}
    if not long:
        return msgspec.to_builtins(obj)
    data = msgspec.to_builtins(msgspec.structs.replace(obj, **{name: items[:1] for name, items in long.items()}))
    for name, items in long.items():
        data[name] = Entries(items)
    return data


class Entries(tuple):  # type: ignore[type-arg]
    """A per-case list kept as Structs until it is written."""


#: A list of at most this many nested objects is indented in full; a longer one (per-case lists) is one per line.
_SHORT_LIST = 8


def _pieces(value: Any, indent: bytes) -> Iterator[bytes]:
    inner = indent + b"  "
    if isinstance(value, Entries):
        yield b"[\n" + inner
        yield from _entry_lines(value, inner)
        yield b"\n" + indent + b"]"
    elif isinstance(value, dict) and value:
        yield b"{\n"
        for index, (key, item) in enumerate(value.items()):
            yield (inner if index == 0 else b",\n" + inner) + _encode(str(key)) + b": "
            yield from _pieces(item, inner)
        yield b"\n" + indent + b"}"
    elif isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, list, tuple)):
        if len(value) <= _SHORT_LIST and any(_nested(item) for item in value):
            yield b"[\n"
            for index, item in enumerate(value):
                yield inner if index == 0 else b",\n" + inner
                yield from _pieces(item, inner)
            yield b"\n" + indent + b"]"
        else:
            yield b"[\n" + b",\n".join(inner + _encode(item) for item in value) + b"\n" + indent + b"]"
    else:
        yield _encode(value)


#: Entries written as one piece.
_CHUNK = 2048


def _entry_lines(entries: Sequence[Any], inner: bytes) -> Iterator[bytes]:
    """The entries one a line, ``,\n`` + ``inner`` between them, each encoded from its object by msgspec."""
    separator = b",\n" + inner
    for offset in range(0, len(entries), _CHUNK):
        piece = separator.join(map(_encode, entries[offset:offset + _CHUNK]))
        yield piece if offset == 0 else separator + piece


def _nested(item: Any) -> bool:
    return isinstance(item, dict) and any(isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict))
                                          for v in item.values())


def read_bytes(path: Path, error: type[LlmgateError] = RecordError) -> bytes:
    """The bytes of a file to be read; ``error`` naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(path, None, f"cannot be read: {exc.strerror or exc}") from None


def load(raw: bytes, kind: type[T], path: Path | None, error: type[LlmgateError] = RecordError) -> T:
    """Decode ``raw`` as ``kind``; anything else raises ``error`` naming the file and what is wrong."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise error(path, None, f"is not a valid {_name(kind)} ({exc})") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _unreadable(raw, exc, path, error) from None


def load_json(raw: bytes, path: Path | None) -> Any:
    """Any JSON document, decoded; bad JSON, or nesting deeper than the decoder goes, raises ``RecordError``."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _unreadable(raw, exc, path, RecordError) from None


def _unreadable(raw: bytes, exc: Exception, path: Path | None, error: type[LlmgateError]) -> LlmgateError:
    if isinstance(exc, RecursionError):
        return error(path, 1, TOO_DEEP)
    offset = re.search(r"\(byte (\d+)\)", str(exc))
    line = raw.count(b"\n", 0, int(offset.group(1))) + 1 if offset else None
    return error(path, line, f"cannot be read as JSON ({exc})")


def _name(kind: Any) -> str:
    """What a format is called in a message: its schema tag, else its name; a union names each member."""
    members = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    names = []
    for member in members:
        tag = getattr(getattr(member, "__struct_config__", None), "tag", None)
        names.append(str(tag) if isinstance(tag, str) else getattr(member, "__name__", "JSON document"))
    return " or ".join(names)


def json_schema(kind: type[Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a format, as shipped in ``schemas/``, in a normal form that does not depend on
    the msgspec release that generated it (``normal_schema``)."""
    return cast("dict[str, Any]", normal_schema({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                                 **msgspec.json.schema(kind)}))


def normal_schema(node: Any) -> Any:
    """A schema in the one form we ship, whatever msgspec release made it: each ``description`` cleaned as
    ``inspect.cleandoc`` cleans a docstring (msgspec releases keep a docstring's indentation differently), and no
    ``propertyNames`` that only refers to an enum (msgspec 0.23 adds one for a map keyed by an enum, earlier
    releases do not; the reader checks those keys either way; key patterns stay: every release writes them), and
    the branches of an ``anyOf`` in one order (releases before 0.20 put ``null`` first)."""
    if isinstance(node, dict):
        normal = {key: normal_schema(value) for key, value in node.items()
                  if not (key == "propertyNames" and isinstance(value, dict) and value.keys() == {"$ref"})}
        if isinstance(normal.get("anyOf"), list):
            normal["anyOf"] = sorted(normal["anyOf"], key=lambda branch: json.dumps(branch, sort_keys=True))
        if isinstance(normal.get("description"), str):
            normal["description"] = inspect.cleandoc(normal["description"])
        return normal
    if isinstance(node, list):
        return [normal_schema(item) for item in node]
    return node
