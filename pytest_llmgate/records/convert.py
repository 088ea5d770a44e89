"""Input files (manifest, suite, candidate artifact) into their ``msgspec.Struct``: ``msgspec.convert`` of the
parsed YAML (or JSON Lines) data, an error said for people. msgspec says what is wrong and where as a path
(``Expected `str`, got `int` - at `$.cases[0].source```); ``explain`` turns that into the location in the file
(keys and indexes, which ``Document.line_of`` finds the line of) and a sentence that names the value, what was
expected and, for an unknown key, the keys allowed and the one it may be a misspelling of."""

from __future__ import annotations

import enum
import functools
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from pytest_llmgate.model.errors import LlmgateError
from pytest_llmgate.records.yaml_loader import Document

T = TypeVar("T")

Location = list[str | int]


def convert(document: Document, kind: type[T], error: type[LlmgateError]) -> T:
    """The parsed file as ``kind``; anything else raises ``error`` naming the file, the line and what is wrong."""
    if document.data is None:
        raise error(document.path, document.line_of([]), f"is empty; expected {describe(kind)}")
    try:
        return msgspec.convert(document.data, kind)
    except msgspec.ValidationError as exc:
        problem = explain(exc, document.data, kind)
        line = document.line_of(problem.line_location or problem.location)
        raise error(document.path, line, problem.message()) from None


class Problem(msgspec.Struct, frozen=True):
    """What is wrong in a converted value: where (keys and indexes from the root), and what."""

    location: Location
    text: str
    #: Where the line is looked up, when not at ``location`` (an unknown key: its own line).
    line_location: Location | None = None

    def message(self, skip: int = 0) -> str:
        """``where: text`` (``skip``: leading location parts the reader already knows, a JSON Lines index)."""
        where = ""
        for part in self.location[skip:]:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        return f"{where}: {self.text}" if where else self.text


_AT = re.compile(r"(?P<text>.*?)(?: - at `(?P<key>key` in `)?(?P<path>\$[^`]*)`)?", re.DOTALL)
_STEP = re.compile(r"\.(?P<field>[^.\[]+)|\[(?P<index>\d+)\]|(?P<entry>\[\.\.\.\])")


def explain(exc: msgspec.ValidationError, data: Any, kind: Any) -> Problem:
    """The location and a sentence for people of msgspec's error converting ``data`` to ``kind``."""
    found = _AT.fullmatch(str(exc))
    assert found is not None  # the pattern matches any text
    text = found["text"]
    location: Location = []
    value, tp = data, kind
    for step in _STEP.finditer(found["path"] or ""):
        if step["field"] is not None:
            name = step["field"]
            tp = _field_types(_member(tp, "struct")).get(name, Any)
            value = value.get(name) if isinstance(value, Mapping) else None
            location.append(name)
        elif step["index"] is not None:
            index = int(step["index"])
            tp = _args(_member(tp, "list"), 1)[0]
            value = value[index] if isinstance(value, list) and index < len(value) else None
            location.append(index)
        else:  # a mapping's value, which msgspec does not name: the first one that does not convert
            tp = _args(_member(tp, "dict"), 2)[1]
            key = _first_failing(value.items() if isinstance(value, Mapping) else (), tp, by_value=True)
            value = value[key] if key is not None else None
            location.append(key if key is not None else "...")
    if found["key"]:  # a mapping's key (a Struct's keys are strings); its rule is said by the mapping's description
        mapping = _member(tp, "dict")
        key_type = _args(mapping, 2)[0] if mapping is not Any else str
        key = _first_failing(value.items() if isinstance(value, Mapping) else (), key_type, by_value=False)
        rule = _description(key_type) or _description(tp)
        return Problem(location, f"key {_value_text(text, key, key_type, rule)}",
                       line_location=[*location, key] if isinstance(key, str) else None)
    return _problem(text, location, value, tp)


