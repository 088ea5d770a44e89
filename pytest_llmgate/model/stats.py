"""Small statistics, exact where a decision depends on them: one-sided Clopper–Pearson bounds, the evidence
still needed, exact McNemar.

Binomial tails are summed in floating point from terms computed by Loader's saddle-point method (``_pmf``: no
cancellation, a relative error of about 1e-13 whatever the counts), so a bound over a million cases keeps its
digits and the evidence check takes microseconds. A decision that lands within ``MARGIN`` of its threshold, where
rounding could matter, is taken again on bounds that cannot be wrong: the tail summed twice in decimal arithmetic,
every operation rounded down and then up, with more digits until the two sides agree, and on rationals for a tail
small enough to be cheap to sum exactly (docs/statistics.md)."""

from __future__ import annotations

import math
from decimal import MAX_EMAX, MIN_EMIN, ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from fractions import Fraction

#: The confidence of the upper bounds when the manifest does not set ``promotion.confidence``.
DEFAULT_CONFIDENCE = 0.95

#: The relative error allowed for a float binomial tail before a decision is taken again exactly. The tail's own
#: error is far below it: each term's about 1e-13 (Loader's method), the downward recurrence adds at most
#: 2.2e-16 a step (about 1e-10 over a million steps), and the requirement and confidence as floats differ from the
#: decimals written by 1.1e-16 each, which moves the tail by at most 1.1e-16 times its elasticity (below 1e4 for
#: any tail near the threshold at n <= 1e8).
MARGIN = 1e-7

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def recorded(value: float) -> float:
    """A computed figure as records hold it, to 12 significant digits: the same on every platform's libm."""
    return float(f"{value:.12g}")


def exact(value: float) -> Fraction:
    """A rate or confidence as the decimal the user wrote (``0.95`` is 19/20, not the nearest binary float)."""
    return Fraction(repr(value))


def binom_cdf(events: int, trials: int, rate: Fraction) -> Fraction:
    """P(X <= events) for X ~ Binomial(trials, rate), exactly: one integer sum over the common denominator (its size
    grows with ``trials``: for small counts only)."""
    if events >= trials:
        return Fraction(1)
    hit, miss = rate.numerator, rate.denominator - rate.numerator
    term = total = miss**trials  # C(n, i) hit^i miss^(n - i), each an integer
    for i in range(events):
        term = term * (trials - i) * hit // ((i + 1) * miss)  # exact: the next term is an integer
        total += term
    return Fraction(total, rate.denominator**trials)


def _threshold(confidence: float) -> float:
    """1 - confidence as the float nearest the decimal written: ``1.0 - confidence`` is off by up to 5.5e-17, more
    than ``MARGIN`` of a threshold below about 5e-10 (a confidence of 0.9999999999 or more)."""
    return float(1 - exact(confidence))


def _stirlerr(n: int) -> float:
    """log(n!) - log(sqrt(2 pi n) (n/e)^n), the error of Stirling's formula."""
    if n <= 15:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _HALF_LOG_2PI
    nn = float(n) * n
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - 1 / 1188 / nn) / nn) / nn) / nn) / n


def _bd0(x: float, np_: float) -> float:
    """x log(x / np) + np - x, without cancellation when x is near np (Loader's bd0)."""
    if abs(x - np_) < 0.1 * (x + np_):
        v = (x - np_) / (x + np_)
        s = (x - np_) * v
        ej = 2 * x * v
        v *= v
        j = 1
        while True:
            ej *= v
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return x * math.log(x / np_) + np_ - x


