"""Suites: frozen cases loaded from ``*.suite.yaml`` or ``*.suite.jsonl``, validated and fingerprinted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from pytest_llmgate.model.case import Case
from pytest_llmgate.model.errors import SuiteError
from pytest_llmgate.model.fingerprint import fingerprint, value_sha256
from pytest_llmgate.model.vocab import Route
from pytest_llmgate.records.codec import read_bytes
from pytest_llmgate.records.convert import convert, explain
from pytest_llmgate.records.yaml_loader import load_yaml

JSONL_SUFFIX = ".suite.jsonl"
NO_CASES = "has no cases; a suite needs at least one case"
_ROUTE_OF = {route.value: route for route in Route}

#: What a case id is: it becomes part of a pytest node id (``suite.yaml::case_id[template_id]``).
CASE_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]|:(?!:))*$(?!\n)"


# gc=False: reading a 100,000-case suite converts as many cases, never part of a cycle; untracked by the collector
# they convert in half the time.
class SuiteCase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One case of a suite, as written: its id (unique across the experiment's suites), its labels and what the
    candidate is handed."""

    case_id: Annotated[str, Meta(
        pattern=CASE_ID_PATTERN,
        description="a case id starts with a letter or digit and holds only letters, digits and _ . - : (never "
                    "'::', which separates pytest node ids, and no line break)")]
    slice_name: Annotated[str, Meta(min_length=1, description="The slice of traffic the case stands for.")]
    evidence_state: Annotated[str, Meta(min_length=1, description="The evidence the case comes with (a category, "
                                                                  "never raw log text).")]
    expected_route: Annotated[Route, Meta(description="The frozen label: SERVE or ABSTAIN; never shown to the "
                                                      "candidate.")]
    source: Annotated[str, Meta(min_length=1, description="Where the case comes from (incident, holdout, ...).")]
    input: Annotated[dict[str, Any], Meta(description="Handed to the candidate (a question, evidence references); "
                                                      "records keep only its SHA-256.")] | UnsetType = UNSET


class SuiteFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A suite file, ``*.suite.yaml``: frozen cases; its fingerprint is SHA-256 over the cases as written (sorted by
    ``case_id``, keys sorted, no spaces). A ``*.suite.jsonl`` file holds one case per line instead."""

    cases: Annotated[list[SuiteCase], Meta(min_length=1, description="The cases; at least one.")]


class Suite(msgspec.Struct, frozen=True, kw_only=True):
    """A named suite file and its cases, with its 64-hex fingerprint."""

    name: str
    path: Path
    cases: tuple[Case, ...]
    fingerprint: str


def load_suite(name: str, path: Path) -> Suite:
    """Load, validate and fingerprint one suite file (YAML or JSON Lines).

    Every session reads the file itself: the fingerprint recorded is always that of the bytes on disk."""
    raw = read_bytes(path, SuiteError)
    cases, lines, input_line = read_cases(path, raw)
    hashes: list[str | None] = []
    for index, case in enumerate(cases):
        try:
            hashes.append(value_sha256(case["input"]) if "input" in case else None)
        except (TypeError, ValueError) as exc:
            raise SuiteError(path, input_line(index),
                             f"case {case['case_id']!r}: input is not JSON data ({exc})") from None
    return Suite(name=name, path=path, cases=_build_cases(name, path, cases, lines, hashes),
                 fingerprint=fingerprint(cases))


#: The labels whose values repeat from case to case (a few slices, evidence states, routes and sources).
_LABELS = ("slice_name", "evidence_state", "expected_route", "source")


def _build_cases(
    name: str, path: Path, written_cases: list[dict[str, Any]], lines: list[int | None], hashes: list[str | None]
) -> tuple[Case, ...]:
    cases: list[Case] = []
    first_line: dict[str, int | None] = {}
    labels: dict[str, str] = {}  # each label value once: a suite of 100,000 cases holds a handful, not 400,000
    for written, line, input_sha in zip(written_cases, lines, hashes, strict=True):
        for key in _LABELS:
            written[key] = labels.setdefault(written[key], written[key])
        case_id = written["case_id"]
        if case_id in first_line:
            raise SuiteError(path, line, f"duplicate case_id {case_id!r} (first on line {first_line[case_id]})")
        first_line[case_id] = line
        cases.append(
            Case(
                suite=name,
                case_id=case_id,
                slice_name=written["slice_name"],
                evidence_state=written["evidence_state"],
                expected_route=_ROUTE_OF[written["expected_route"]],
                source=written["source"],
                input_sha256=input_sha,
                line=line,
                written=written,
            )
        )
    return tuple(cases)


def read_cases(path: Path, raw: bytes) -> tuple[list[dict[str, Any]], list[int | None], Callable[[int], int | None]]:
    """Parse and validate a suite file: its cases as written, each case's line, and where a case's ``input`` is."""
    if path.name.endswith(JSONL_SUFFIX):
        return _read_jsonl(path, raw)
    return _read_yaml(path)


def _read_yaml(path: Path) -> tuple[list[dict[str, Any]], list[int | None], Callable[[int], int | None]]:
    document = load_yaml(path, SuiteError)
    data = document.data
    if isinstance(data, dict) and data.get("cases") == []:
        raise SuiteError(path, document.line_of(["cases"]), NO_CASES)
    convert(document, SuiteFile, SuiteError)  # validated by the definition; the cases are kept as written
    cases: list[dict[str, Any]] = data["cases"]
    lines = [document.line_of(["cases", index]) for index in range(len(cases))]
    return cases, lines, lambda index: document.line_of(["cases", index, "input"])


def _read_jsonl(path: Path, raw: bytes) -> tuple[list[dict[str, Any]], list[int | None], Callable[[int], int | None]]:
    cases: list[Any] = []
    lines: list[int | None] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(path, raw.count(b"\n", 0, exc.start) + 1, "is not UTF-8 text") from None
    loads = _JSON.decode
    # Lines end at "\n" only: U+2028, U+0085 and the like are characters a JSON string may hold as they are.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            case = loads(line)
        except _DuplicateJsonKey as exc:
            raise SuiteError(path, number, str(exc)) from None
        except ValueError as exc:
            raise SuiteError(path, number, f"not a JSON object: {exc}") from None
        except RecursionError:
            raise SuiteError(path, number, "not a JSON object: nested too deeply") from None
        cases.append(case)
        lines.append(number)
    if not cases:
        raise SuiteError(path, None, NO_CASES)
    try:
        msgspec.convert(cases, list[SuiteCase])  # all lines at once; an error names its line's index
    except msgspec.ValidationError as exc:
        problem = explain(exc, cases, list[SuiteCase])
        index = problem.location[0] if problem.location and isinstance(problem.location[0], int) else 0
        raise SuiteError(path, lines[index], problem.message(skip=1)) from None
    return cases, lines, lambda index: lines[index]


class _DuplicateJsonKey(Exception):
    """A key given twice in a JSON object; its message says which."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is refused, as YAML refuses it (json keeps the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateJsonKey(f"duplicate key {key!r} in a JSON object")
            seen.add(key)
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys)  # built once: json.loads(..., hook) builds one per call