def _problem(text: str, location: Location, value: Any, tp: Any) -> Problem:
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", text, re.DOTALL)
    if unknown:
        return _unknown_key(unknown[1], location, value, tp)
    missing = re.fullmatch(r"Object missing required field `(.*)`", text, re.DOTALL)
    if missing:  # msgspec names the first; every required key not written is said at once
        names = _missing_keys(value, tp)
        names = names if missing[1] in names else [missing[1]]  # a union's other Struct: msgspec's word only
        said = [f"{name!r}{_misspelt(name, value, tp)}" for name in names]
        keys = said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"
        return Problem(location, f"missing required key{'s' if len(said) > 1 else ''} {keys}")
    return Problem(location, _value_text(text, value, tp))


def _unknown_key(key: str, location: Location, value: Any, tp: Any) -> Problem:
    struct = _member(tp, "struct")
    allowed = list(getattr(struct, "__struct_fields__", ()))
    refused: Mapping[str, str] = getattr(struct, "refused_keys", {})
    if key in refused:  # a key known only to be refused, with its reason (say trials: for a deterministic policy)
        return Problem([*location, key], refused[key])
    written = value.keys() if isinstance(value, Mapping) else ()
    import difflib  # only when a problem is reported

    close = difflib.get_close_matches(key, [name for name in allowed if name not in written], n=1)
    hint = f", a misspelling of {close[0]!r}?" if close else ""
    return Problem(location, f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})",
                   line_location=[*location, key])


def _missing_keys(value: Any, tp: Any) -> list[str]:
    """The required keys of ``tp``'s Struct that ``value`` does not have, in the Struct's order."""
    struct = _member(tp, "struct")
    if not isinstance(value, Mapping) or struct is Any:
        return []
    return [field.encode_name for field in msgspec.structs.fields(struct)
            if field.required and field.encode_name not in value]


def _misspelt(missing: str, value: Any, tp: Any) -> str:
    """For a missing key: a key written beside it that is close to it (a typo the Struct ignored)."""
    known = set(getattr(_member(tp, "struct"), "__struct_fields__", ()))
    written = [key for key in (value if isinstance(value, Mapping) else ()) if isinstance(key, str) and key not in known]
    import difflib  # only when a problem is reported

    close = difflib.get_close_matches(missing, written, n=1)
    return f" (unknown key {close[0]!r}, a misspelling of {missing!r}?)" if close else ""


_BOUND = re.compile(r"Expected `(?P<type>[^`]+)` (?P<op>>=|>|<=|<) (?P<bound>\S+)")
_LENGTH = re.compile(r"Expected `(?P<type>[^`]+)` of length (?P<op>>=|<=) (?P<bound>\d+)")
_WORDS = {">=": "is less than the minimum of", ">": "is not greater than", "<=": "is greater than the maximum of",
          "<": "is not less than"}


def _value_text(text: str, value: Any, tp: Any, rule: str | None = None) -> str:
    """msgspec's complaint about ``value`` (of type ``tp``) as a sentence that starts with the value; ``rule``: what
    a pattern means, when not ``tp``'s own description."""
    shown = _shown(value)
    if re.fullmatch(r"Expected `[^`]+`(?:, got `[^`]+`)?", text):
        return f"{shown} is not {describe(tp)}"
    if text.startswith("Invalid enum value"):
        choices = _choices(tp)
        return f"{shown} is not one of {choices!r}" if choices is not None else f"{shown} is not {describe(tp)}"
    if text.startswith("Expected `str` matching regex"):
        described = rule or _description(tp)
        if described:
            return f"{shown} is refused: {described}"
        pattern = next((meta.pattern for meta in _metas(tp) if meta.pattern), None)
        return f"{shown} does not match {pattern!r}"
    length = _LENGTH.fullmatch(text)
    if length:
        bound = int(length["bound"])
        if length["op"] == ">=" and bound == 1:
            return f"{shown} should be non-empty"
        unit = "characters" if length["type"] == "str" else "entries" if length["type"] == "object" else "items"
        return f"{shown} has {'fewer' if length['op'] == '>=' else 'more'} than {bound} {unit}"
    limit = _BOUND.fullmatch(text)
    if limit:
        if isinstance(value, float) and math.isnan(value):
            return "NaN is not a number"
        return f"{shown} {_WORDS[limit['op']]} {float(limit['bound']):g}"
    if text == "Number out of range":
        return f"{shown} is out of range"
    return text  # our own words (a Struct's __post_init__), or a complaint this module does not know


