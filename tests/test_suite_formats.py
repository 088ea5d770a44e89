"""Suites as YAML or JSON Lines: one fingerprint for both, clear errors with line numbers, and the parsed-suite cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pytest_llmgate import SuiteError, load_suite
from pytest_llmgate._schemas import validator
from pytest_llmgate._suite import CASE_ID_PATTERN, SuiteCache, plainly_valid

from .conftest import EXAMPLE, case, runs_by_template, write_yaml


def as_jsonl(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def test_one_suite_in_both_forms_has_one_fingerprint(tmp_path: Path) -> None:
    yaml_suite = load_suite("holdout", EXAMPLE / "holdout.suite.yaml")
    cases = [dict(c.written) for c in yaml_suite.cases]
    jsonl_suite = load_suite("holdout", as_jsonl(tmp_path / "holdout.suite.jsonl", cases[::-1]))
    assert jsonl_suite.fingerprint == yaml_suite.fingerprint
    assert [c.case_id for c in jsonl_suite.cases] == [c.case_id for c in yaml_suite.cases][::-1]
    assert [c.line for c in jsonl_suite.cases] == [1, 2]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE", "source": "t"}',
          '{"case_id": "b", "slice_name": "s",'], ":2: not a JSON object: Expecting"),
        (['', '{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "NOPE", "source": "t"}'],
         ":2: expected_route: 'NOPE' is not one of ['SERVE', 'ABSTAIN']"),
        (['{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE"}'],
         ":1: 'source' is a required property"),
        (['{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE", "source": "t", "x": 1}'],
         ":1: unknown key 'x'"),
        (['{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE", "source": "t"}'] * 2,
         ":2: duplicate case_id 'a' (first on line 1)"),
        (['[1, 2]'], ":1: [1, 2] is not of type 'object'"),
    ],
)
def test_a_bad_jsonl_line_is_an_error_naming_its_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "bad.suite.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite("bad", path)
    assert f"bad.suite.jsonl{message}" in str(info.value)


VARIANTS: list[Any] = [
    case("ok", "e", "SERVE"),
    case("ok", "e", "ABSTAIN", input={"q": "x"}),
    case("", "e", "SERVE"),
    case("-bad", "e", "SERVE"),
    case("ok", "", "SERVE"),
    case("ok", "e", "serve"),
    case("ok", "e", "SERVE", input="text"),
    case("ok", "e", "SERVE", extra=1),
    {k: v for k, v in case("ok", "e", "SERVE").items() if k != "source"},
    dict(case("ok", "e", "SERVE"), slice_name=3),
    dict(case("ok", "e", "SERVE"), expected_route=["SERVE"]),
    dict(case("ok", "e", "SERVE"), case_id="a b"),
    "not a mapping",
    None,
]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_fast_case_check_accepts_only_what_the_schema_accepts(variant: Any) -> None:
    schema = validator("suite").schema
    case_validator = Draft202012Validator({**schema["$defs"]["case"], "$defs": schema["$defs"]})
    assert plainly_valid(variant) == case_validator.is_valid(variant)


def test_the_fast_check_uses_the_schema_pattern() -> None:
    assert CASE_ID_PATTERN.pattern == validator("suite").schema["$defs"]["case"]["properties"]["case_id"]["pattern"]


def test_an_unchanged_suite_is_served_from_the_cache_and_a_changed_byte_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(tmp_path / "s.suite.yaml", {"cases": [case("a", "e", "SERVE"), case("b", "f", "ABSTAIN")]})
    cache = SuiteCache(tmp_path / "cache")
    first = load_suite("s", path, cache)
    assert cache.fingerprint(path) == first.fingerprint

    def no_parsing(*args: object) -> None:
        raise AssertionError("the suite was parsed again")

    monkeypatch.setattr("pytest_llmgate._suite.read_cases", no_parsing)
    again = load_suite("s", path, cache)
    assert again == first
    monkeypatch.undo()

    path.write_text(path.read_text().replace("ABSTAIN", "SERVE"))
    changed = load_suite("s", path, cache)
    assert changed.fingerprint != first.fingerprint
    assert changed.cases[1].expected_route.value == "SERVE"
    assert cache.fingerprint(path) == changed.fingerprint


def test_a_corrupt_cache_entry_is_ignored(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "s.suite.yaml", {"cases": [case("a", "e", "SERVE")]})
    cache = SuiteCache(tmp_path / "cache")
    expected = load_suite("s", path, cache)
    for entry in (tmp_path / "cache").glob("*.json"):
        entry.write_text("{truncated")
    assert load_suite("s", path, cache) == expected


def test_a_jsonl_experiment_runs_end_to_end_and_fills_the_cache(pytester: pytest.Pytester) -> None:
    directory = pytester.mkdir("exp")
    write_yaml(directory / "llmgate.yaml", {"experiment": "exp", "policy_id": "p", "evidence_version": "e",
                                            "evaluator_version": "v", "suites": {"main": "main.suite.jsonl"}})
    as_jsonl(directory / "main.suite.jsonl", [case("a", "log", "SERVE"), case("b", "none", "ABSTAIN")])
    write_yaml(directory / "templates" / "good.yaml",
               {"template_id": "good", "provider": "evidence_policy", "serve_evidence": ["log"]})
    for _ in range(2):
        result = pytester.runpytest("exp", "--llmgate-candidate=good", "-n", "2")
        result.assert_outcomes(passed=2)
    assert runs_by_template(pytester.path / ".llmgate")["good"]["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"
    assert list((pytester.path / ".pytest_cache" / "d" / "llmgate-suites").glob("*.fingerprint"))


def test_a_candidate_view_hides_the_label_and_is_a_fresh_copy_of_nested_input(tmp_path: Path) -> None:
    written = case("c1", "no_source", "ABSTAIN", input={"question": "why?", "logs": ["a", "b"]})
    suite = load_suite("s", as_jsonl(tmp_path / "s.suite.jsonl", [written]))
    (only,) = suite.cases
    view = only.candidate_view()
    assert "expected_route" not in view
    assert view["case_id"] == "c1" and view["input"] == {"question": "why?", "logs": ["a", "b"]}
    with pytest.raises(TypeError):
        view["case_id"] = "other"  # type: ignore[index]
    view["input"]["logs"].append("changed by a candidate")
    view["input"]["question"] = "changed"
    assert only.written["input"] == {"question": "why?", "logs": ["a", "b"]}
    assert only.candidate_view()["input"] == {"question": "why?", "logs": ["a", "b"]}
