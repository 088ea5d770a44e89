"""Safe prompt rendering: ``{{ field }}`` and ``{{ input.a.b }}`` placeholders filled from a case, nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")


class MissingField(KeyError):
    """A placeholder names a field the case does not have."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def render(template: str, case: Mapping[str, Any]) -> str:
    """Replace each ``{{ dotted.name }}`` with the case's value: text as is, anything else as JSON.

    Only mapping look-ups happen: no attribute access, no calls, no format specs. A missing field raises
    ``MissingField``; it never renders as an empty string.
    """

    def value(match: re.Match[str]) -> str:
        found: Any = case
        for part in match.group(1).split("."):
            if not isinstance(found, Mapping) or part not in found:
                raise MissingField(match.group(1))
            found = found[part]
        return found if isinstance(found, str) else json.dumps(found, sort_keys=True)

    return PLACEHOLDER.sub(value, template)
