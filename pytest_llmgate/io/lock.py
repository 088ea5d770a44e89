"""The suite lock, ``llmgate.lock``: frozen fingerprints per suite, evaluation and case, and the diff against it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from pytest_llmgate.io.store import write_replacing
from pytest_llmgate.model.case import Case
from pytest_llmgate.model.errors import LockError
from pytest_llmgate.model.fingerprint import short, value_sha256
from pytest_llmgate.model.vocab import LOCK_SCHEMA, Route
from pytest_llmgate.records.codec import dump, load
from pytest_llmgate.records.experiment import Experiment

LOCK_NAME = "llmgate.lock"


class LockedCase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One case as frozen: the SHA-256 of its mapping as written, its labels, and its input only as a hash."""

    sha256: Annotated[str, Meta(description="SHA-256 of the case's mapping as written (canonical JSON).")]
    suite: Annotated[str, Meta(description="The suite it is in.")]
    slice_name: Annotated[str, Meta(description="Its slice.")]
    evidence_state: Annotated[str, Meta(description="Its evidence state.")]
    expected_route: Annotated[Route, Meta(description="Its frozen label.")]
    source: Annotated[str, Meta(description="Where it comes from.")]
    input_sha256: Annotated[str | None, Meta(description="SHA-256 of its input; null: it has none.")]


#: The case fields a lock keeps, in the order a diff names them.
LOCKED_FIELDS = tuple(field for field in LockedCase.__struct_fields__ if field != "sha256")


class Lock(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="schema", tag=LOCK_SCHEMA):
    """``llmgate.lock``: the experiment's full fingerprints and every case, by case id."""

    experiment: Annotated[str, Meta(description="The experiment's name.")]
    fingerprints: Annotated[dict[str, str], Meta(description="Full fingerprints: one per suite, then 'evaluation'.")]
    cases: Annotated[dict[str, LockedCase], Meta(description="Every case, by case id.")]


def lock_path(experiment: Experiment) -> Path:
    return experiment.directory / LOCK_NAME


def _locked(case: Case) -> LockedCase:
    return LockedCase(sha256=value_sha256(case.written), **{name: getattr(case, name) for name in LOCKED_FIELDS})


def lock_of(experiment: Experiment) -> Lock:
    """What ``llmgate.lock`` holds for the experiment as it is now."""
    return Lock(
        experiment=experiment.name,
        fingerprints=dict(experiment.fingerprints),
        cases={case.case_id: _locked(case) for case in sorted(experiment.cases, key=lambda c: c.case_id)},
    )


def write_lock(experiment: Experiment) -> Path:
    """Write or refresh the lock: a deliberate act that starts a new comparison set."""
    path = lock_path(experiment)
    write_replacing(path, dump(lock_of(experiment)))
    return path


def read_lock(experiment: Experiment) -> Lock | None:
    """The stored lock, or None when the experiment has none (it is not frozen)."""
    path = lock_path(experiment)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(path, None, f"cannot be read: {exc.strerror or exc}") from None
    return load(raw, Lock, path, LockError)


class CaseEdit(msgspec.Struct, frozen=True, kw_only=True):
    """A case added, removed or changed since the lock was written."""

    case_id: str
    kind: str
    fields: tuple[tuple[str, Any, Any], ...] = ()

    def describe(self) -> str:
        if self.kind != "changed":
            return f"{self.case_id}: {self.kind}"
        changes = ", ".join(f"{field} {_plain(old)} -> {_plain(new)}" for field, old, new in self.fields)
        return f"{self.case_id}: {changes or 'its sha256 differs, and no field the lock names (the lock edited?)'}"


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Route) else value


def lock_changes(lock: Lock, experiment: Experiment) -> list[CaseEdit]:
    """Every difference between the locked cases and the experiment's cases, in case-id order."""
    current = lock_of(experiment).cases
    changes = []
    for case_id in sorted(set(lock.cases) | set(current)):
        old, new = lock.cases.get(case_id), current.get(case_id)
        if old is None:
            changes.append(CaseEdit(case_id=case_id, kind=f"added (suite {current[case_id].suite})"))
        elif new is None:
            changes.append(CaseEdit(case_id=case_id, kind=f"removed (was in suite {old.suite})"))
        elif old != new:
            fields = tuple(
                (f, getattr(old, f), getattr(new, f)) for f in LOCKED_FIELDS if getattr(old, f) != getattr(new, f)
            )
            changes.append(CaseEdit(case_id=case_id, kind="changed", fields=fields))
    return changes


class LockState(msgspec.Struct, frozen=True, kw_only=True):
    """An experiment against its lock: whether there is one, and every difference (none: it matches)."""

    locked: bool
    changes: tuple[CaseEdit, ...] = ()
    #: Each fingerprint that is not the locked one: its name, the locked value and the value now (short).
    fingerprints: tuple[tuple[str, str, str], ...] = ()
    evaluator: str | None = None  # the manifest's evaluator file, named when only the evaluation differs

    @property
    def matches(self) -> bool:
        return self.locked and not self.changes and not self.fingerprints

    def describe(self) -> str:
        """Every case changed; when none did, which fingerprints differ, and what that leaves to have changed."""
        if self.changes:
            return "; ".join(change.describe() for change in self.changes)
        prints = ", ".join(f"{name} {before} -> {now}" for name, before, now in self.fingerprints)
        if [name for name, _, _ in self.fingerprints] == ["evaluation"] and self.evaluator:
            return (f"no case changed, but the evaluation fingerprint differs ({prints}): the manifest's evaluator "
                    f"{self.evaluator} is not the one locked (added or edited since; its SHA-256 is part of it)")
        return f"no case changed, but fingerprints differ ({prints})"


def lock_state(experiment: Experiment) -> LockState:
    """The one comparison of an experiment with its ``llmgate.lock`` (the plugin and ``llmgate fingerprint`` use it)."""
    lock = read_lock(experiment)
    if lock is None:
        return LockState(locked=False)
    return LockState(
        locked=True, changes=tuple(lock_changes(lock, experiment)),
        fingerprints=tuple((name, short(lock.fingerprints.get(name, "none")), short(now))
                           for name, now in experiment.fingerprints.items() if lock.fingerprints.get(name) != now)
        + tuple((name, short(before), "none") for name, before in lock.fingerprints.items()
                if name not in experiment.fingerprints),
        evaluator=experiment.evaluator.relative_path if experiment.evaluator is not None else None,
    )


def frozen_state(experiment: Experiment) -> bool:
    """True when a lock exists and matches; raises ``LockError`` naming every change when it does not match."""
    state = lock_state(experiment)
    if state.locked and not state.matches:
        raise LockError(
            lock_path(experiment), None,
            (f"the suites differ from the lock: {state.describe()}. A frozen suite is not edited in place; "
             if state.changes else f"the experiment differs from its lock: {state.describe()}. ")
            + "if the change is deliberate, refreeze with pytest --llmgate-freeze (a new comparison set)",
        )
    return state.locked
