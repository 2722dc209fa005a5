"""Experiment statistics over counts, means and variances, with no SQL: the two-proportion z test, Welch's t test,
the bootstrap of means, confidence intervals of a lift, Holm's correction, the sample-ratio check (chi-square
goodness of fit), and power, sample size and detectable effect for planning a test.

tests/tools/test_experiment_stats.py checks every function against statsmodels and scipy.

Names follow the formulas: `treatment` and `control` are the two arms compared; `n_control` is the control's size
and `ratio` the treatment's size per control participant (statsmodels' `nobs1` and `ratio`); `es` is a standardised
effect size, Cohen's h for a rate and Cohen's d for a mean. scipy is imported inside the functions: `load_tools`
imports every tool module, and importing scipy at module level would slow `northstar` start-up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArmStats:
    """Summary of one arm on one metric."""

    n: int
    """Observations (non-missing values)."""
    mean: float
    """Mean, or the rate for a 0/1 metric."""
    var: float
    """Sample variance (ddof=1), 0 when there is a single value."""


@dataclass(frozen=True)
class Lift:
    """Treatment minus control on one metric: the difference, its confidence interval and two-sided p-value."""

    lift: float
    ci_low: float
    ci_high: float
    ci_relative_low: float | None
    """Interval of treatment / control − 1; None when it is undefined (a zero rate or mean)."""
    ci_relative_high: float | None
    p_value: float
    """Unadjusted; `holm` adjusts a family of them."""


def z_critical(level: float) -> float:
    """Two-sided standard-normal quantile of a confidence level (1.96 for 0.95)."""
    from scipy import stats

    return float(stats.norm.ppf(0.5 + level / 2))


def two_proportion_ztest(treatment: ArmStats, control: ArmStats) -> float:
    """Two-sided p-value of the pooled two-proportion z test (statsmodels' proportions_ztest); 1 without variance."""
    from scipy import stats

    pooled = (treatment.mean * treatment.n + control.mean * control.n) / (treatment.n + control.n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / treatment.n + 1 / control.n))
    return float(2 * stats.norm.sf(abs(treatment.mean - control.mean) / se)) if se > 0 else 1.0


def welch_ttest(treatment: ArmStats, control: ArmStats) -> float:
    """Two-sided p-value of Welch's t test from summary statistics (scipy's ttest_ind(equal_var=False) on the raw
    values); 1 when neither arm varies."""
    from scipy import stats

    if treatment.var + control.var <= 0:
        return 1.0
    return float(stats.ttest_ind_from_stats(treatment.mean, math.sqrt(treatment.var), treatment.n, control.mean,
                                            math.sqrt(control.var), control.n, equal_var=False).pvalue)


def proportion_lift(treatment: ArmStats, control: ArmStats, level: float) -> Lift:
    """Difference of two rates: Wald interval (unpooled), log-ratio interval of the relative lift, pooled z test.

    The intervals are statsmodels' confint_proportions_2indep with method "wald" (difference) and "log" (ratio)."""
    rate1, n1, rate0, n0 = treatment.mean, treatment.n, control.mean, control.n
    z = z_critical(level)
    se = math.sqrt(rate1 * (1 - rate1) / n1 + rate0 * (1 - rate0) / n0)
    rel_low = rel_high = None
    if rate0 > 0 and rate1 > 0:
        se_log = math.sqrt((1 - rate1) / (n1 * rate1) + (1 - rate0) / (n0 * rate0))
        log_ratio = math.log(rate1 / rate0)
        rel_low, rel_high = math.exp(log_ratio - z * se_log) - 1, math.exp(log_ratio + z * se_log) - 1
    return Lift(lift=rate1 - rate0, ci_low=rate1 - rate0 - z * se, ci_high=rate1 - rate0 + z * se,
                ci_relative_low=rel_low, ci_relative_high=rel_high, p_value=two_proportion_ztest(treatment, control))


