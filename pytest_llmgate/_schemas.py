"""The JSON Schemas shipped in ``schemas/``, and validation with errors that name a line."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ._errors import LlmgateError
from ._yaml import Document

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
    return Draft202012Validator(schema(name))


def check_json(data: Any, name: str) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` does not match schema ``name``."""
    error = best_match(validator(name).iter_errors(data))
    if error is not None:
        raise error


def check_document(document: Document, name: str, error: type[LlmgateError]) -> None:
    """Validate a parsed file against schema ``name``; raise ``error`` at the offending line."""
    check_document_against(document, validator(name), error)


def check_document_against(document: Document, checker: Draft202012Validator, error: type[LlmgateError]) -> None:
    """Validate a parsed file with ``checker`` (a schema built in code: a provider's settings, say)."""
    found = best_match(checker.iter_errors(document.data))
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
    raise error(document.path, document.line_of(location), f"{_describe(location)}{found.message}")


def check_item(
    instance: Any, subschema: Mapping[str, Any], name: str, path: Path, line: int | None, error: type[LlmgateError]
) -> None:
    """Validate one item (a JSON Lines case, say) against a part of schema ``name``; raise ``error`` at ``line``."""
    found = best_match(
        Draft202012Validator({**subschema, "$defs": schema(name).get("$defs", {})}).iter_errors(instance)
    )
    if found is None:
        return
    location = list(found.absolute_path)
    extra = _unexpected_keys(found)
    if extra:
        raise error(path, line, f"{_describe(location, 'unknown key')} {extra[0]!r} (allowed: {', '.join(_allowed_keys(found))})")
    raise error(path, line, f"{_describe(location)}{found.message}")


def _unexpected_keys(found: ValidationError) -> list[str]:
    if found.validator != "additionalProperties" or not isinstance(found.instance, Mapping):
        return []
    allowed = set(_allowed_keys(found))
    return sorted(k for k in found.instance if k not in allowed)


def _allowed_keys(found: ValidationError) -> Iterable[str]:
    schema = found.schema if isinstance(found.schema, Mapping) else {}
    return list(schema.get("properties", {}))


def _describe(location: list[str | int], noun: str = "") -> str:
    where = ""
    for part in location:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    if noun:
        return f"{where}: {noun}" if where else noun
    return f"{where}: " if where else ""
