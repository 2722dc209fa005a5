"""Every function of tools/analytics/experiments/stats.py against statsmodels and scipy, on random inputs.

Closed forms agree to a relative 1e-9. Root finding (sample size, detectable effect) is checked two ways: the power
at our root equals the target to 1e-9 under statsmodels' own power function, and the root equals statsmodels'
solve_power to the precision of statsmodels' solver (1e-6 for nobs1; 1e-3 for effect_size, whose root misses the
target power by up to ~1e-4). The bootstrap is Monte Carlo on both sides: it is compared
with exact bootstrap moments and with scipy.stats.bootstrap within a fraction of the standard error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp
from statsmodels.stats.gof import chisquare as sm_chisquare
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

from tools.analytics.experiments.stats import (
    ArmStats,
    achieved_power,
    bootstrap_interval,
    bootstrap_means,
    cohens_h,
    detectable_effect_size,
    detectable_lift,
    holm,
    lift_from_cohens_h,
    mean_lift,
    proportion_lift,
    sample_size,
    srm_p_value,
    two_proportion_ztest,
    welch_ttest,
    z_critical,
)

SEEDS = range(5)
RTOL = 1e-9


def _rates(rng) -> tuple[ArmStats, ArmStats, tuple[int, int, int, int]]:
    """A random treatment and control on a 0/1 metric, and their (successes, n) for statsmodels."""
    n1, n0 = (int(x) for x in rng.integers(200, 20_000, size=2))
    base = rng.uniform(0.01, 0.5)
    count1 = int(rng.binomial(n1, base * rng.uniform(0.8, 1.3)))
    count0 = int(rng.binomial(n0, base))
    return ArmStats(n1, count1 / n1, 0.0), ArmStats(n0, count0 / n0, 0.0), (count1, n1, count0, n0)


def _amounts(rng, n: int, scale: float) -> np.ndarray:
    """Revenue-like values: mostly 0, some whole amounts (so values repeat, as the bootstrap expects)."""
    return np.where(rng.random(n) < 0.3, np.round(rng.gamma(2.0, scale, n)), 0.0)


def _summary(values: np.ndarray) -> ArmStats:
    return ArmStats(values.size, float(values.mean()), float(values.var(ddof=1)))


@pytest.mark.parametrize("level", [0.9, 0.95, 0.975, 0.99, 0.9983])
def test_z_critical_matches_scipy_interval(level):
    assert z_critical(level) == pytest.approx(sp.norm.interval(level)[1], rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_proportion_ztest_matches_statsmodels(seed):
    treatment, control, (count1, n1, count0, n0) = _rates(np.random.default_rng(seed))
    expected = proportions_ztest([count1, count0], [n1, n0])[1]
    assert two_proportion_ztest(treatment, control) == pytest.approx(expected, rel=RTOL)


def test_two_proportion_ztest_without_variance_is_one():
    assert two_proportion_ztest(ArmStats(50, 0.0, 0.0), ArmStats(80, 0.0, 0.0)) == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_proportion_lift_matches_statsmodels_intervals(seed):
    rng = np.random.default_rng(seed)
    treatment, control, (count1, n1, count0, n0) = _rates(rng)
    level = float(rng.choice([0.9, 0.95, 0.975]))
    lift = proportion_lift(treatment, control, level)
    low, high = confint_proportions_2indep(count1, n1, count0, n0, method="wald", compare="diff", alpha=1 - level)
    rel_low, rel_high = confint_proportions_2indep(count1, n1, count0, n0, method="log", compare="ratio",
                                                   alpha=1 - level)
    assert lift.lift == pytest.approx(count1 / n1 - count0 / n0, rel=RTOL)
    assert (lift.ci_low, lift.ci_high) == pytest.approx((low, high), rel=RTOL)
    assert (lift.ci_relative_low, lift.ci_relative_high) == pytest.approx((rel_low - 1, rel_high - 1), rel=RTOL)
    assert lift.p_value == pytest.approx(proportions_ztest([count1, count0], [n1, n0])[1], rel=RTOL)


def test_proportion_lift_has_no_relative_interval_at_a_zero_rate():
    lift = proportion_lift(ArmStats(100, 0.05, 0.0), ArmStats(100, 0.0, 0.0), 0.95)
    assert lift.ci_relative_low is None and lift.ci_relative_high is None


@pytest.mark.parametrize("seed", SEEDS)
def test_welch_ttest_matches_scipy_on_raw_values(seed):
    rng = np.random.default_rng(seed)
    treatment = _amounts(rng, int(rng.integers(30, 5000)), rng.uniform(5, 80))
    control = _amounts(rng, int(rng.integers(30, 5000)), rng.uniform(5, 80))
    expected = sp.ttest_ind(treatment, control, equal_var=False).pvalue
    assert welch_ttest(_summary(treatment), _summary(control)) == pytest.approx(expected, rel=RTOL)


def test_welch_ttest_without_variance_is_one():  # scipy returns nan here; the readout reports "no evidence"
    assert welch_ttest(ArmStats(10, 3.0, 0.0), ArmStats(10, 3.0, 0.0)) == 1.0


def _value_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distinct, counts = np.unique(values, return_counts=True)
    return distinct, counts.astype(float)


@pytest.mark.parametrize("seed", SEEDS)
def test_bootstrap_means_have_the_exact_bootstrap_moments(seed):
    """The bootstrap distribution of a mean has mean x̄ and variance σ²/n (σ² with ddof=0): exact, no sampling."""
    rng = np.random.default_rng(seed)
    values = _amounts(rng, int(rng.integers(200, 3000)), 40.0)
    draws = bootstrap_means(*_value_counts(values), 20_000, np.random.default_rng(seed + 100))
    sd_exact = values.std(ddof=0) / math.sqrt(values.size)
    assert draws.mean() == pytest.approx(values.mean(), abs=0.05 * sd_exact)   # MC error ≈ 0.007 sd
    assert draws.std() == pytest.approx(sd_exact, rel=0.03)                     # MC error ≈ 0.005


@pytest.mark.parametrize("seed", SEEDS)
def test_bootstrap_interval_and_mean_lift_match_scipy_bootstrap(seed):
    """Percentile intervals of the difference and the ratio of means, against scipy.stats.bootstrap (independent
    resampling of each arm, percentile method). Both are Monte Carlo: agreement within 0.2 standard errors."""
    rng = np.random.default_rng(seed)
    treatment = _amounts(rng, int(rng.integers(500, 2000)), 45.0)
    control = _amounts(rng, int(rng.integers(500, 2000)), 40.0)
    level = 0.95
    draw_rng = np.random.default_rng(seed + 100)
    boot_treatment = bootstrap_means(*_value_counts(treatment), 10_000, draw_rng)
    boot_control = bootstrap_means(*_value_counts(control), 10_000, draw_rng)
    low, high, rel_low, rel_high = bootstrap_interval(boot_treatment, boot_control, level)

    def reference(statistic):
        return sp.bootstrap((treatment, control), statistic, vectorized=True, method="percentile",
                            confidence_level=level, n_resamples=10_000, batch=500, random_state=seed).confidence_interval

    diff = reference(lambda a, b, axis: a.mean(axis) - b.mean(axis))
    ratio = reference(lambda a, b, axis: a.mean(axis) / b.mean(axis) - 1)
    se = math.sqrt(treatment.var(ddof=1) / treatment.size + control.var(ddof=1) / control.size)
    ratio_of_means = treatment.mean() / control.mean()  # delta-method standard error of the ratio
    se_ratio = ratio_of_means * math.sqrt(treatment.var(ddof=1) / (treatment.size * treatment.mean() ** 2)
                                          + control.var(ddof=1) / (control.size * control.mean() ** 2))
    assert (low, high) == pytest.approx((diff.low, diff.high), abs=0.2 * se)
    assert (rel_low, rel_high) == pytest.approx((ratio.low, ratio.high), abs=0.2 * se_ratio)
    lift = mean_lift(_summary(treatment), _summary(control), boot_treatment, boot_control, level)
    assert (lift.ci_low, lift.ci_high, lift.ci_relative_low, lift.ci_relative_high) == (low, high, rel_low, rel_high)
    assert lift.lift == pytest.approx(treatment.mean() - control.mean(), rel=RTOL)
    assert lift.p_value == pytest.approx(sp.ttest_ind(treatment, control, equal_var=False).pvalue, rel=RTOL)


def test_bootstrap_interval_has_no_relative_bounds_when_control_is_always_zero():
    assert bootstrap_interval(np.array([1.0, 2.0, 3.0]), np.zeros(3), 0.95)[2:] == (None, None)


@pytest.mark.parametrize("seed", SEEDS)
def test_holm_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p_values = rng.uniform(0, 0.2, size=int(rng.integers(1, 12))) ** rng.uniform(1, 4)
    if p_values.size > 2:
        p_values[1] = p_values[0]  # a tie
    expected = multipletests(p_values, method="holm")[1]
    np.testing.assert_allclose(holm(p_values), expected, rtol=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_srm_p_value_matches_scipy_and_statsmodels_chisquare(seed):
    rng = np.random.default_rng(seed)
    arms = int(rng.integers(2, 6))
    shares = rng.uniform(0.5, 2.0, size=arms)
    counts = rng.multinomial(int(rng.integers(1_000, 200_000)), shares / shares.sum() * 0.98 + 0.02 / arms)
    expected_counts = shares / shares.sum() * counts.sum()
    p_value = srm_p_value(counts.tolist(), shares.tolist())
    assert p_value == pytest.approx(sp.chisquare(counts, expected_counts).pvalue, rel=RTOL)
    assert p_value == pytest.approx(sm_chisquare(counts, expected_counts)[1], rel=RTOL)
    assert srm_p_value(counts.tolist(), (10 * shares).tolist()) == pytest.approx(p_value, rel=RTOL)  # any scale


@pytest.mark.parametrize("seed", SEEDS)
def test_detectable_lift_reaches_the_power_in_statsmodels(seed):
    """A one-sided z test at α/2 (the two-sided test without its far tail) has exactly the target power."""
    rng = np.random.default_rng(seed)
    sd, n, alpha, power = rng.uniform(0.1, 100), int(rng.integers(100, 100_000)), rng.uniform(0.01, 0.1), 0.8
    es = detectable_lift(sd, n, alpha, power) / sd
    achieved = NormalIndPower().power(es, n, alpha / 2, ratio=1, alternative="larger")
    assert achieved == pytest.approx(power, rel=RTOL)
    two_sided = NormalIndPower().solve_power(nobs1=n, alpha=alpha, power=power, ratio=1)
    assert es == pytest.approx(two_sided, rel=1e-4)  # the far tail moves it by less than this


@pytest.mark.parametrize("seed", SEEDS)
def test_cohens_h_and_its_inverse_match_statsmodels(seed):
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0.005, 0.6)
    lift = baseline * rng.uniform(0.01, 0.6)
    h = cohens_h(baseline, lift)
    assert h == pytest.approx(proportion_effectsize(baseline + lift, baseline), rel=RTOL)
    assert lift_from_cohens_h(baseline, h) == pytest.approx(lift, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("t_test, reference", [(False, NormalIndPower), (True, TTestIndPower)])
def test_achieved_power_matches_statsmodels(seed, t_test, reference):
    """Effects drawn so the noncentrality es·√(n₀n₁/(n₀+n₁)) is 0.5–4: powers between about 0.01 and 0.995."""
    rng = np.random.default_rng(seed)
    n, alpha, ratio = rng.uniform(10, 50_000), rng.uniform(0.005, 0.2), rng.uniform(0.3, 4)
    es = rng.uniform(0.5, 4) / math.sqrt(n * ratio / (1 + ratio))
    expected = reference().power(es, n, alpha, ratio=ratio)
    assert 0.005 < expected < 0.999
    assert achieved_power(es, n, alpha, ratio, t_test) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("es, n", [(0.3, 5_000), (0.05, 1e6), (0.01, 1e7)])
def test_achieved_power_of_a_t_test_falls_back_to_the_normal_tail_where_statsmodels_gives_nan(es, n):
    assert math.isnan(TTestIndPower().power(es, n, 0.05))  # scipy's nct fails far in the tail
    assert achieved_power(es, n, 0.05, 1.0, t_test=True) == pytest.approx(NormalIndPower().power(es, n, 0.05),
                                                                         rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("t_test, reference", [(False, NormalIndPower), (True, TTestIndPower)])
def test_sample_size_matches_statsmodels_solve_power(seed, t_test, reference):
    rng = np.random.default_rng(seed)
    es, alpha, power, ratio = rng.uniform(0.02, 0.8), rng.uniform(0.01, 0.1), rng.uniform(0.7, 0.95), rng.uniform(0.5, 3)
    n = sample_size(es, alpha, power, ratio, t_test)
    assert reference().power(es, n, alpha, ratio=ratio) == pytest.approx(power, rel=RTOL)
    assert n == pytest.approx(reference().solve_power(effect_size=es, alpha=alpha, power=power, ratio=ratio), rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("t_test, reference", [(False, NormalIndPower), (True, TTestIndPower)])
def test_detectable_effect_size_matches_statsmodels_solve_power(seed, t_test, reference):
    rng = np.random.default_rng(seed)
    n, alpha, power, ratio = rng.uniform(20, 50_000), rng.uniform(0.01, 0.1), rng.uniform(0.7, 0.95), rng.uniform(0.5, 3)
    es = detectable_effect_size(n, alpha, power, ratio, t_test)
    assert reference().power(es, n, alpha, ratio=ratio) == pytest.approx(power, rel=RTOL)
    # statsmodels' solver for effect_size stops early (its root misses the target power by up to ~1e-4): 1e-3
    assert es == pytest.approx(reference().solve_power(nobs1=n, alpha=alpha, power=power, ratio=ratio), rel=1e-3)
