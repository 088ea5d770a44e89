"""Comparing a run with a stored one: the counterpart chosen, comparability first, then per case and per suite
(the result is a ``records.diff.StoredComparison``, kept in the run record)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from pytest_llmgate.model.decision import comparability_issues
from pytest_llmgate.model.vocab import CaseChange, MatchedBy, Outcome
from pytest_llmgate.records.diff import (
    ALL_CASES,
    CHANGE_ORDER,
    COST_FIGURES,
    GATING_FIGURES,
    CaseDelta,
    MetricDelta,
    StoredComparison,
)
from pytest_llmgate.records.run import Metrics, RunRecord

#: Handoff keys (kept in a run's tags) naming the run to compare with when no stored run has the same template.
HANDOFF_ORDER = ((MatchedBy.HANDOFF_CANDIDATE, "candidate_template_id"),
                 (MatchedBy.HANDOFF_FAILING, "failing_template_id"))


def counterpart(run: RunRecord, stored: Iterable[RunRecord]) -> tuple[RunRecord | None, MatchedBy]:
    """The stored run to compare ``run`` with: the newest other run of the same experiment and template, else, for
    a template ``stored`` lacks, of the template its handoff names as the candidate, else as the failing release.
    Never ``run`` itself (when ``stored`` holds it, as in ``llmgate diff DIR DIR``: its template's run before it,
    or none), nor a part of a split run (it holds only the cases one job ran: ``llmgate merge`` makes the whole
    run)."""
    same_experiment = [other for other in stored if other.experiment == run.experiment and other.part is None]
    stored_itself = any(other.run_id == run.run_id for other in same_experiment)
    same_experiment = [other for other in same_experiment  # a run stored: the runs before it (ids sort by time)
                       if (other.run_id < run.run_id if stored_itself else other.run_id != run.run_id)]
    wanted = [(MatchedBy.TEMPLATE, run.template_id)]
    if not stored_itself:  # a run's siblings of its own session are no "before" for it
        wanted += [(by, run.tags[key]) for by, key in HANDOFF_ORDER if run.tags.get(key)]
    for by, template_id in wanted:
        matches = [other for other in same_experiment if other.template_id == template_id]
        if matches:
            return max(matches, key=lambda other: other.run_id), by
    return None, MatchedBy.NONE


def compare(before: RunRecord | None, after: RunRecord, matched_by: MatchedBy = MatchedBy.TEMPLATE) -> StoredComparison:
    """``after`` against ``before``: refused (nothing compared) when they are not comparable."""
    if before is None:
        return StoredComparison(matched_by=MatchedBy.NONE, comparable=False)
    refused = StoredComparison(
        matched_by=matched_by, comparable=False, against_run_id=before.run_id, against_template_id=before.template_id,
        against_code_commit=before.params.get("code_commit"),
        template_changed=before.params.get("template_sha256") != after.params.get("template_sha256"),
        comparability_issues=comparability_issues([before, after]),
    )
    if refused.comparability_issues:
        return refused
    old = {(entry.suite, entry.case_id): entry.outcome for entry in before.cases}
    new = {(entry.suite, entry.case_id): entry.outcome for entry in after.cases}
    counts = dict.fromkeys(CHANGE_ORDER, 0)
    deltas = []
    for key in [*new, *(key for key in old if key not in new)]:
        change = case_change(old.get(key), new.get(key))
        counts[change] += 1
        if change is not CaseChange.UNCHANGED:
            deltas.append(CaseDelta(suite=key[0], case_id=key[1], change=change, before=old.get(key),
                                    after=new.get(key)))
    deltas.sort(key=lambda delta: CHANGE_ORDER.index(delta.change))  # stable: in case order within a kind
    if old.keys() != new.keys() or Outcome.NOT_RUN in old.values() or Outcome.NOT_RUN in new.values():
        metric_deltas = _deltas_over_cases_both_ran(before, after, old, new)
    else:
        metric_deltas = {ALL_CASES: metric_delta(before.metrics, after.metrics)}
        for suite, metrics in after.suite_metrics.items():
            if suite in before.suite_metrics:
                metric_deltas[suite] = metric_delta(before.suite_metrics[suite], metrics)
    return msgspec.structs.replace(refused, comparable=True, counts=counts, metric_deltas=metric_deltas,
                                   cases=tuple(deltas))


def _deltas_over_cases_both_ran(before: RunRecord, after: RunRecord, old: dict[tuple[str, str], Outcome],
                                new: dict[tuple[str, str], Outcome]) -> dict[str, MetricDelta]:
    """The deltas of a run that left cases out (a ``-k`` session, a merge missing a part, or a stored one), over
    the cases both runs ran: a case one side did not run is ``not_compared`` (or ``new``/``removed``), never an
    unsafe case fewer. A suite with no such case has no delta; money, tokens and latency are the whole run's, so
    they are left out."""
    ran = {key for key, outcome in new.items() if outcome is not Outcome.NOT_RUN
           and old.get(key, Outcome.NOT_RUN) is not Outcome.NOT_RUN}
    entries = ([entry for entry in before.cases if (entry.suite, entry.case_id) in ran],
               [entry for entry in after.cases if (entry.suite, entry.case_id) in ran])
    deltas = {ALL_CASES: metric_delta(*(Metrics.of(side) for side in entries))}
    for suite in after.suite_metrics:
        sides = [[entry for entry in side if entry.suite == suite] for side in entries]
        if suite in before.suite_metrics and sides[0]:
            deltas[suite] = metric_delta(*map(Metrics.of, sides))
    return deltas


def case_change(before: Outcome | None, after: Outcome | None) -> CaseChange:
    """How a case moved from ``before`` to ``after`` (``None``: absent on that side)."""
    if before is None:
        return CaseChange.NEW
    if after is None:
        return CaseChange.REMOVED
    if before is after:
        return CaseChange.UNCHANGED
    if Outcome.NOT_RUN in (before, after):
        return CaseChange.NOT_COMPARED
    if after is Outcome.PASS:
        return CaseChange.FIXED
    if before is Outcome.PASS:
        return CaseChange.BROKEN
    return CaseChange.CHANGED


#: The digits a float change is rounded to (the cost in USD needs more; a count changes by a whole number).
_DIGITS = {"cost_usd": 10, "exact_route_rate": 6}


def _change(name: str, old: float, new: float) -> float:
    return new - old if isinstance(new, int) and isinstance(old, int) else round(new - old, _DIGITS.get(name, 3))


def metric_delta(before: Metrics, after: Metrics) -> MetricDelta:
    figures = {name: _change(name, getattr(before, name), getattr(after, name)) for name in GATING_FIGURES}
    if before.cost is not None and after.cost is not None:
        # the time an in-process candidate (no tokens: no call) took to answer is no latency worth a delta
        called = before.cost.made_calls and after.cost.made_calls
        for name in COST_FIGURES:
            if name.startswith("latency") and not called:
                continue
            old, new = getattr(before.cost, name), getattr(after.cost, name)
            if old is not None and new is not None:
                figures[name] = _change(name, old, new)
    return MetricDelta(**figures)  # type: ignore[arg-type]
