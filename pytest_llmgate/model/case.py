"""A frozen case as the gate judges it: its labels, where it was written, and what a candidate may see."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from pytest_llmgate.model.vocab import Route

_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


class Case(msgspec.Struct, frozen=True, kw_only=True):
    """One frozen case: its labels, where it was written, and its mapping as written."""

    suite: str
    case_id: str
    slice_name: str
    evidence_state: str
    expected_route: Route
    source: str
    input_sha256: str | None
    line: int | None
    written: Mapping[str, Any]

    def candidate_view(self) -> Mapping[str, Any]:
        """What a candidate may see: the case without its expected route, as a fresh copy."""
        view = {key: value if type(value) in _IMMUTABLE else copy.deepcopy(value)
                for key, value in self.written.items() if key != "expected_route"}
        return MappingProxyType(view)
