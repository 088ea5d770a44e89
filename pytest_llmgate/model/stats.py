"""Exact small statistics: one-sided Clopper–Pearson upper bounds, the evidence still needed, exact McNemar."""

from __future__ import annotations

import math
from fractions import Fraction

#: The confidence of the upper bounds when the manifest does not set ``promotion.confidence``.
DEFAULT_CONFIDENCE = 0.95


def exact(value: float) -> Fraction:
    """A rate or confidence as the decimal the user wrote (``0.95`` is 19/20, not the nearest binary float)."""
    return Fraction(repr(value))


def binom_cdf(events: int, trials: int, rate: Fraction) -> Fraction:
    """P(X <= events) for X ~ Binomial(trials, rate), exactly."""
    if events >= trials:
        return Fraction(1)
    fail = 1 - rate
    return sum(
        (math.comb(trials, i) * rate**i * fail ** (trials - i) for i in range(events + 1)), Fraction(0)
    )


def upper_bound(events: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The one-sided upper Clopper–Pearson bound on a rate seen ``events`` times in ``trials``.

    It is the ``confidence`` quantile of Beta(events + 1, trials - events) (``scipy.stats.beta.ppf``); 1.0
    when nothing ran or every trial was an event. With no event it is ``1 - (1 - confidence) ** (1 / trials)``
    (about 3 / trials at 95 %)."""
    if trials <= 0 or events >= trials:
        return 1.0
    if events == 0:
        return -math.expm1(math.log1p(-confidence) / trials)
    a, b = events + 1, trials - events
    low, high = 0.0, 1.0
    for _ in range(200):  # bisection: the regularized incomplete beta is increasing in p
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if _betainc(a, b, middle) < confidence:
            low = middle
        else:
            high = middle
    return high


def bound_at_most(events: int, trials: int, confidence: float, rate: float) -> bool:
    """Whether the upper bound is at most ``rate``, decided exactly: P(X <= events | trials, rate) <= 1 - confidence."""
    if rate >= 1:
        return True
    if trials <= 0 or events >= trials or rate <= 0:
        return False
    return binom_cdf(events, trials, exact(rate)) <= 1 - exact(confidence)


def more_clean_trials(events: int, trials: int, confidence: float, rate: float) -> int | None:
    """How many more event-free trials would bring the upper bound to at most ``rate`` (0: it already is);
    None when no number would (a requirement of 0)."""
    if bound_at_most(events, trials, confidence, rate):
        return 0
    if rate <= 0:
        return None
    high = 1
    while not bound_at_most(events, trials + high, confidence, rate):
        high *= 2
    low = high // 2  # not enough (or 0, known not enough)
    while high - low > 1:
        middle = (low + high) // 2
        if bound_at_most(events, trials + middle, confidence, rate):
            high = middle
        else:
            low = middle
    return high


def mcnemar_exact(fixed: int, broken: int) -> float:
    """The exact McNemar test's p-value: a two-sided binomial test (p = 1/2) on the discordant pairs.

    Equal to ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True).pvalue``; 1.0 with no
    discordant pair."""
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(fixed, broken) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-16
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h
