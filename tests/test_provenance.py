"""code_commit from a real git repository: HEAD, -dirty, or unknown."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_llmgate.io.provenance import code_commit


def git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(directory: Path) -> str:
    directory.mkdir()
    git(directory, "init", "-q")
    (directory / "f.txt").write_text("one\n")
    git(directory, "add", "f.txt")
    git(directory, "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "one")
    return git(directory, "rev-parse", "HEAD")


def test_clean_tree_gives_head(tmp_path: Path) -> None:
    head = make_repo(tmp_path / "clean")
    (tmp_path / "clean" / "untracked.txt").write_text("untracked files do not make it dirty\n")
    assert code_commit(tmp_path / "clean") == head


def test_changed_tracked_file_gives_dirty(tmp_path: Path) -> None:
    head = make_repo(tmp_path / "dirty")
    (tmp_path / "dirty" / "f.txt").write_text("two\n")
    assert code_commit(tmp_path / "dirty") == f"{head}-dirty"


def test_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / ".git").write_text("gitdir: /nonexistent\n")  # a broken pointer stops git searching upwards
    assert code_commit(outside) == "unknown"
