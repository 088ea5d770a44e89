"""Properties of suites, checked by hypothesis with a bounded number of examples (issue 18, issue 12).

Valid suites are accepted; the fingerprint does not depend on row order and changes with any label; YAML and
JSON Lines of the same cases give the same fingerprint; invalid input is one clean ``SuiteError``; the case
definition (what the gate reads) and the published suite schema (what users validate against) agree.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import msgspec
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st  # in the `test` extra
from jsonschema import Draft202012Validator

from pytest_llmgate import Suite, SuiteError, load_suite
from pytest_llmgate.records.schemas import schema
from pytest_llmgate.records.suite import SuiteCase

BOUNDED = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FILES = settings(BOUNDED, max_examples=100)

CASE_VALIDATOR = Draft202012Validator({"$ref": "#/$defs/SuiteCase", "$defs": schema("suite")["$defs"]})
FIELDS = ("case_id", "slice_name", "evidence_state", "expected_route", "source")
LABELS = ("slice_name", "evidence_state", "expected_route", "source")

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
segments = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=0, max_size=6)
case_ids = st.builds(lambda first, parts: first + ":".join(parts),
                     st.sampled_from(string.ascii_letters + string.digits),
                     st.lists(segments.filter(lambda s: s != ""), max_size=3).map(lambda parts: [""] + parts if parts else []))
labels = st.text(min_size=1, max_size=10)


@st.composite
def valid_cases(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(case_ids, min_size=1, max_size=6, unique=True))
    cases = []
    for case_id in ids:
        written: dict[str, Any] = {"case_id": case_id, "slice_name": draw(labels), "evidence_state": draw(labels),
                                   "expected_route": draw(st.sampled_from(["SERVE", "ABSTAIN"])), "source": draw(labels)}
        if draw(st.booleans()):
            written["input"] = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4))
        cases.append(written)
    return cases


def as_yaml(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"cases": cases}), encoding="utf-8")  # non-ASCII escaped: PyYAML emits U+0085 raw, a YAML line break
    return path


def as_jsonl(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    return path


# Anything a case might be: keys from the schema and others, values of every JSON type and near-misses.
near_values = (json_values | st.sampled_from(["SERVE", "ABSTAIN", "serve", "", " ", "r1\n", "a::b", "a:b", "-a", "a b"])
               | case_ids | case_ids.map(lambda s: s + "\n"))
case_like = st.dictionaries(st.sampled_from([*FIELDS, "input", "extra"]) | st.text(max_size=4), near_values, max_size=8)
case_like |= st.fixed_dictionaries(dict.fromkeys(FIELDS, near_values), optional={"input": json_values})
case_like |= json_values


def read_as_a_case(instance: Any) -> bool:
    try:
        msgspec.convert(instance, SuiteCase)
    except msgspec.ValidationError:
        return False
    return True


#: A case id either side of its pattern: a character, a place or a line break away from a valid one.
near_ids = st.builds(lambda before, case_id, after: before + case_id + after,
                     st.sampled_from(["", "-", "_", ":", "é", " "]), case_ids,
                     st.sampled_from(["", ":", "::", ":x", "/", " ", "\n", "\n\n", "é"]))


@st.composite
def near_misses(draw: st.DrawFn) -> dict[str, Any]:
    """A valid case as written, or with one change (a value swapped for a near value, a case id moved near its
    pattern's edge, a key dropped, a key added):
    instances either side of the line, where the two definitions could disagree."""
    written = draw(valid_cases())[0]
    change = draw(st.sampled_from(["none", "value", "id", "drop", "extra"]))
    if change == "id":
        written["case_id"] = draw(near_ids)
    elif change == "value":
        written[draw(st.sampled_from([*FIELDS, "input"]))] = draw(near_values)
    elif change == "drop":
        written.pop(draw(st.sampled_from([*FIELDS, "input"])), None)
    elif change == "extra":
        written[draw(st.text(max_size=6).filter(lambda key: key not in (*FIELDS, "input")))] = draw(json_values)
    return written


@BOUNDED
@given(near_ids)
def test_the_case_id_rule_is_the_published_schemas(case_id: str) -> None:
    written = {"case_id": case_id, "slice_name": "s", "evidence_state": "log", "expected_route": "SERVE", "source": "x"}
    assert read_as_a_case(written) == CASE_VALIDATOR.is_valid(written), case_id


@BOUNDED
@given(near_misses() | case_like)
def test_the_case_definition_and_the_published_schema_agree(instance: Any) -> None:
    assert read_as_a_case(instance) == CASE_VALIDATOR.is_valid(instance), instance


def test_the_agreement_is_checked_on_both_sides_of_the_line() -> None:
    """The instances above are accepted and refused alike by both: a valid case, and that case with each kind of
    change."""
    valid = {"case_id": "req_1", "slice_name": "s", "evidence_state": "log", "expected_route": "SERVE", "source": "x"}
    changed = [{**valid, "case_id": "a b"}, {**valid, "slice_name": ""}, {**valid, "expected_route": "serve"},
               {k: v for k, v in valid.items() if k != "source"}, {**valid, "extra": 1}]
    assert read_as_a_case(valid) and CASE_VALIDATOR.is_valid(valid)
    assert [(read_as_a_case(c), CASE_VALIDATOR.is_valid(c)) for c in changed] == [(False, False)] * len(changed)


@BOUNDED
@given(valid_cases())
def test_valid_cases_are_read_and_match_the_published_schema(cases: list[dict[str, Any]]) -> None:
    for written in cases:
        assert CASE_VALIDATOR.is_valid(written) and read_as_a_case(written)


@FILES
@given(valid_cases(), st.randoms(use_true_random=False))
def test_valid_suites_load_in_both_forms_with_one_order_free_fingerprint(
    tmp_path: Path, cases: list[dict[str, Any]], random: Any
) -> None:
    from_yaml = load_suite("s", as_yaml(tmp_path / "s.suite.yaml", cases))
    assert isinstance(from_yaml, Suite) and [c.case_id for c in from_yaml.cases] == [c["case_id"] for c in cases]
    shuffled = cases[:]
    random.shuffle(shuffled)
    from_jsonl = load_suite("s", as_jsonl(tmp_path / "s.suite.jsonl", shuffled))
    assert from_jsonl.fingerprint == from_yaml.fingerprint
    assert [dict(c.written) for c in from_yaml.cases] == cases


@FILES
@given(valid_cases(), st.data())
def test_the_fingerprint_changes_with_any_label(tmp_path: Path, cases: list[dict[str, Any]], data: st.DataObject) -> None:
    before = load_suite("s", as_jsonl(tmp_path / "s.suite.jsonl", cases)).fingerprint
    index = data.draw(st.integers(0, len(cases) - 1))
    field = data.draw(st.sampled_from(LABELS))
    changed = [dict(c) for c in cases]
    old = changed[index][field]
    if field == "expected_route":
        changed[index][field] = "ABSTAIN" if old == "SERVE" else "SERVE"
    else:
        changed[index][field] = data.draw(labels.filter(lambda value: value != old))
    assert load_suite("s", as_jsonl(tmp_path / "s.suite.jsonl", changed)).fingerprint != before


def load_or_clean_error(path: Path) -> None:
    try:
        load_suite("s", path)
    except SuiteError as exc:
        assert exc.path == path and exc.problem and "Traceback" not in exc.problem


yaml_ish = st.text(alphabet="cases:- []{}&*!|>'\"#\n \tabc01_.\\", max_size=120)


@FILES
@given(st.one_of(yaml_ish.map(str.encode), st.binary(max_size=80), yaml_ish.map(lambda t: ("cases:\n" + t).encode())))
def test_any_yaml_bytes_load_or_give_one_clean_suite_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "s.suite.yaml"
    path.write_bytes(raw)
    load_or_clean_error(path)


@FILES
@given(valid_cases(), st.data())
def test_a_mangled_suite_gives_one_clean_suite_error(tmp_path: Path, cases: list[dict[str, Any]], data: st.DataObject) -> None:
    for suffix, write in ((".suite.yaml", as_yaml), (".suite.jsonl", as_jsonl)):
        path = write(tmp_path / f"s{suffix}", cases)
        raw = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at:at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
        path.write_bytes(bytes(raw))
        load_or_clean_error(path)


@FILES
@given(st.lists(case_like, min_size=1, max_size=4))
def test_any_jsonl_objects_load_or_give_one_clean_suite_error(tmp_path: Path, objects: list[Any]) -> None:
    load_or_clean_error(as_jsonl(tmp_path / "s.suite.jsonl", objects))
