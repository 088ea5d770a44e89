"""How far a judge agrees with people: sensitivity, specificity (each with an exact lower bound), Cohen's kappa
beside the base rate, and self-consistency over trials; and whether those figures let the judge gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from pytest_llmgate.model.stats import DEFAULT_CONFIDENCE, lower_bound, recorded
from pytest_llmgate.model.vocab import Route


def cohen_kappa(labels: Sequence[Route], verdicts: Sequence[Route]) -> float | None:
    """Cohen's kappa of two raters over the same items (None: undefined, when chance agreement is 1: both
    raters gave one and the same class to every item, or there is no item)."""
    n = len(labels)
    if n == 0:
        return None
    observed = sum(1 for label, verdict in zip(labels, verdicts, strict=True) if label is verdict) / n
    chance = sum((labels.count(route) / n) * (verdicts.count(route) / n) for route in Route)
    if chance >= 1:
        return None
    return recorded((observed - chance) / (1 - chance))


class Agreement(msgspec.Struct, frozen=True, kw_only=True):
    """A judge's verdicts against people's labels, one verdict per item (its trials' majority; a tie counts as
    the verdict the label does not have: a judge that cannot make up its mind does not agree)."""

    items: int
    served_labels: int  # items a person labelled SERVE (a claim is served)
    served_caught: int  # of those, the items the judge also called SERVE
    abstain_labels: int
    abstain_kept: int  # items labelled ABSTAIN the judge also called ABSTAIN
    kappa: float | None
    consistent_items: int  # items on which every trial gave the same verdict
    trials: int  # the judge's trials per item
    confidence: float

    @property
    def base_rate(self) -> float | None:
        """The share of items labelled SERVE: kappa means little without it."""
        return recorded(self.served_labels / self.items) if self.items else None

    @property
    def sensitivity(self) -> float | None:
        return recorded(self.served_caught / self.served_labels) if self.served_labels else None

    @property
    def sensitivity_lower(self) -> float | None:
        return lower_bound(self.served_caught, self.served_labels, self.confidence) if self.served_labels else None

    @property
    def specificity(self) -> float | None:
        return recorded(self.abstain_kept / self.abstain_labels) if self.abstain_labels else None

    @property
    def specificity_lower(self) -> float | None:
        return lower_bound(self.abstain_kept, self.abstain_labels, self.confidence) if self.abstain_labels else None

    @property
    def self_consistency(self) -> float | None:
        """The share of items on which all the judge's trials agreed (1.0 with one trial)."""
        return recorded(self.consistent_items / self.items) if self.items else None


def majority(verdicts: Sequence[Route], label: Route) -> Route:
    """The item's verdict over its trials: the majority; a tie is the route that is not ``label``."""
    served = verdicts.count(Route.SERVE)
    abstained = len(verdicts) - served
    if served == abstained:
        return Route.ABSTAIN if label is Route.SERVE else Route.SERVE
    return Route.SERVE if served > abstained else Route.ABSTAIN


def agreement(labels: Sequence[Route], trial_verdicts: Sequence[Sequence[Route]],
              confidence: float = DEFAULT_CONFIDENCE) -> Agreement:
    """The figures of a judge whose trials gave ``trial_verdicts[i]`` on the item labelled ``labels[i]``."""
    verdicts = [majority(trials, label) for label, trials in zip(labels, trial_verdicts, strict=True)]
    served = [verdict for label, verdict in zip(labels, verdicts, strict=True) if label is Route.SERVE]
    abstained = [verdict for label, verdict in zip(labels, verdicts, strict=True) if label is Route.ABSTAIN]
    return Agreement(
        items=len(labels),
        served_labels=len(served),
        served_caught=served.count(Route.SERVE),
        abstain_labels=len(abstained),
        abstain_kept=abstained.count(Route.ABSTAIN),
        kappa=cohen_kappa(list(labels), verdicts),
        consistent_items=sum(1 for trials in trial_verdicts if len(set(trials)) <= 1),
        trials=max((len(trials) for trials in trial_verdicts), default=0),
        confidence=confidence,
    )


def no_figure(route: Route, labelled: Mapping[Route, int] | None = None, errors: int = 0) -> str:
    """Why a figure over the items labelled ``route`` is none: no item of the set is labelled so, or none so labelled
    got a verdict (``labelled``: the set's items per label, when known; ``errors``: the items with no verdict)."""
    count = None if labelled is None else labelled.get(route, 0)
    if count:
        return f"{count} labelled {route.value}, none with a verdict"
    if count is None and errors:
        return f"no item labelled {route.value} got a verdict"
    return f"no item labelled {route.value}"


def shortfalls(sensitivity_lower: float | None, specificity_lower: float | None,
               min_sensitivity: float | None, min_specificity: float | None, *,
               labelled: Mapping[Route, int] | None = None, errors: int = 0) -> list[str]:
    """Each requirement the lower bounds miss, in words (empty: the judge may gate); a bound that is none says why
    (``labelled`` and ``errors`` as ``no_figure`` reads them)."""
    missed = []
    for name, lower, minimum, label in (("sensitivity", sensitivity_lower, min_sensitivity, Route.SERVE),
                                        ("specificity", specificity_lower, min_specificity, Route.ABSTAIN)):
        if minimum is not None and (lower is None or lower < minimum):
            shown = f"none ({no_figure(label, labelled, errors)})" if lower is None else f"{lower:.3f}"
            missed.append(f"{name} lower bound {shown} < min_{name} {minimum:g}")
    return missed
