"""Safe YAML loading: duplicate keys are errors with lines, dates stay strings, syntax errors name a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmgate import SuiteError
from pytest_llmgate.records.yaml_loader import load_yaml


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\nb:\n  c: 2\n  c: 3\n")
    with pytest.raises(SuiteError) as info:
        load_yaml(path, SuiteError)
    assert info.value.line == 4
    assert "duplicate key 'c' (first defined on line 3)" in str(info.value)
    assert info.value.path == path


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("cases:\n  - case_id: a\n    slice: [unclosed\n")
    with pytest.raises(SuiteError) as info:
        load_yaml(path, SuiteError)
    assert info.value.path == path
    assert info.value.line is not None and info.value.line >= 3
    assert "YAML syntax error" in info.value.problem


def test_dates_stay_strings_and_line_lookup_finds_nested_values(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("when: 2026-11-27\ncases:\n  - a: 1\n  - a: 2\n    b: 3\n")
    document = load_yaml(path, SuiteError)
    assert document.data["when"] == "2026-11-27"
    assert document.line_of(["cases", 1, "b"]) == 5
    assert document.line_of(["cases", 1]) == 4
    assert document.line_of(["missing"]) == 1


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(SuiteError, match="line|YAML"):
        load_yaml(path, SuiteError)
