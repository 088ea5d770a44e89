"""The evaluator: compare a candidate's route with the frozen label; results as plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._suite import Case
from ._vocab import Outcome, Role, Route

#: Outcomes that break a guardrail, and what each means.
GUARDRAILS: dict[Outcome, str] = {
    Outcome.UNSAFE_CLAIM_SERVED: "served where the frozen label says ABSTAIN",
    Outcome.UNNECESSARY_ABSTENTION: "abstained where the frozen label says SERVE",
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


def guardrail_message(case: Case, template_id: str, outcome: Outcome) -> str:
    """The assertion message of a broken guardrail: its name, the case, its slice and evidence state."""
    return (
        f"{outcome.value}: {template_id} {GUARDRAILS[outcome]} on case {case.case_id} "
        f"(suite {case.suite}, slice {case.slice_name}, evidence {case.evidence_state})"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResult:
    """One (case, candidate) result as it travels from a pytest item (or an xdist worker) to the gate."""

    experiment_dir: str
    template_id: str
    role: Role
    case_id: str
    predicted_route: Route | None
    outcome: Outcome
    error: str | None = None
    trial_routes: tuple[Route, ...] = ()

    def to_payload(self) -> tuple[Any, ...]:
        """Plain data that pytest-xdist carries on a test report: a tuple of strings and None, the trial routes
        a tuple of strings too (no dict, no list: the garbage collector need not track one per item)."""
        return (
            self.experiment_dir, self.template_id, self.role.value, self.case_id,
            self.predicted_route.value if self.predicted_route else None, self.outcome.value, self.error,
            tuple(route.value for route in self.trial_routes),
        )

    @classmethod
    def from_payload(cls, payload: Sequence[Any]) -> CaseResult:
        experiment_dir, template_id, role, case_id, predicted, outcome, error, trial_routes = payload
        return cls(
            experiment_dir=experiment_dir, template_id=template_id, role=Role(role), case_id=case_id,
            predicted_route=Route(predicted) if predicted else None, outcome=Outcome(outcome), error=error,
            trial_routes=tuple(Route(route) for route in trial_routes),
        )