def bootstrap_means(values: np.ndarray, counts: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `draws` bootstrap resamples of a sample given as distinct `values` seen `counts` times.

    Resampling the distinct values with multinomial counts is exactly resampling the rows, and fast when values
    repeat (most participants spend 0)."""
    n = int(counts.sum())
    return rng.multinomial(n, counts / counts.sum(), size=draws) @ values / n


def bootstrap_interval(treatment: np.ndarray, control: np.ndarray,
                       level: float) -> tuple[float, float, float | None, float | None]:
    """Percentile intervals of the difference and of the ratio − 1 of paired bootstrap means (draw i of each arm).

    Returns (low, high, relative low, relative high); the relative bounds are None when every control draw is 0."""
    diff = treatment - control
    percentiles = [50 - 50 * level, 50 + 50 * level]
    low, high = np.percentile(diff, percentiles)
    ratio = np.divide(treatment, control, out=np.full(diff.size, np.nan), where=control != 0) - 1
    if not np.isfinite(ratio).any():
        return float(low), float(high), None, None
    rel_low, rel_high = np.nanpercentile(ratio, percentiles)
    return float(low), float(high), float(rel_low), float(rel_high)


def mean_lift(treatment: ArmStats, control: ArmStats, boot_treatment: np.ndarray, boot_control: np.ndarray,
              level: float) -> Lift:
    """Difference of two means: bootstrap percentile intervals (see `bootstrap_means`), Welch's t test."""
    low, high, rel_low, rel_high = bootstrap_interval(boot_treatment, boot_control, level)
    return Lift(lift=treatment.mean - control.mean, ci_low=low, ci_high=high, ci_relative_low=rel_low,
                ci_relative_high=rel_high, p_value=welch_ttest(treatment, control))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (statsmodels' multipletests(method="holm"))."""
    order = np.argsort(p_values)
    size = p_values.size
    adjusted = np.minimum(1.0, np.maximum.accumulate(p_values[order] * (size - np.arange(size))))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def srm_p_value(counts: Sequence[int], shares: Sequence[float]) -> float:
    """Sample-ratio check: p-value of the chi-square goodness of fit of arm sizes to the planned shares (any scale)."""
    from scipy import stats

    expected = np.asarray(shares, dtype=float) / sum(shares) * sum(counts)
    return float(stats.chisquare(list(counts), expected).pvalue)


def detectable_lift(sd: float, n_per_arm: float, alpha: float, power: float = 0.8) -> float:
    """Smallest difference of means a two-sided z test at `alpha` detects with `power` in equal arms of n_per_arm
    (the far tail ignored): (z₁₋α/₂ + z_power) · sd · √(2 / n)."""
    from scipy import stats

    return (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd * math.sqrt(2 / n_per_arm)


def cohens_h(baseline: float, lift: float) -> float:
    """Cohen's h of a rate moving from baseline to baseline + lift: 2 asin √p₂ − 2 asin √p₁."""
    return 2 * math.asin(math.sqrt(baseline + lift)) - 2 * math.asin(math.sqrt(baseline))


def lift_from_cohens_h(baseline: float, es: float) -> float:
    """The lift over baseline whose Cohen's h is es (the inverse of `cohens_h`)."""
    return math.sin(math.asin(math.sqrt(baseline)) + es / 2) ** 2 - baseline


def achieved_power(es: float, n_control: float, alpha: float, ratio: float, t_test: bool) -> float:
    """Two-sided power, as statsmodels' NormalIndPower (Cohen's h) and TTestIndPower (Cohen's d, t_test) compute it."""
    from scipy import stats

    nobs = 1.0 / (1.0 / n_control + 1.0 / (n_control * ratio))
    nc = es * math.sqrt(nobs)
    if not t_test:
        crit = stats.norm.isf(alpha / 2)
        return float(stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc))
    df = n_control * (1 + ratio) - 2
    crit = stats.t.isf(alpha / 2, df)
    power = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    if not np.isfinite(power):  # nct fails numerically at very large df or nc; the normal tail is exact there
        power = stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc)
    return float(power)


def sample_size(es: float, alpha: float, power: float, ratio: float, t_test: bool) -> float:
    """Control size (not rounded) at which `achieved_power` reaches `power` (statsmodels' solve_power for nobs1)."""
    from scipy import optimize, stats

    guess = (stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) ** 2 * (1 + 1 / ratio) / es ** 2
    return optimize.brentq(lambda n: achieved_power(es, n, alpha, ratio, t_test) - power,
                           max(2.0 / (1 + ratio) + 1.0, guess / 2), 2 * guess + 10)


def detectable_effect_size(n_control: float, alpha: float, power: float, ratio: float, t_test: bool) -> float:
    """Effect size at which `achieved_power` reaches `power` (statsmodels' solve_power for effect_size)."""
    from scipy import optimize, stats

    guess = (stats.norm.isf(alpha / 2) + stats.norm.ppf(power)) * math.sqrt(1 / n_control + 1 / (n_control * ratio))
    return optimize.brentq(lambda es: achieved_power(es, n_control, alpha, ratio, t_test) - power,
                           guess / 3, guess * 3)