def _pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p), 0 < p < 1, with a small relative error (Loader 2000, R's dbinom_raw)."""
    q = 1.0 - p
    if k == 0:
        return math.exp(n * math.log1p(-p))
    if k == n:
        return math.exp(n * math.log(p))
    lc = _stirlerr(n) - _stirlerr(k) - _stirlerr(n - k) - _bd0(k, n * p) - _bd0(n - k, n * q)
    share = math.log1p(-k / n) if 2 * k < n else math.log((n - k) / n)  # log(1 - k/n), its digits kept near 1
    return math.exp(lc - _HALF_LOG_2PI - 0.5 * (math.log(k) + share))


def _tails(events: int, trials: int, rate: float) -> tuple[float, float]:
    """P(X <= events) and P(X > events) for X ~ Binomial(trials, rate). The side falling away from the mode is
    summed from its largest term and keeps a relative error far below ``MARGIN``; the other, one minus it, only an
    absolute one."""
    if events >= trials or rate <= 0:
        return 1.0, 0.0
    if rate >= 1:
        return 0.0, 1.0
    odds = (1.0 - rate) / rate
    if events < (trials + 1) * rate - 1:  # below the mode: sum down from P(events), the terms falling
        term = lower = _pmf(events, trials, rate)
        for i in range(events, 0, -1):  # P(i - 1) = P(i) * i / (n - i + 1) * (1 - p) / p
            term *= i / (trials - i + 1) * odds
            lower += term
            if term <= lower * 1e-17:  # (a first term below the float range is 0: so are the rest)
                break
        return min(lower, 1.0), max(0.0, 1.0 - lower)
    term = upper = _pmf(events + 1, trials, rate)  # at or above the mode: P(X > events), summed upward
    for i in range(events + 1, trials):  # P(i + 1) = P(i) * (n - i) / (i + 1) * p / (1 - p)
        term *= (trials - i) / (i + 1) / odds
        upper += term
        if term <= upper * 1e-17:
            break
    return max(0.0, 1.0 - upper), min(upper, 1.0)


def tail(events: int, trials: int, rate: float) -> float:
    """P(X <= events) for X ~ Binomial(trials, rate) in floating point (relative error far below ``MARGIN``)."""
    return _tails(events, trials, rate)[0]


def _directed_sum(events: int, trials: int, rate: Fraction, digits: int, rounding: str) -> Decimal:
    """The binomial terms on the shorter side of ``events`` summed with every operation rounded one way (``digits``
    significant digits, no underflow): each term and the sum are positive, so ROUND_FLOOR gives a lower bound on
    that side's sum and ROUND_CEILING an upper one."""
    context = Context(prec=digits, rounding=rounding, Emin=MIN_EMIN, Emax=MAX_EMAX)
    hit, miss = rate.numerator, rate.denominator - rate.numerator
    lower_side = events + 1 <= trials - events
    first, step, index = (miss, hit, 0) if lower_side else (hit, miss, trials)  # start at P(0) or at P(trials)
    base = context.divide(first, rate.denominator)
    term = Decimal(1)
    for bit in bin(trials)[2:]:  # the first term by squaring: base ** trials
        term = context.multiply(term, term)
        if bit == "1":
            term = context.multiply(term, base)
    total = term
    for _ in range(events if lower_side else trials - events - 1):
        if lower_side:  # P(i + 1) = P(i) * (n - i) / (i + 1) * p / (1 - p)
            ratio = context.divide((trials - index) * step, (index + 1) * first)
            index += 1
        else:  # P(i - 1) = P(i) * i / (n - i + 1) * (1 - p) / p
            ratio = context.divide(index * step, (trials - index + 1) * first)
            index -= 1
        term = context.multiply(term, ratio)
        total = context.add(total, term)
    return total


#: The most digits the directed sums are taken to before a tie is assumed; the largest exact sum then taken.
_MOST_DIGITS = 160
_EXACT_DIGITS = 20_000


def _exact_at_most(events: int, trials: int, rate: float, confidence: float) -> bool:
    """Whether P(X <= events | trials, rate) <= 1 - confidence, the decimals as written, exactly and in time
    whatever the counts.

    The terms on the shorter side are summed from below and from above (``_directed_sum``) with 40 digits, then
    160, until both sums fall on one side of the threshold; a tail whose exact sum has no more digits
    than that is summed on rationals (a tail exactly at the threshold is found there: with 0 events in 1 case at
    0.05, 1 - 0.05 = 0.95). The comparison stays in decimals: a rational of 0.1 ** 23,000,000 would not.

    Only an exact tie can keep the two sums apart past ``_MOST_DIGITS`` (0.5 at a confidence of 0.5 is the tail of
    10,000 events in 20,001 cases at 0.5). It is summed exactly when its sum has at most ``_EXACT_DIGITS`` digits;
    a larger one is taken as not meeting the requirement, the safe side (docs/statistics.md)."""
    written = exact(rate)
    size = trials * len(str(written.denominator))  # the digits of the exact tail's denominator
    level = Decimal(repr(confidence))
    alpha = Context(prec=400).subtract(1, level)  # exact: a float's repr has at most 17 digits, above 1e-324
    lower_side = events + 1 <= trials - events
    digits = 40
    while digits < size and digits <= _MOST_DIGITS:
        low = _directed_sum(events, trials, written, digits, ROUND_FLOOR)
        high = _directed_sum(events, trials, written, digits, ROUND_CEILING)
        if lower_side and (high <= alpha or low > alpha):  # the tail is the sum
            return high <= alpha
        if not lower_side and (low >= level or high < level):  # the tail is 1 - the sum
            return low >= level
        digits *= 4
    if size > _EXACT_DIGITS and size > digits:
        return False
    return binom_cdf(events, trials, written) <= 1 - exact(confidence)


def upper_bound(events: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The one-sided upper Clopper–Pearson bound on a rate seen ``events`` times in ``trials``.

    It is the ``confidence`` quantile of Beta(events + 1, trials - events) (``scipy.stats.beta.ppf``), the rate p
    at which P(X <= events | trials, p) = 1 - confidence; 1.0 when nothing ran or every trial was an event. With
    no event it is ``1 - (1 - confidence) ** (1 / trials)`` (about 3 / trials at 95 %). 1 - confidence is the decimal
    written, as in ``bound_at_most``."""
    if trials <= 0 or events >= trials:
        return 1.0
    alpha = _threshold(confidence)
    if events == 0:  # log(1 - confidence), its digits kept at either end: alpha near 1 is a float near 1
        return -math.expm1((math.log(alpha) if confidence > 0.5 else math.log1p(-confidence)) / trials)
    low, high = events / trials, 1.0  # the tail at the observed rate is about 1/2: above alpha for confidence > 1/2
    if tail(events, trials, low) <= alpha:  # a confidence below about 1/2: the bound lies below the observed rate
        low, high = 0.0, low
    while True:  # bisection: the tail is decreasing in p
        middle = (low + high) / 2
        if middle in (low, high):
            return high
        if tail(events, trials, middle) > alpha:
            low = middle
        else:
            high = middle


def lower_bound(successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """The one-sided lower Clopper–Pearson bound on a rate seen ``successes`` times in ``trials``, to 12 significant
    digits; 0.0 when nothing ran or nothing succeeded.

    It is the ``1 - confidence`` quantile of Beta(successes, trials - successes + 1) (``scipy.stats.beta.ppf``), the
    rate p at which P(X >= successes | trials, p) = 1 - confidence, the decimal written. That upper tail is summed
    directly (``_tails``): solving the lower tail for ``confidence`` near 1 lost digits (7 of 12 at a confidence of
    0.9999999999999), as did one minus the upper bound on the failures for a small bound."""
    if trials <= 0 or successes <= 0:
        return 0.0
    alpha = _threshold(confidence)
    low, high = 0.0, successes / trials  # the upper tail at the observed rate is about 1/2: above alpha
    if _tails(successes - 1, trials, high)[1] <= alpha:  # a confidence below about 1/2: the bound lies above the rate
        low, high = high, 1.0
    while True:  # bisection: the upper tail is increasing in p
        middle = (low + high) / 2
        if middle in (low, high):
            return recorded(low)
        if _tails(successes - 1, trials, middle)[1] > alpha:
            high = middle
        else:
            low = middle


def bound_at_most(events: int, trials: int, confidence: float, rate: float) -> bool:
    """Whether the upper bound is at most ``rate``, decided exactly: P(X <= events | trials, rate) <= 1 - confidence.

    Decided in floating point when the tail is further than ``MARGIN`` (relative) from 1 - confidence, else by
    ``_exact_at_most`` (the decimals as written)."""
    if rate >= 1:
        return True
    if trials <= 0 or events >= trials or rate <= 0:
        return False
    alpha = _threshold(confidence)
    figure = tail(events, trials, rate)
    if figure < alpha * (1 - MARGIN) - 1e-300:
        return True
    if figure > alpha * (1 + MARGIN) + 1e-300:
        return False
    return _exact_at_most(events, trials, rate, confidence)


def more_clean_cases(events: int, units: int, confidence: float, rate: float) -> int | None:
    """How many more event-free units (cases) would bring the upper bound to at most ``rate`` (0: it already is);
    None when no number would (a requirement of 0).

    The search starts from the count at which the float tail reaches 1 - confidence (the bound falls as units are
    added, and the tail at ``rate`` with it) and then steps to the exact boundary with ``bound_at_most``."""
    if bound_at_most(events, units, confidence, rate):
        return 0
    if rate <= 0:
        return None
    alpha = _threshold(confidence)
    low, high = units, max(units, events + 1)  # the tail at `low` units is above alpha
    while tail(events, high, rate) > alpha:
        low, high = high, high * 2
    while high - low > 1:  # the float boundary: tail(low) > alpha >= tail(high)
        middle = (low + high) // 2
        if tail(events, middle, rate) > alpha:
            low = middle
        else:
            high = middle
    while not bound_at_most(events, high, confidence, rate):  # inside the margin the exact rule decides
        high += 1
    while high - 1 > units and bound_at_most(events, high - 1, confidence, rate):
        high -= 1
    return high - units


def mcnemar_exact(fixed: int, broken: int) -> float:
    """The exact McNemar test's p-value: a two-sided binomial test (p = 1/2) on the discordant pairs, to 12
    significant digits.

    Equal to ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True).pvalue``; 1.0 with no
    discordant pair; 0.0 when it is below the float range (shown as ``p < 1e-300``). The float tail keeps it fast
    for any number of pairs (a p-value is shown, never decided on)."""
    return recorded(min(1.0, 2 * tail(min(fixed, broken), fixed + broken, 0.5)))


def p_text(p_value: float) -> str:
    """A p-value for people: four significant digits, never zero (``p < 1e-300`` below the float range)."""
    if p_value < 1e-300:
        return "p < 1e-300"
    return f"p = {p_value:.4g}"