def _shown(value: Any) -> str:
    """A value as a person wrote it in YAML or JSON, cut short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(tp: Any) -> str:
    """What a value of type ``tp`` is, for people: "a string", "a mapping", "'*' or a list" ..."""
    tp = _bare(tp)
    origin = typing.get_origin(tp)
    if _is_union(tp):
        return " or ".join(describe(member) for member in typing.get_args(tp) if member is not msgspec.UnsetType)
    if origin is typing.Literal:
        return " or ".join(repr(arg) for arg in typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(member.value) for member in tp)
    simple = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    if tp in simple:
        return simple[tp]
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
        return "a list"
    if origin is dict or tp is dict or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return "a mapping"
    return "a value of another kind"


# -- types along a path ------------------------------------------------------------------------------------


def _layers(tp: Any) -> list[Any]:
    """``tp``, then each type inside it down to its bare type: through its ``Annotated`` layers, and through a union
    with ``None`` or ``UnsetType`` when one type remains."""
    layers = [tp]
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif _is_union(tp) and len(rest := [member for member in typing.get_args(tp)
                                            if member not in (type(None), msgspec.UnsetType)]) == 1:
            tp = rest[0]
        else:
            return layers
        layers.append(tp)


def _bare(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` layers, and without ``None`` or ``UnsetType`` when one type remains."""
    return _layers(tp)[-1]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _member(tp: Any, kind: str) -> Any:
    """The member of a (possibly union) type that is a Struct, a list or a dict."""
    tp = _bare(tp)
    for member in (typing.get_args(tp) if _is_union(tp) else (tp,)):
        member = _bare(member)
        origin = typing.get_origin(member) or member
        if kind == "struct" and isinstance(member, type) and issubclass(member, msgspec.Struct):
            return member
        if kind == "list" and origin in (list, tuple):
            return member
        if kind == "dict" and origin is dict:
            return member
    return Any


@functools.cache
def _field_types(struct: Any) -> dict[str, Any]:
    """The type of each field of a Struct (``_member``'s; ``Any``: none known)."""
    return typing.get_type_hints(struct, include_extras=True) if struct is not Any else {}


def _args(tp: Any, count: int) -> tuple[Any, ...]:
    """The type arguments of ``tp`` (a list's item type, a dict's key and value types); ``Any`` each when unknown."""
    return typing.get_args(tp) or (Any,) * count


def _first_failing(entries: Any, tp: Any, by_value: bool) -> Any:
    """The first key whose value (or, ``by_value`` false, the key itself) does not convert to ``tp``."""
    for key, item in entries:
        try:
            msgspec.convert(item if by_value else key, tp)
        except msgspec.ValidationError:
            return key
    return None


def _metas(tp: Any) -> list[msgspec.Meta]:
    """The ``msgspec.Meta`` of ``tp``'s ``Annotated`` layers, outermost first, through an optional's union."""
    return [arg for layer in _layers(tp) if typing.get_origin(layer) is typing.Annotated
            for arg in typing.get_args(layer)[1:] if isinstance(arg, msgspec.Meta)]


def _description(tp: Any) -> str | None:
    return next((meta.description for meta in _metas(tp) if meta.description), None)


def _choices(tp: Any) -> list[Any] | None:
    tp = _bare(tp)
    if typing.get_origin(tp) is typing.Literal:
        return list(typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [member.value for member in tp]
    return None
