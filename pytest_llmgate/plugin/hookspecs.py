"""The ``pytest_llmgate_*`` hooks.

``pytest_llmgate_make_provider`` fires in every process that loads experiments (an xdist worker too): a plugin
adds a provider with it. The record hooks fire on the controller only: an exporter (MLflow, W&B, ...) implements
them; an exception raised there is reported as one error line in the summary and makes the exit status
non-zero, and the local records are still written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_llmgate.providers import ProviderFactory


@pytest.hookspec(firstresult=True)
def pytest_llmgate_make_provider(config: pytest.Config, name: str) -> ProviderFactory | None:
    """Return the provider factory for artifacts whose ``provider:`` is ``name``, or None if it is not yours.

    Fires once per provider name per session and process, when the first experiment naming it loads (at
    session start, before collection), on the controller and on every xdist worker alike. The first non-None
    result wins; the built-in providers (``evidence_policy``, ``python``, ``openai_chat``,
    ``anthropic_messages``) answer last, so a plugin may replace one. With no result, each artifact naming
    ``name`` is an error at its ``provider:`` line. The factory (see ``pytest_llmgate.providers.ProviderFactory``)
    owns the settings schema, the checks, the run params and the ``Provider`` objects of its artifacts.

    .. versionadded:: 0.2
    """


def pytest_llmgate_run_record(config: pytest.Config, record: dict[str, Any], files: Mapping[str, Path]) -> None:
    """A run record is complete and written to ``DIR/runs/<run_id>.json`` (never called for a run whose record
    could not be written).

    ``record`` is the JSON data of SPEC §5.1; ``files`` maps each entry of ``record["artifacts"]`` (its
    ``path``) to the file on disk. An implementation may add string entries to ``record["tags"]`` (a
    tracking service's run id, say), and the record with them replaces the one written; every other key is
    read-only (a record left invalid stays as written, with an error line). Fires once per (experiment,
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
