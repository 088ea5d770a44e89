"""The suite lock, ``llmgate.lock``: frozen fingerprints per suite, evaluation and case, and the diff against it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import LockError
from ._experiment import Experiment
from ._fingerprint import value_sha256
from ._store import dump, write_replacing
from ._suite import Case

LOCK_NAME = "llmgate.lock"
LOCK_SCHEMA = "llmgate.lock/1"
#: The case fields a lock keeps (an input only as its hash), in the order a diff names them.
LOCKED_FIELDS = ("suite", "slice_name", "evidence_state", "expected_route", "source", "input_sha256")


def lock_path(experiment: Experiment) -> Path:
    return experiment.directory / LOCK_NAME


def _case_entry(case: Case) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": value_sha256(case.written)}
    for field in LOCKED_FIELDS:
        value = getattr(case, field)
        entry[field] = value.value if hasattr(value, "value") else value
    return entry


def lock_data(experiment: Experiment) -> dict[str, Any]:
    """What ``llmgate.lock`` holds for the experiment as it is now."""
    return {
        "schema": LOCK_SCHEMA,
        "experiment": experiment.name,
        "fingerprints": experiment.fingerprints,
        "cases": {case.case_id: _case_entry(case) for case in sorted(experiment.cases, key=lambda c: c.case_id)},
    }


def write_lock(experiment: Experiment) -> Path:
    """Write or refresh the lock: a deliberate act that starts a new comparison set."""
    path = lock_path(experiment)
    write_replacing(path, dump(lock_data(experiment)))
    return path


def read_lock(experiment: Experiment) -> dict[str, Any] | None:
    """The stored lock, or None when the experiment has none (it is not frozen)."""
    path = lock_path(experiment)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LockError(path, None, f"cannot be read as JSON: {exc}") from None
    if not isinstance(data, Mapping) or data.get("schema") != LOCK_SCHEMA or not isinstance(data.get("cases"), Mapping):
        raise LockError(path, None, f"is not a {LOCK_SCHEMA} file; refreeze with pytest --llmgate-freeze")
    return dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseChange:
    """A case added, removed or changed since the lock was written."""

    case_id: str
    kind: str
    fields: tuple[tuple[str, Any, Any], ...] = ()

    def describe(self) -> str:
        if self.kind != "changed":
            return f"{self.case_id}: {self.kind}"
        changes = ", ".join(f"{field} {old} -> {new}" for field, old, new in self.fields)
        return f"{self.case_id}: {changes}"


def lock_changes(lock: Mapping[str, Any], experiment: Experiment) -> list[CaseChange]:
    """Every difference between the locked cases and the experiment's cases, in case-id order."""
    locked: Mapping[str, Mapping[str, Any]] = lock["cases"]
    current = lock_data(experiment)["cases"]
    changes = []
    for case_id in sorted(set(locked) | set(current)):
        old, new = locked.get(case_id), current.get(case_id)
        if old is None:
            changes.append(CaseChange(case_id=case_id, kind=f"added (suite {new['suite']})"))
        elif new is None:
            changes.append(CaseChange(case_id=case_id, kind=f"removed (was in suite {old.get('suite')})"))
        elif old.get("sha256") != new["sha256"] or any(old.get(f) != new.get(f) for f in LOCKED_FIELDS):
            fields = tuple((f, old.get(f), new.get(f)) for f in LOCKED_FIELDS if old.get(f) != new.get(f))
            changes.append(CaseChange(case_id=case_id, kind="changed", fields=fields))
    return changes


def frozen_state(experiment: Experiment) -> bool:
    """True when a lock exists and matches; raises ``LockError`` naming every change when it does not match."""
    lock = read_lock(experiment)
    if lock is None:
        return False
    changes = lock_changes(lock, experiment)
    if changes or lock.get("fingerprints") != experiment.fingerprints:
        listed = "; ".join(change.describe() for change in changes) or "the suite fingerprints differ"
        raise LockError(
            lock_path(experiment), None,
            f"the suites differ from the lock: {listed}. A frozen suite is not edited in place; "
            "if the change is deliberate, refreeze with pytest --llmgate-freeze (a new comparison set)",
        )
    return True
