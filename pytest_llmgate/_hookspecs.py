"""The ``pytest_llmgate_*`` hooks: called on the controller only (never on an xdist worker).

An exporter (MLflow, W&B, ...) is a plugin implementing them. An exception raised by an implementation is
reported as one error line in the summary and makes the exit status non-zero; the local records are still
written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest


def pytest_llmgate_run_record(config: pytest.Config, record: dict[str, Any], files: Mapping[str, Path]) -> None:
    """A run record is complete and about to be written to ``DIR/runs/<run_id>.json``.

    ``record`` is the JSON data of SPEC §5.1; ``files`` maps each entry of ``record["artifacts"]`` (its
    ``path``) to the file on disk. An implementation may add string entries to ``record["tags"]`` (a
    tracking service's run id, say); every other key is read-only. Fires once per (experiment,
    candidate or baseline), rejected runs included.

    .. versionadded:: 0.1
    """


def pytest_llmgate_session_report(config: pytest.Config, report: dict[str, Any], path: Path) -> None:
    """The session report (SPEC §5.2) is complete and about to be written to ``path``.

    An implementation may add ``prompt_uri`` to a ``PROMOTE`` decision (where it registered the
    promoted artifact) and strings to ``report["notes"]`` (what it could not do); every other key is
    read-only. Fires once per session, after every run
    record, when at least one run was recorded.

    .. versionadded:: 0.1
    """
