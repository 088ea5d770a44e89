"""Suites: frozen cases loaded from ``*.suite.yaml``, validated and fingerprinted."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._errors import SuiteError
from ._fingerprint import fingerprint, value_sha256
from ._schemas import check_document
from ._vocab import Route
from ._yaml import load_yaml


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
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
        view = {key: copy.deepcopy(value) for key, value in self.written.items() if key != "expected_route"}
        return MappingProxyType(view)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """A named suite file and its cases, with its 64-hex fingerprint."""

    name: str
    path: Path
    cases: tuple[Case, ...]
    fingerprint: str


def load_suite(name: str, path: Path) -> Suite:
    """Load, validate and fingerprint one suite file."""
    document = load_yaml(path, SuiteError)
    check_document(document, "suite", SuiteError)
    cases: list[Case] = []
    first_line: dict[str, int | None] = {}
    for index, written in enumerate(document.data["cases"]):
        line = document.line_of(["cases", index])
        case_id = written["case_id"]
        if case_id in first_line:
            raise SuiteError(
                path, document.line_of(["cases", index, "case_id"]),
                f"duplicate case_id {case_id!r} (first on line {first_line[case_id]})",
            )
        first_line[case_id] = line
        try:
            input_sha = value_sha256(written["input"]) if "input" in written else None
        except (TypeError, ValueError) as exc:
            raise SuiteError(
                path, document.line_of(["cases", index, "input"]), f"case {case_id!r}: input is not JSON data ({exc})"
            ) from None
        cases.append(
            Case(
                suite=name,
                case_id=case_id,
                slice_name=written["slice_name"],
                evidence_state=written["evidence_state"],
                expected_route=Route(written["expected_route"]),
                source=written["source"],
                input_sha256=input_sha,
                line=line,
                written=written,
            )
        )
    return Suite(name=name, path=path, cases=tuple(cases), fingerprint=fingerprint(document.data["cases"]))
