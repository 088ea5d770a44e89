"""What the counts support: the manifest's evidence requirement on upper bounds, and the paired comparison with a
baseline (cases fixed and broken, exact McNemar). The decision stays the guardrail rule; see docs/statistics.md."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Protocol

import msgspec
from msgspec import Meta

from pytest_llmgate.model.decision import Promotion
from pytest_llmgate.model.stats import DEFAULT_CONFIDENCE, mcnemar_exact, more_clean_cases, p_text, upper_bound
from pytest_llmgate.model.vocab import Outcome

#: Outcomes that pair: the case ran and was judged (an error or a case not run has no pass/fail to compare).
JUDGED = (Outcome.PASS, Outcome.UNSAFE_CLAIM_SERVED, Outcome.UNNECESSARY_ABSTENTION)


def confidence_of(promotion: Promotion | None) -> float:
    """The confidence of the bounds: the manifest's ``promotion.confidence``, else 0.95."""
    return DEFAULT_CONFIDENCE if promotion is None or promotion.confidence is None else promotion.confidence


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """How a run's counts meet the manifest's evidence requirement (present only when one is set)."""

    confidence: Annotated[float, Meta(description="Confidence of the upper bounds.")]
    max_unsafe_rate: Annotated[float | None, Meta(
        description="The manifest's requirement on the unsafe-serve rate's upper bound; absent: none.")] = None
    max_unnecessary_rate: Annotated[float | None, Meta(
        description="The manifest's requirement on the unnecessary-abstention rate's upper bound; absent: "
                    "none.")] = None
    met: Annotated[bool, Meta(
        description="True when every required upper bound (over the cases judged) is at most its requirement.")]
    more_clean_cases: Annotated[int | None, Meta(
        description="How many more judged cases without an unsafe serve or unnecessary abstention would meet "
                    "every requirement: 0 when met; absent when no number would.")] = None
    more_clean_trials: Annotated[int | None, Meta(
        description="The same over case-trials, in records written before the case was the unit of evidence "
                    "(read as written, never written now).")] = None
    reason: Annotated[str, Meta(description="Whether the requirement is met, and by what figures, in one sentence.")]


class Counts(Protocol):
    """What the requirement reads of a run's metrics (a ``Metrics`` is one): the cases judged and each guardrail's
    cases."""

    @property
    def judged_count(self) -> int | None: ...
    @property
    def unsafe_claim_served(self) -> int: ...
    @property
    def unnecessary_abstention(self) -> int: ...


def evidence_of(counts: Counts, promotion: Promotion | None) -> Evidence | None:
    """Judge a run's counts against the requirement of ``promotion`` (None: no requirement set).

    The unit is the case judged: a case counts against the candidate when any of its trials broke the guardrail;
    repeating a question is not new evidence. Counts without ``judged_count`` (a record from before it existed)
    hold no judged case, so no requirement is met by them: the gate and ``llmgate promote`` judge a record from
    its cases, never from the trial counts it carries."""
    if promotion is None or not promotion.requires_evidence:
        return None
    confidence = confidence_of(promotion)
    n = counts.judged_count or 0
    parts: list[str] = []
    needed: list[int | None] = []
    for name, events, requirement in (
        ("unsafe-serve", counts.unsafe_claim_served, promotion.max_unsafe_rate),
        ("unnecessary-abstention", counts.unnecessary_abstention, promotion.max_unnecessary_rate),
    ):
        if requirement is None:
            continue
        bound = upper_bound(events, n, confidence)
        needed.append(more_clean_cases(events, n, confidence, requirement))
        ok = needed[-1] == 0  # 0 exactly when the bound is already at most the requirement
        relation = "<=" if ok else ">"
        digits = 3
        while not ok and digits < 12 and percent(bound, digits) == percent(requirement, digits):
            digits += 1  # never "upper bound 1% > 1% required": as many digits as tell them apart
        parts.append(
            f"{name} rate {events} of {n} cases, upper bound {percent(bound, digits)} at {percent(confidence)} "
            f"confidence {relation} {percent(requirement, digits)} required"
        )
    more = None if None in needed else max(n for n in needed if n is not None)
    met = more == 0
    reason = "; ".join(parts)
    if met:
        reason += ": the evidence requirement is met"
    elif more is None:
        reason += ": no number of clean cases can meet it"
    else:
        reason += f": {more} more clean cases would meet it"
    return Evidence(
        confidence=confidence, max_unsafe_rate=promotion.max_unsafe_rate,
        max_unnecessary_rate=promotion.max_unnecessary_rate, met=met,
        more_clean_cases=more, reason=reason,
    )


def percent(value: float, digits: int = 3) -> str:
    """A rate as a percentage with three (or ``digits``) significant digits (``0.0499`` -> ``4.99%``)."""
    return f"{value * 100:.{digits}g}%"


class Comparison(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A candidate against a baseline run on the same frozen cases, case by case (pass = every trial passed).

    Cases that errored or did not run on either side are not paired. Evidence for the reviewer: the decision
    stays the guardrail rule."""

    baseline_run_id: Annotated[str, Meta(description="The baseline run's id.")]
    baseline_template_id: Annotated[str, Meta(description="The baseline's template id.")]
    fixed: Annotated[tuple[str, ...], Meta(
        description="Ids of the cases the baseline failed and the candidate passes.")]
    broken: Annotated[tuple[str, ...], Meta(
        description="Ids of the cases the baseline passed and the candidate fails.")]
    both_pass: Annotated[int, Meta(description="Cases both pass.")]
    both_fail: Annotated[int, Meta(description="Cases both fail.")]
    p_value: Annotated[float, Meta(
        description="The exact McNemar test: a two-sided binomial test, p = 1/2, on the discordant pairs (fixed "
                    "against broken); 1 when there is none.")]

    def text(self) -> str:
        def cases(ids: tuple[str, ...]) -> str:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            return f"{len(ids)}" + (f" ({shown})" if ids else "")

        return (f"vs baseline {self.baseline_template_id}: fixed {cases(self.fixed)}, broken {cases(self.broken)}; "
                f"exact McNemar {p_text(self.p_value)}")


def paired_comparison(
    candidate: Iterable[tuple[str, Outcome]], baseline: Iterable[tuple[str, Outcome]], baseline_run_id: str,
    baseline_template_id: str,
) -> Comparison:
    """Pair a candidate's (case_id, outcome) with a baseline's on the cases both judged."""
    theirs = {case_id: outcome for case_id, outcome in baseline if outcome in JUDGED}
    fixed, broken = [], []
    both_pass = both_fail = 0
    for case_id, outcome in candidate:
        other = theirs.get(case_id)
        if other is None or outcome not in JUDGED:
            continue
        passes, passed = outcome is Outcome.PASS, other is Outcome.PASS
        if passes and not passed:
            fixed.append(case_id)
        elif passed and not passes:
            broken.append(case_id)
        elif passes:
            both_pass += 1
        else:
            both_fail += 1
    return Comparison(
        baseline_run_id=baseline_run_id, baseline_template_id=baseline_template_id, fixed=tuple(fixed),
        broken=tuple(broken), both_pass=both_pass, both_fail=both_fail,
        p_value=mcnemar_exact(len(fixed), len(broken)),
    )
