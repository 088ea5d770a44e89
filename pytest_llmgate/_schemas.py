"""The JSON Schemas shipped in ``schemas/``, and validation with errors that name a line.

Every check runs the exact fast validator (``_fastcheck``) first; jsonschema is imported and asked only when that
does not say VALID: to explain an error with its line, or to decide what the fast validator does not know.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import LlmgateError
from ._fastcheck import VALID, Check, compile_schema
from ._yaml import Document

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_path(name: str) -> Path:
    """The shipped schema file for ``name`` (manifest, suite, candidate, run, report)."""
    return SCHEMA_DIR / f"{name}.schema.json"


@functools.lru_cache(maxsize=None)
def schema(name: str) -> dict[str, Any]:
    """The shipped schema ``name`` as data."""
    return json.loads(schema_path(name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # only when the fast check cannot say VALID

    return Draft202012Validator(schema(name))


@functools.lru_cache(maxsize=None)
def fast_check(name: str) -> Check:
    """The exact fast validator for schema ``name`` (see ``_fastcheck``)."""
    return compile_schema(schema(name))


def _best_error(checker: Draft202012Validator, data: Any) -> ValidationError | None:
    from jsonschema.exceptions import best_match

    return best_match(checker.iter_errors(data))


def check_json(data: Any, name: str) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` does not match schema ``name``."""
    if fast_check(name)(data) == VALID:
        return
    error = _best_error(validator(name), data)
    if error is not None:
        raise error


def check_document(document: Document, name: str, error: type[LlmgateError]) -> None:
    """Validate a parsed file against schema ``name``; raise ``error`` at the offending line."""
    if fast_check(name)(document.data) == VALID:
        return
    _explain(document, validator(name), error)


def check_document_against(document: Document, fragment: Mapping[str, Any], error: type[LlmgateError]) -> None:
    """Validate a parsed file against ``fragment`` (a schema built in code: a provider's settings, say)."""
    if compile_schema(fragment)(document.data) == VALID:
        return
    from jsonschema import Draft202012Validator

    _explain(document, Draft202012Validator(fragment), error)


def _explain(document: Document, checker: Draft202012Validator, error: type[LlmgateError]) -> None:
    found = _best_error(checker, document.data)
    if found is None:
        return
    location = list(found.absolute_path)
    extra = _unexpected_keys(found)
    if extra:
        key = extra[0]
        raise error(
            document.path,
            document.line_of([*location, key]),
            f"{_describe(location, 'unknown key')} {key!r} (allowed: {', '.join(_allowed_keys(found))})",
        )
    message = f"{_describe(location)}{_message(found)}"
    if found.validator == "required" and isinstance(found.instance, Mapping):
        message += _misspelt(found, lambda key: document.line_of([*location, key]))
    raise error(document.path, document.line_of(location), message)


def _misspelt(found: ValidationError, line_of: Any) -> str:
    """For a missing required key: the unknown keys written beside it, which is where a typo usually is."""
    schema = found.schema if isinstance(found.schema, Mapping) else {}
    known = set(schema.get("properties", {}))
    unknown = [key for key in found.instance if isinstance(key, str) and key not in known]
    if not unknown:
        return ""
    missing = [key for key in schema.get("required", ()) if key not in found.instance]
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, missing, n=1)
        line = line_of(key)
        where = f" on line {line}" if line else ""
        parts.append(f"unknown key {key!r}{where}" + (f", a misspelling of {close[0]!r}?" if close else ""))
    return f" ({'; '.join(parts)})"


def check_item(
    instance: Any, subschema: Mapping[str, Any], name: str, path: Path, line: int | None, error: type[LlmgateError]
) -> None:
    """Validate one item (a JSON Lines case, say) against a part of schema ``name``; raise ``error`` at ``line``."""
    if compile_schema(subschema, root=schema(name))(instance) == VALID:
        return
    from jsonschema import Draft202012Validator

    found = _best_error(Draft202012Validator({**subschema, "$defs": schema(name).get("$defs", {})}), instance)
    if found is None:
        return
    location = list(found.absolute_path)
    extra = _unexpected_keys(found)
    if extra:
        raise error(path, line, f"{_describe(location, 'unknown key')} {extra[0]!r} (allowed: {', '.join(_allowed_keys(found))})")
    raise error(path, line, f"{_describe(location)}{_message(found)}")


def _message(found: ValidationError) -> str:
    """jsonschema's message, or for a pattern that says what it means in a ``description``, that description."""
    described = found.schema.get("description") if isinstance(found.schema, Mapping) else None
    if found.validator == "pattern" and described:
        return f"{found.instance!r} is refused: {described}"
    return str(found.message)


def _unexpected_keys(found: ValidationError) -> list[str]:
    if found.validator != "additionalProperties" or not isinstance(found.instance, Mapping):
        return []
    schema = found.schema if isinstance(found.schema, Mapping) else {}
    known = set(schema.get("properties", {}))
    return sorted(k for k in found.instance if k not in known)


