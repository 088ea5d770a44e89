"""Suites as YAML or JSON Lines: one fingerprint for both, clear errors with line numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmgate import SuiteError, load_suite

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
         ":1: missing required key 'source'"),
        (['{"case_id": "a", "slice_name": "s", "expected_route": "SERVE"}'],
         ":1: missing required keys 'evidence_state' and 'source'"),
        (['{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE", "source": "t", "x": 1}'],
         ":1: unknown key 'x'"),
        (['{"case_id": "a", "slice_name": "s", "evidence_state": "e", "expected_route": "SERVE", "source": "t"}'] * 2,
         ":2: duplicate case_id 'a' (first on line 1)"),
        (['[1, 2]'], ":1: [1, 2] is not a mapping"),
    ],
)
def test_a_bad_jsonl_line_is_an_error_naming_its_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "bad.suite.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SuiteError) as info:
        load_suite("bad", path)
    assert f"bad.suite.jsonl{message}" in str(info.value)


@pytest.mark.slow
def test_a_jsonl_experiment_runs_end_to_end(pytester: pytest.Pytester) -> None:
    directory = pytester.mkdir("exp")
    write_yaml(directory / "llmgate.yaml", {"experiment": "exp", "policy_id": "p", "evidence_version": "e",
                                            "evaluator_version": "v", "suites": {"main": "main.suite.jsonl"}})
    as_jsonl(directory / "main.suite.jsonl", [case("a", "log", "SERVE"), case("b", "none", "ABSTAIN")])
    write_yaml(directory / "templates" / "good.yaml",
               {"template_id": "good", "provider": "evidence_policy", "serve_evidence": ["log"]})
    for _ in range(2):
        result = pytester.runpytest("exp", "--llmgate-candidate=good", "-n", "2")
        result.assert_outcomes(passed=2 + 1)  # + good's run item
    assert runs_by_template(pytester.path / ".llmgate")["good"]["status"] == "ELIGIBLE_FOR_CANARY_REVIEW"


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
