"""Suites: frozen cases loaded from ``*.suite.yaml`` or ``*.suite.jsonl``, validated and fingerprinted."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec

from ._errors import SuiteError
from ._fingerprint import fingerprint, value_sha256
from ._provenance import llmgate_version
from ._schemas import check_document, check_item, plain_check, schema
from ._store import write_replacing
from ._vocab import Route
from ._yaml import load_yaml

JSONL_SUFFIX = ".suite.jsonl"
NO_CASES = "has no cases; a suite needs at least one case"
_ROUTES = {route.value: route for route in Route}


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


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
        view = {key: value if type(value) in _IMMUTABLE else copy.deepcopy(value)
                for key, value in self.written.items() if key != "expected_route"}
        return MappingProxyType(view)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """A named suite file and its cases, with its 64-hex fingerprint."""

    name: str
    path: Path
    cases: tuple[Case, ...]
    fingerprint: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Parsed:
    """A suite file's validated cases, their lines and input hashes, and its fingerprint."""

    cases: list[dict[str, Any]]
    lines: list[int | None]
    input_sha256: list[str | None]
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        """What the cache keeps: the cases and their lines, and the fingerprint they must give again."""
        return {"cases": self.cases, "lines": self.lines, "fingerprint": self.fingerprint}


class SuiteCache:
    """Parsed suites keyed by the file's bytes and the plugin's version, so an unchanged suite is not re-parsed.

    A changed byte, or another version of the plugin, is another key. An entry is trusted for nothing that can be
    checked cheaply: its cases must pass the schema's fast check, and the input hashes and the fingerprint are
    computed again from the cases it holds, so a run's records always carry the fingerprint of the cases that were
    evaluated. An entry whose cases do not give the fingerprint it was written with (a label flipped by hand, a
    truncated file) is ignored and written anew. An entry rewritten consistently is not detected here: its cases
    then have another fingerprint than the file's, which the lock and ``llmgate fingerprint`` show. Where the cache
    folder is shared or restored from elsewhere, turn the cache off (``--llmgate-suite-cache=off``). The cache
    holds the cases as written, raw ``input`` included. Entries are written atomically.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def key(raw: bytes, kind: str) -> str:
        digest = hashlib.sha256(f"{llmgate_version()}\0{kind}\0".encode())
        digest.update(raw)
        return digest.hexdigest()

    def get(self, key: str) -> _Parsed | None:
        try:
            data = msgspec.json.decode((self.directory / f"{key}.json").read_bytes())  # plain JSON data, in C
            cases, lines, stored = data["cases"], data["lines"], data["fingerprint"]
        except (OSError, msgspec.DecodeError, KeyError, TypeError):
            return None
        if not (type(cases) is list and cases and type(lines) is list and len(lines) == len(cases)
                and all(line is None or type(line) is int for line in lines) and all(map(plainly_valid, cases))):
            return None
        try:
            parsed = _derive(cases, lines)
        except (TypeError, ValueError, RecursionError):
            return None
        return parsed if parsed.fingerprint == stored else None

    def put(self, key: str, parsed: _Parsed) -> None:
        try:
            write_replacing(self.directory / f"{key}.json", json.dumps(parsed.to_json()).encode())
            write_replacing(self.directory / f"{key}.fingerprint", parsed.fingerprint.encode())
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs speed
            pass

    def fingerprint(self, path: Path) -> str | None:
        """The cached fingerprint of an unchanged suite file, without parsing it (None: not cached).

        Unchecked, for a quick look only: records take the fingerprint from the cases loaded (``load_suite``).
        """
        raw = path.read_bytes()
        try:
            return (self.directory / f"{self.key(raw, _kind(path))}.fingerprint").read_text(encoding="ascii")
        except OSError:
            return None


def _kind(path: Path) -> str:
    return "jsonl" if path.name.endswith(JSONL_SUFFIX) else "yaml"


def load_suite(name: str, path: Path, cache: SuiteCache | None = None) -> Suite:
    """Load, validate and fingerprint one suite file (YAML or JSON Lines)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    key = SuiteCache.key(raw, _kind(path)) if cache is not None else ""
    parsed = cache.get(key) if cache is not None else None
    if parsed is None:
        parsed = _parse(path, raw)
        if cache is not None:
            cache.put(key, parsed)
    return Suite(name=name, path=path, cases=_build_cases(name, path, parsed), fingerprint=parsed.fingerprint)


