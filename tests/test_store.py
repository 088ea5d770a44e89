"""Atomic writes: a run record is never overwritten or half-written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pytest_llmgate import RecordError
from pytest_llmgate.io.store import new_run_id, write_new, write_replacing
from pytest_llmgate.records.codec import dump


def test_write_new_refuses_to_replace_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "a.json"
    write_new(target, b"first")
    with pytest.raises(RecordError, match="never overwritten"):
        write_new(target, b"second")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_write_that_fails_partway_leaves_nothing_under_the_name(tmp_path: Path) -> None:
    """A record written in pieces (a run's cases) whose writing fails partway leaves no file at all: the name
    appears only once every piece is on disk."""
    target = tmp_path / "runs" / "a.json"

    def pieces() -> Iterator[bytes]:
        yield b'{"x":'
        raise RuntimeError("the encoder failed")

    with pytest.raises(RuntimeError, match="the encoder failed"):
        write_new(target, pieces())
    assert list(target.parent.iterdir()) == []


def test_write_replacing_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_replacing(target, b"old")
    write_replacing(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_file_in_the_way_is_a_record_error(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(RecordError, match="cannot be written"):
        write_new(tmp_path / "runs" / "a.json", b"x")


def test_run_ids_sort_by_time_and_are_unique() -> None:
    early = datetime(2026, 11, 27, 15, 0, 0, 1, tzinfo=timezone.utc)
    late = datetime(2026, 11, 27, 15, 0, 0, 2, tzinfo=timezone.utc)
    ids = [new_run_id(early) for _ in range(200)]
    assert len(set(ids)) == 200
    assert max(ids) < new_run_id(late)
    assert ids[0].startswith("20261127T150000000001Z-")


def test_dump_is_json_with_each_entry_of_a_list_of_objects_on_its_own_line() -> None:
    record = {
        "run_id": "r1",
        "params": {"policy_id": "p", "served": ["a", "b"]},
        "cases": [{"case_id": "c1", "outcome": "PASS"}, {"case_id": "c2", "outcome": "ERROR", "error": "é\n"}],
        "empty": {},
        "nested": [[1, 2], {"k": None}],
    }
    text = dump(record).decode("utf-8")
    assert json.loads(text) == record
    lines = text.splitlines()
    assert '    {"case_id":"c1","outcome":"PASS"},' in lines
    assert '    {"case_id":"c2","outcome":"ERROR","error":"é\\n"}' in lines
    assert '    "served": ["a","b"]' in lines
    assert text.endswith("}\n") and lines[0] == "{"
    for value in ([], {}, "s", 1.5, None, [1, 2], [{"a": 1}]):
        assert json.loads(dump(value)) == value


def test_an_ambiguous_run_id_prefix_lists_the_runs_it_matches(tmp_path: Path) -> None:
    from pytest_llmgate.io.history import find_runs

    (tmp_path / "runs").mkdir()
    for name in ("ab1", "ab2"):
        (tmp_path / "runs" / f"{name}.json").write_text("{}")
    with pytest.raises(RecordError, match=r"'ab' matches 2 runs \(ab1, ab2\); give more of the id"):
        find_runs(["ab"], tmp_path)
    for index in range(3, 8):
        (tmp_path / "runs" / f"ab{index}.json").write_text("{}")
    with pytest.raises(RecordError, match=r"'ab' matches 7 runs \(ab1, ab2, ab3, ab4, ab5…\); give more"):
        find_runs(["ab"], tmp_path)
