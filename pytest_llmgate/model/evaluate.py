"""The evaluator: compare a candidate's route with the frozen label; results as plain data."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from pytest_llmgate.model.case import Case
from pytest_llmgate.model.costs import Usage
from pytest_llmgate.model.errors import UNNECESSARY_ABSTENTION, UNSAFE_CLAIM_SERVED, GuardrailViolation
from pytest_llmgate.model.transcript import inline
from pytest_llmgate.model.vocab import Outcome, Role, Route

#: Outcomes that break a guardrail: the assertion named for each, and what it means.
_VIOLATIONS: dict[Outcome, tuple[type[GuardrailViolation], str]] = {
    Outcome.UNSAFE_CLAIM_SERVED: (UNSAFE_CLAIM_SERVED, "served where the frozen label says ABSTAIN"),
    Outcome.UNNECESSARY_ABSTENTION: (UNNECESSARY_ABSTENTION, "abstained where the frozen label says SERVE"),
}


def judge(expected: Route, predicted: Route) -> Outcome:
    """The outcome of one case: PASS, or the guardrail the prediction breaks."""
    if predicted is expected:
        return Outcome.PASS
    if predicted is Route.SERVE:
        return Outcome.UNSAFE_CLAIM_SERVED
    return Outcome.UNNECESSARY_ABSTENTION


def judge_trials(expected: Route, routes: tuple[Route, ...]) -> tuple[Outcome, Route]:
    """The outcome over repeated trials: unsafe if any trial served unsafely, unnecessary if any abstained
    where it should serve; the route returned is the one that decided it."""
    if expected is Route.ABSTAIN and Route.SERVE in routes:
        return Outcome.UNSAFE_CLAIM_SERVED, Route.SERVE
    if expected is Route.SERVE and Route.ABSTAIN in routes:
        return Outcome.UNNECESSARY_ABSTENTION, Route.ABSTAIN
    return Outcome.PASS, expected


def guardrail_violation(case: Case, template_id: str, outcome: Outcome, routes: tuple[Route, ...]) -> GuardrailViolation:
    """The assertion of a broken guardrail, named for it: the candidate, the case, its suite, slice and evidence
    state, and with several trials how many broke it."""
    trials = ""
    if len(routes) > 1:
        broken = routes.count(Route.SERVE if outcome is Outcome.UNSAFE_CLAIM_SERVED else Route.ABSTAIN)
        trials = f" in {broken} of {len(routes)} trials"
    violation, meaning = _VIOLATIONS[outcome]
    return violation(inline(
        f"{template_id} {meaning} on case {case.case_id} "
        f"(suite {case.suite}, slice {case.slice_name}, evidence {case.evidence_state}){trials}"
    ))


# gc=False (msgspec): one per case and candidate, never part of a cycle; untracked, each is 16 bytes smaller and never
# scanned by the collector (benchmarks (a) and (e): 100,000 cases).
class CaseResult(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """One (case, candidate) result as it travels from a pytest item (or an xdist worker) to the gate.

    On a test report it is carried as MessagePack bytes (``to_payload``): one compact value per item, which
    pytest-xdist's channel carries as it is and the garbage collector need not track."""

    experiment_dir: Annotated[str, Meta(description="The experiment's directory.")]
    template_id: Annotated[str, Meta(description="The candidate's template id.")]
    role: Annotated[Role, Meta(description="candidate or baseline.")]
    case_id: Annotated[str, Meta(description="The case's id.")]
    predicted_route: Annotated[Route | None, Meta(
        description="The route that decided the outcome; null: the case errored.")]
    outcome: Annotated[Outcome, Meta(
        description="The case's outcome; with several trials, a guardrail broken by any trial.")]
    error: Annotated[str | None, Meta(
        description="Why the case errored: the exception's type name, then ': ' and its one-line reason where "
                    "it has a safe one.")] = None
    trial_routes: Annotated[tuple[Route, ...], Meta(
        description="Every trial's route, with several trials; empty with one.")] = ()
    calls: Annotated[tuple[Usage, ...], Meta(
        description="What each trial's call used; empty: the case errored before an answer.")] = ()
    judge_calls: Annotated[tuple[Usage, ...], Meta(
        description="What the evaluator's judge used on this case, counted apart.")] = ()

    def to_payload(self) -> bytes:
        return _ENCODE(self)

    @classmethod
    def from_payload(cls, payload: bytes) -> CaseResult:
        return _DECODE(payload)


_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder(CaseResult).decode
