"""The ``pytest_llmgate_*`` hooks: called on the controller only (never on an xdist worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def pytest_llmgate_run_record(config: pytest.Config, record: dict[str, Any]) -> None:
    """A run record is complete and about to be written to ``DIR/runs/<run_id>.json``.

    ``record`` is the JSON data of SPEC §5.1. An implementation may add string entries to
    ``record["tags"]`` (a tracking service's run id, say); every other key is read-only.
    Fires once per (experiment, candidate or baseline), rejected runs included.

    .. versionadded:: 0.1
    """


def pytest_llmgate_session_report(config: pytest.Config, report: dict[str, Any], path: Path) -> None:
    """The session report (SPEC §5.2) has been written to ``path``; read-only.

    Fires once per session, after every run record, when at least one run was recorded.

    .. versionadded:: 0.1
    """
