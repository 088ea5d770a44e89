"""The exact statistics against scipy and statsmodels, over a grid of counts including 0 and n."""

from __future__ import annotations

import pytest

from pytest_llmgate.model.stats import bound_at_most, mcnemar_exact, more_clean_trials, upper_bound

scipy_stats = pytest.importorskip("scipy.stats")
contingency = pytest.importorskip("statsmodels.stats.contingency_tables")

GRID = [(x, n) for n in (1, 2, 3, 4, 7, 20, 60, 299, 1000) for x in sorted({0, 1, 2, n // 2, n - 1, n}) if x <= n]
CONFIDENCES = (0.8, 0.9, 0.95, 0.99)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("events", "trials"), GRID)
def test_the_upper_bound_is_scipy_s_beta_quantile(events: int, trials: int, confidence: float) -> None:
    expected = 1.0 if events == trials else float(scipy_stats.beta.ppf(confidence, events + 1, trials - events))
    assert upper_bound(events, trials, confidence) == pytest.approx(expected, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("events", "trials"), [(0, 100_000), (3, 100_000), (500, 20_000)])
def test_the_upper_bound_holds_for_large_counts(events: int, trials: int) -> None:
    expected = float(scipy_stats.beta.ppf(0.95, events + 1, trials - events))
    assert upper_bound(events, trials, 0.95) == pytest.approx(expected, rel=1e-8)


def test_zero_events_give_about_three_over_n_at_95_percent() -> None:
    assert upper_bound(0, 1000) == pytest.approx(3 / 1000, rel=0.005)
    assert upper_bound(0, 0) == 1.0


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("events", "trials"), [(x, n) for x, n in GRID if n <= 300])
def test_the_exact_comparison_agrees_with_scipy_s_binomial_cdf(events: int, trials: int, confidence: float) -> None:
    for rate in (0.001, 0.01, 0.05, 0.2, 0.5):
        cdf = float(scipy_stats.binom.cdf(events, trials, rate))
        alpha = 1 - confidence
        if abs(cdf - alpha) > 1e-12:  # away from the exact tie, floats decide the same way
            assert bound_at_most(events, trials, confidence, rate) is (cdf <= alpha)
            assert bound_at_most(events, trials, confidence, rate) is (upper_bound(events, trials, confidence) <= rate)


@pytest.mark.parametrize(("events", "trials", "confidence", "rate", "more"), [
    (0, 60, 0.95, 0.01, 239),   # 299 clean case-trials give a bound of 0.997 %
    (0, 0, 0.95, 0.01, 299),
    (0, 299, 0.95, 0.01, 0),
    (0, 20, 0.95, 0.05, 39),    # 59 trials
    (0, 10, 0.99, 0.001, 4593),  # 4603 trials
    (1, 20, 0.95, 0.05, 73),
])
def test_more_clean_trials_is_the_smallest_number_scipy_agrees_meets_the_requirement(
    events: int, trials: int, confidence: float, rate: float, more: int
) -> None:
    assert more_clean_trials(events, trials, confidence, rate) == more
    total = trials + more
    assert scipy_stats.beta.ppf(confidence, events + 1, total - events) <= rate
    if more:
        assert scipy_stats.beta.ppf(confidence, events + 1, total - 1 - events) > rate


def test_a_requirement_of_zero_cannot_be_met() -> None:
    assert more_clean_trials(0, 10, 0.95, 0.0) is None


MCNEMAR = [(b, c) for b in (0, 1, 2, 3, 5, 10, 25) for c in (0, 1, 2, 3, 5, 10, 25)]


@pytest.mark.parametrize(("fixed", "broken"), MCNEMAR)
def test_the_mcnemar_p_value_is_statsmodels_and_scipy_s(fixed: int, broken: int) -> None:
    table = [[7, fixed], [broken, 3]]
    expected = float(contingency.mcnemar(table, exact=True).pvalue)
    assert mcnemar_exact(fixed, broken) == pytest.approx(expected, rel=1e-12, abs=0)
    if fixed + broken:
        assert mcnemar_exact(fixed, broken) == pytest.approx(
            scipy_stats.binomtest(fixed, fixed + broken, 0.5).pvalue, rel=1e-12)