#: The labels whose values repeat from case to case (a few slices, evidence states, routes and sources).
_LABELS = ("slice_name", "evidence_state", "expected_route", "source")


def _build_cases(name: str, path: Path, parsed: _Parsed) -> tuple[Case, ...]:
    cases: list[Case] = []
    first_line: dict[str, int | None] = {}
    labels: dict[str, str] = {}  # each label value once: a suite of 100,000 cases holds a handful, not 400,000
    for written, line, input_sha in zip(parsed.cases, parsed.lines, parsed.input_sha256, strict=True):
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
                expected_route=_ROUTES[written["expected_route"]],
                source=written["source"],
                input_sha256=input_sha,
                line=line,
                written=written,
            )
        )
    return tuple(cases)


def read_cases(path: Path, raw: bytes) -> tuple[list[dict[str, Any]], list[int | None], Callable[[int], int | None]]:
    """Parse and validate a suite file: its cases, each case's line, and where a case's ``input`` is written."""
    if _kind(path) == "jsonl":
        return _read_jsonl(path, raw)
    return _read_yaml(path)


def _read_yaml(path: Path) -> tuple[list[dict[str, Any]], list[int | None], Callable[[int], int | None]]:
    document = load_yaml(path, SuiteError)
    data = document.data
    if isinstance(data, dict) and data.get("cases") == []:
        raise SuiteError(path, document.line_of(["cases"]), NO_CASES)
    if not (isinstance(data, dict) and data.keys() == {"cases"} and isinstance(data["cases"], list)
            and all(map(plainly_valid, data["cases"]))):
        check_document(document, "suite", SuiteError)  # the schema names what is wrong, and where
    cases = data["cases"]
    lines = [document.line_of(["cases", index]) for index in range(len(cases))]
    return cases, lines, lambda index: document.line_of(["cases", index, "input"])


def _read_jsonl(path: Path, raw: bytes) -> tuple[list[dict[str, Any]], list[int | None], Callable[[int], int | None]]:
    cases: list[dict[str, Any]] = []
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
            raise SuiteError(path, number, f"duplicate key {exc.key!r} in a JSON object") from None
        except ValueError as exc:
            raise SuiteError(path, number, f"not a JSON object: {exc}") from None
        except RecursionError:
            raise SuiteError(path, number, "not a JSON object: nested too deeply") from None
        if not plainly_valid(case):
            check_item(case, _CASE_SCHEMA, "suite", path, number, SuiteError)
        cases.append(case)
        lines.append(number)
    if not cases:
        raise SuiteError(path, None, NO_CASES)
    return cases, lines, lambda index: lines[index]


class _DuplicateJsonKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as a dict; a key given twice is refused, as YAML refuses it (json keeps the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateJsonKey(key)
            seen.add(key)
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys)  # built once: json.loads(..., hook) builds one per call


def _parse(path: Path, raw: bytes) -> _Parsed:
    cases, lines, input_line = read_cases(path, raw)
    try:
        return _derive(cases, lines)
    except _BadInput as exc:
        case = cases[exc.index]
        raise SuiteError(path, input_line(exc.index), f"case {case['case_id']!r}: input is not JSON data ({exc})") from None


class _BadInput(ValueError):
    def __init__(self, index: int, problem: Exception) -> None:
        super().__init__(str(problem))
        self.index = index


def _derive(cases: list[dict[str, Any]], lines: list[int | None]) -> _Parsed:
    """The input hashes and the fingerprint of validated cases: computed from the cases, never taken on trust."""
    hashes: list[str | None] = []
    for index, case in enumerate(cases):
        if "input" not in case:
            hashes.append(None)
            continue
        try:
            hashes.append(value_sha256(case["input"]))
        except (TypeError, ValueError) as exc:
            raise _BadInput(index, exc) from None
    return _Parsed(cases=cases, lines=lines, input_sha256=hashes, fingerprint=fingerprint(cases))


_CASE_SCHEMA: dict[str, Any] = schema("suite")["$defs"]["case"]
#: The suite schema's case_id pattern, matched as jsonschema matches patterns (re.search).
CASE_ID_PATTERN = re.compile(_CASE_SCHEMA["properties"]["case_id"]["pattern"])
#: The fast path of case validation: it accepts only cases the suite schema accepts, anything else goes to the
#: schema for a precise error. Built from the schema's case definition, so there is no second copy to keep in step.
plainly_valid: Callable[[Any], bool] = plain_check(_CASE_SCHEMA)
