"""The JSON Schemas shipped in ``schemas/`` (generated from the format Structs), for users and
tools that validate a file without the gate; jsonschema is imported only by ``check_json``."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent.parent / "schemas"


def schema_path(name: str) -> Path:
    """The shipped schema file for ``name`` (manifest, suite, candidate, run, report ...)."""
    return SCHEMA_DIR / f"{name}.schema.json"


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The shipped schema ``name`` as data."""
    return json.loads(schema_path(name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def check_json(data: Any, name: str) -> None:
    """Raise ``jsonschema.ValidationError`` when ``data`` does not match the shipped schema ``name`` (the error
    jsonschema finds most relevant). Needs the ``jsonschema`` package, imported here and only here."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema(name)).iter_errors(data))
    if error is not None:
        raise error
