"""Fingerprints: the SPEC's numbers, row order, and sensitivity to every field."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from pytest_llmgate import canonical_json, fingerprint, load_experiment, short

from .conftest import EXAMPLE

CASES = [
    {"case_id": "req_205", "slice_name": "unsupported_root_cause", "evidence_state": "no_source",
     "expected_route": "ABSTAIN", "source": "incident"},
    {"case_id": "reg_002", "slice_name": "confirmed_failure", "evidence_state": "test_failure_log",
     "expected_route": "SERVE", "source": "known_good"},
]


def test_example_fingerprints() -> None:
    experiment = load_experiment(EXAMPLE)
    assert experiment.short_fingerprints == {
        "regression": "2be42790a4f41355",  # SPEC §4, from the cases SPEC §3.2 gives
        "holdout": "d47cdbbfe1caae89",
        "evaluation": "94dfc930d2829d2c",
    }


def test_example_reproduces_the_spec_holdout_and_evaluation_fingerprints() -> None:
    experiment = load_experiment(EXAMPLE)  # the holdout cases SPEC §3.2 gives
    assert (experiment.short_fingerprints["holdout"], experiment.short_fingerprints["evaluation"]) == (
        "d47cdbbfe1caae89", "94dfc930d2829d2c")


def test_definition_is_sha256_of_sorted_compact_json() -> None:
    expected = hashlib.sha256(
        json.dumps(sorted(CASES, key=lambda c: c["case_id"]), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert fingerprint(CASES) == expected
    assert short(fingerprint(CASES)) == "2be42790a4f41355"


def test_row_order_and_key_order_do_not_matter() -> None:
    reordered = [dict(reversed(list(c.items()))) for c in reversed(CASES)]
    assert fingerprint(reordered) == fingerprint(CASES)


@pytest.mark.parametrize("field", ["case_id", "slice_name", "evidence_state", "expected_route", "source"])
def test_any_field_change_changes_the_fingerprint(field: str) -> None:
    changed = copy.deepcopy(CASES)
    changed[1][field] = "ABSTAIN" if field == "expected_route" else changed[1][field] + "x"
    assert fingerprint(changed) != fingerprint(CASES)


def test_non_ascii_is_escaped_as_json_dumps_does() -> None:
    cases = [dict(CASES[0], slice_name="überprüfung")]
    assert b"\\u00fc" in canonical_json(cases)
