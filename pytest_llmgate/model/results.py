"""The case results a session gathers, kept compact until its records are written: a few bytes a case, not objects."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Mapping, Sequence

from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.evaluate import CaseResult
from pytest_llmgate.model.vocab import Outcome, Role, Route

_OUTCOME_AT = tuple(Outcome)
_ROUTE_AT = tuple(Route)
_OUTCOME_INDEX = {outcome: index for index, outcome in enumerate(_OUTCOME_AT)}
_ROUTE_INDEX = {route: index for index, route in enumerate(_ROUTE_AT)}
_NONE = -1  # no result for the case yet (outcome), no predicted route, no call
_WHOLE = -2  # the case's results are kept whole (outcome)


class CaseIndex:
    """An experiment's case ids in order and each one's position: shared by the runs of the experiment."""

    __slots__ = ("ids", "positions")

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = tuple(ids)
        self.positions = {case_id: position for position, case_id in enumerate(self.ids)}


class RunResults(Mapping[str, Sequence[CaseResult]]):
    """One run's results (a template of an experiment in one session) by case id; each case's in arrival order.

    The result nearly every case has (one answer, no error, one call that reported at most its latency) is kept
    as four array entries at the case's position in the experiment (``CaseIndex``): its outcome, predicted route,
    whether it made the call, and the latency. Any other result (an error, several trials, tokens, a case run
    twice, a case id the index does not know) is kept whole. A ``CaseResult`` is made again when it is read,
    at record time; reading gives back exactly the results added.

    Benchmark (e) justifies the arrays: a session's peak memory per case is 1.30x pytest's per item at 100,000
    cases (target 1.3x, benchmarks/README.md); a ``CaseResult`` kept per case, with its call and list, adds about
    400 bytes a case, about 1.37x."""

    def __init__(self, experiment_dir: str, template_id: str, role: Role, index: CaseIndex | None) -> None:
        self.experiment_dir = experiment_dir
        self.template_id = template_id
        self.role = role
        self._index = index
        size = len(index.ids) if index is not None else 0
        self._outcome = array("b", [_NONE]) * size
        self._predicted = array("b", [_NONE]) * size
        self._called = array("b", [0]) * size
        self._latency = array("d", [math.nan]) * size
        self._compact = 0  # cases kept in the arrays
        self._whole: dict[str, list[CaseResult]] = {}

    def add(self, result: CaseResult) -> None:
        index = self._index
        position = index.positions.get(result.case_id) if index is not None else None
        if position is None:
            self._whole.setdefault(result.case_id, []).append(result)
            return
        state = self._outcome[position]
        if state == _NONE and self._fits(result):
            call = result.calls[0] if result.calls else None
            latency = call.latency_ms if call is not None else None
            self._outcome[position] = _OUTCOME_INDEX[result.outcome]
            predicted = result.predicted_route
            self._predicted[position] = _NONE if predicted is None else _ROUTE_INDEX[predicted]
            self._called[position] = call is not None
            self._latency[position] = math.nan if latency is None else latency
            self._compact += 1
            return
        if state >= 0:  # a second result for the case: both are kept whole
            self._whole[result.case_id] = [self._made(position)]
            self._compact -= 1
        self._outcome[position] = _WHOLE
        self._whole.setdefault(result.case_id, []).append(result)

    def _fits(self, result: CaseResult) -> bool:
        if result.error is not None or result.trial_routes or result.role is not self.role or len(result.calls) > 1:
            return False
        if not result.calls:
            return True
        call = result.calls[0]
        latency = call.latency_ms
        return call == Usage(latency_ms=latency) and (latency is None or not math.isnan(latency))

    def _made(self, position: int) -> CaseResult:
        assert self._index is not None
        predicted = self._predicted[position]
        latency = self._latency[position]
        return CaseResult(
            experiment_dir=self.experiment_dir, template_id=self.template_id, role=self.role,
            case_id=self._index.ids[position], outcome=_OUTCOME_AT[self._outcome[position]],
            predicted_route=None if predicted == _NONE else _ROUTE_AT[predicted],
            calls=(Usage(latency_ms=None if math.isnan(latency) else latency),) if self._called[position] else (),
        )

    def __getitem__(self, case_id: str) -> Sequence[CaseResult]:
        index = self._index
        position = index.positions.get(case_id) if index is not None else None
        if position is not None and self._outcome[position] >= 0:
            return (self._made(position),)
        return self._whole[case_id]

    def __iter__(self) -> Iterator[str]:
        if self._index is not None and self._compact:
            ids = self._index.ids
            yield from (ids[position] for position, state in enumerate(self._outcome) if state >= 0)
        yield from self._whole

    def __len__(self) -> int:
        return self._compact + len(self._whole)

    def reported_tokens(self) -> bool:
        """Whether any call of the run reported tokens (a result kept compact never has)."""
        return any(call.input_tokens is not None or call.output_tokens is not None
                   for ran in self._whole.values() for result in ran for call in result.calls)
