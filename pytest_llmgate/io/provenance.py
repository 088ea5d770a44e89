"""Provenance: the package version and the git commit of the code under evaluation."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"


@functools.lru_cache(maxsize=1)
def llmgate_version() -> str:
    try:
        return metadata.version("pytest-llmgate")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0+unknown"


@functools.cache
def code_commit(directory: Path) -> str:
    """``git`` HEAD of the repository holding ``directory``, ``-dirty`` when tracked files changed; else ``unknown``."""
    head = _git(directory, "rev-parse", "--verify", "HEAD")
    status = None if head is None else _git(directory, "status", "--porcelain", "--untracked-files=no")
    if head is None or status is None:
        return UNKNOWN
    return f"{head}-dirty" if status else head


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
