"""What a session was asked to gate: the selection, the runs it plans, and whether it is one part of a split run."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from pytest_llmgate.model.errors import SelectionError
from pytest_llmgate.model.vocab import Role
from pytest_llmgate.records.experiment import Experiment
from pytest_llmgate.records.outcome import PlannedRun

ALL = "all"


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """The template ids asked for as candidates (``all`` for every artifact) and as baselines."""

    candidates: tuple[str, ...]
    baselines: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.candidates and not self.baselines


class PartSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A job of a split run (a splitter or ``--llmgate-part``): the split id asked for (None: worked out from the
    cases run) and how the session was split, in words (``pytest-split group 1 of 4``); it records only the cases
    it evaluated. A session narrowed by ``-k``, ``--deselect`` or ``--lf`` is no part: it is partial, and records
    every case, those it did not run as NOT_RUN."""

    split_id: str | None
    selection: str


#: What a part session says, in its summary and report, instead of a decision.
WAITS_FOR_MERGE = "the decision waits for `llmgate merge` of every part"


def plan_runs(experiment: Experiment, selection: Selection) -> tuple[PlannedRun, ...]:
    """The runs of ``experiment``: baselines first, then candidates, each in the order asked for."""
    baselines = [t for t in dict.fromkeys(selection.baselines) if t in experiment.candidates]
    if ALL in selection.candidates:
        candidates = [t for t in experiment.candidates if t not in baselines]
    else:
        candidates = [t for t in dict.fromkeys(selection.candidates) if t in experiment.candidates]
    return tuple(
        [PlannedRun(template_id=t, role=Role.BASELINE) for t in baselines]
        + [PlannedRun(template_id=t, role=Role.CANDIDATE) for t in candidates]
    )


def check_selection(experiments: Iterable[Experiment], selection: Selection) -> None:
    """Every id asked for exists in some experiment, and none is both candidate and baseline."""
    known = sorted({t for experiment in experiments for t in experiment.candidates})
    both = sorted(set(selection.candidates) & set(selection.baselines))
    if both:
        raise SelectionError(None, None, f"{', '.join(both)}: asked for as both candidate and baseline")
    if ALL in selection.baselines:
        raise SelectionError(None, None, "'all' selects candidates only; name each baseline")
    unknown = [t for t in dict.fromkeys(selection.candidates + selection.baselines) if t != ALL and t not in known]
    if unknown:
        raise SelectionError(
            None, None,
            f"unknown template id {', '.join(map(repr, unknown))}; the collected experiments have: "
            + (", ".join(known) if known else "no candidate artifacts"),
        )


def selection_hint(experiments: Iterable[Experiment]) -> str | None:
    """One line for a session that collected experiments but selected nothing: what exists and how to pick it."""
    found = {experiment.name: sorted(experiment.candidates) for experiment in experiments}
    if not found:
        return None
    listed = "; ".join(f"{name}: {', '.join(ids) or 'no artifacts'}" for name, ids in sorted(found.items()))
    return (f"llmgate: no candidate or baseline selected, so nothing was gated ({listed}); "
            "pick with --llmgate-candidate=ID (or =all) and --llmgate-baseline=ID")