def _allowed_keys(found: ValidationError) -> Iterable[str]:
    """The keys a schema allows; a property marked ``"x-refused": true`` is known only to be refused with a reason
    by its owner's own check, and is not listed."""
    schema = found.schema if isinstance(found.schema, Mapping) else {}
    return [key for key, sub in schema.get("properties", {}).items()
            if not (isinstance(sub, Mapping) and sub.get("x-refused"))]


def _describe(location: list[str | int], noun: str = "") -> str:
    where = ""
    for part in location:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if noun:
        return f"{where}: {noun}" if where else noun
    return f"{where}: " if where else ""


#: JSON Schema types as the exact Python types ``json`` and safe YAML produce (bool is not an integer here).
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "object": (dict,), "array": (list,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,), "number": (int, float),
}
_ANNOTATIONS = frozenset({"description", "title", "$comment"})


def plain_check(subschema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A fast check built from a flat object schema: it accepts only what the schema accepts, never more.

    It knows ``type``, ``required``, ``additionalProperties: false`` and, per property, ``type``, ``enum``,
    ``minLength``, ``maxLength`` and ``pattern``; it may refuse what the schema would accept (the schema then
    decides). A keyword it does not know raises ``ValueError`` when it is built, so the check cannot drift from
    the schema: whoever adds a keyword to the schema teaches it here too, or the tests fail.
    """
    _only(subschema, {"type", "required", "additionalProperties", "properties"})
    if subschema.get("type") != "object" or subschema.get("additionalProperties") is not False:
        raise ValueError("plain_check: only a closed object schema (additionalProperties: false) is supported")
    properties: Mapping[str, Mapping[str, Any]] = subschema.get("properties", {})
    required = frozenset(subschema.get("required", ()))
    namespace: dict[str, Any] = {"REQUIRED": required, "ALLOWED": frozenset(properties)}
    # One straight-line function, written from the schema once: a per-case call costs about what a hand-written
    # check does (a closure per keyword costs several times more, and this runs once per case of every suite).
    body = ["def check(instance):",
            "    if type(instance) is not dict or not (REQUIRED <= instance.keys() <= ALLOWED):",
            "        return False"]
    for index, (key, sub) in enumerate(properties.items()):
        condition = _value_condition(key, sub, index, namespace)
        if condition is None:
            continue
        if key in required:
            body += [f"    value = instance[{key!r}]", f"    if not ({condition}):", "        return False"]
        else:
            body += [f"    if {key!r} in instance:", f"        value = instance[{key!r}]",
                     f"        if not ({condition}):", "            return False"]
    body.append("    return True")
    exec("\n".join(body), namespace)  # noqa: S102 - code generated from our own shipped schema, no user input
    check: Callable[[Any], bool] = namespace["check"]
    return check


def _value_condition(key: str, sub: Mapping[str, Any], index: int, namespace: dict[str, Any]) -> str | None:
    """A Python expression over ``value`` that holds only when ``sub`` accepts it (None: it accepts anything)."""
    _only(sub, {"type", "enum", "minLength", "maxLength", "pattern"}, key)
    parts: list[str] = []
    is_text = False
    if "type" in sub:
        types = tuple(t for name in ([sub["type"]] if isinstance(sub["type"], str) else sub["type"]) for t in _TYPES[name])
        namespace[f"TYPES_{index}"] = types
        is_text = types == (str,)
        parts.append("type(value) is str" if is_text else f"type(value) in TYPES_{index}")
    if "enum" in sub:
        if all(type(member) is str for member in sub["enum"]):  # a set look-up (a str never equals another type)
            namespace[f"ENUM_{index}"] = frozenset(sub["enum"])
            parts.append(f"type(value) is str and value in ENUM_{index}")
        else:
            namespace[f"ENUM_{index}"] = tuple((type(member), member) for member in sub["enum"])
            parts.append(f"any(type(value) is kind and value == member for kind, member in ENUM_{index})")
    text: list[str] = []
    if "minLength" in sub:
        text.append(f"len(value) >= {int(sub['minLength'])}")
    if "maxLength" in sub:
        text.append(f"len(value) <= {int(sub['maxLength'])}")
    if "pattern" in sub:
        namespace[f"SEARCH_{index}"] = re.compile(sub["pattern"]).search  # jsonschema uses re.search too
        text.append(f"SEARCH_{index}(value) is not None")
    if text:
        # These keywords apply to strings only: a value of another type passes them in the schema, and so here.
        parts.append(" and ".join(text) if is_text else f"(type(value) is not str or ({' and '.join(text)}))")
    return " and ".join(parts) if parts else None


def _only(sub: Mapping[str, Any], known: set[str], key: str = "") -> None:
    unknown = sorted(sub.keys() - known - _ANNOTATIONS)
    if unknown:
        where = f" (property {key!r})" if key else ""
        raise ValueError(f"plain_check: schema keyword {unknown[0]!r}{where} is not supported; add it here")
