"""The shipped JSON Schemas are valid, and name the same vocabularies as the code."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from pytest_llmgate import DecisionStatus, Outcome, Route, RunStatus, schema_path

NAMES = ["manifest", "suite", "candidate", "run", "report"]


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(json.loads(schema_path(name).read_text()))


def test_vocabularies_match_the_code() -> None:
    run = json.loads(schema_path("run").read_text())
    report = json.loads(schema_path("report").read_text())
    suite = json.loads(schema_path("suite").read_text())
    assert run["properties"]["status"]["enum"] == [s.value for s in RunStatus]
    assert run["$defs"]["case"]["properties"]["outcome"]["enum"] == [o.value for o in Outcome]
    assert report["$defs"]["experiment"]["properties"]["decision_status"]["enum"] == [d.value for d in DecisionStatus]
    assert suite["$defs"]["case"]["properties"]["expected_route"]["enum"] == [r.value for r in Route]
