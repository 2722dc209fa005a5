"""plan_experiment: size an A/B test (sample size and duration), or find the effect or power a given size allows.

The power maths is in stats.py; this module fills defaults from the warehouse, checks the inputs and writes the plan.
"""

from __future__ import annotations

import math
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools.analytics.experiments.formatting import value_text
from tools.analytics.experiments.stats import (
    achieved_power,
    cohens_h,
    detectable_effect_size,
    lift_from_cohens_h,
    sample_size,
)
from tools.registry import ToolError, ToolResult, register


class PlanParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    metric: Literal["proportion", "mean"] = "proportion"
    """A rate (conversion, click, open) or a mean (revenue per user)."""
    baseline: float | None = Field(None, gt=0)
    """Control's expected rate (0–1) for a proportion, or its mean for a mean metric (default for a proportion:
    the control conversion rate of the latest experiment in the warehouse)."""
    std: float | None = Field(None, gt=0)
    """Standard deviation per participant (needed for a mean metric)."""
    mde: float | None = Field(None, gt=0)
    """Smallest absolute lift worth detecting (0.005 = +0.5 pp for a rate)."""
    relative_mde: float | None = Field(None, gt=0)
    """Smallest relative lift worth detecting (0.1 = +10 % over the baseline)."""
    sample_size_per_arm: int | None = Field(None, ge=2)
    """Participants per arm available; without an effect size, the tool returns the detectable effect."""
    alpha: float = Field(0.05, gt=0, lt=0.5)
    """Two-sided significance level (split over the treatment arms, Bonferroni, when there are several)."""
    power: float = Field(0.8, gt=0.5, lt=1)
    """Chance of detecting the effect if it is real."""
    arms: int = Field(2, ge=2, le=10)
    """Number of arms including control."""
    ratio: float = Field(1.0, gt=0, le=10)
    """Participants in each treatment arm per participant in control."""
    daily_traffic: float | None = Field(None, gt=0)
    """Eligible participants per day (all arms together), to turn sample size into duration."""


class PlanResult(ToolResult):
    pass


def _latest_control_rate(con: duckdb.DuckDBPyConnection) -> tuple[str, float] | None:
    """(experiment id, control conversion rate) of the most recent experiment in the warehouse."""
    return con.execute(
        "SELECT a.experiment_id, avg(a.converted::INT) FROM experiment_assignments a JOIN experiments e "
        "USING (experiment_id) WHERE a.variant = e.control GROUP BY 1, e.start_date "
        "ORDER BY e.start_date DESC NULLS LAST LIMIT 1").fetchone()


def _order_values(con: duckdb.DuckDBPyConnection, days: int = 90) -> tuple | None:
    """(mean, standard deviation, orders per day, first day, last day) of order values over the last `days` days
    of orders: the baseline of a basket-size (order value) test when none is given."""
    row = con.execute(f"""SELECT avg(revenue), stddev_samp(revenue), count(*) / {days}, min(order_date)::DATE,
        max(order_date)::DATE FROM orders WHERE order_date > (SELECT max(order_date) FROM orders) - {days}""").fetchone()
    return row if row and row[0] and row[1] else None


def _with_defaults(con, params: PlanParams) -> tuple[PlanParams, list[str]]:
    """Fill a missing baseline from the warehouse and a missing effect with +10 %; the notes say so."""
    notes: list[str] = []
    if params.metric == "mean" and con is not None and (params.baseline is None or params.std is None) and (
            basket := _order_values(con)) is not None:
        mean, std, per_day, start, end = basket
        params = params.model_copy(update={"baseline": params.baseline or mean, "std": params.std or std,
                                           "daily_traffic": params.daily_traffic or per_day})
        notes.append(f"Mean {mean:,.2f} and standard deviation {std:,.2f} are the order values of {start}..{end} "
                     f"({per_day:,.0f} orders a day); pass `baseline`, `std` and `daily_traffic` for another metric.")
    if params.baseline is None:
        row = None if params.metric == "mean" else _latest_control_rate(con)
        if not row or not row[1]:
            raise ToolError("Give `baseline`: the control's expected rate (0.04 = 4 %) or mean.")
        params = params.model_copy(update={"baseline": float(row[1])})
        notes.append(f"Baseline {params.baseline:.2%} is the control conversion rate of {row[0]}; pass `baseline` "
                     "to plan for another metric.")
    if params.mde is None and params.relative_mde is None and params.sample_size_per_arm is None:
        params = params.model_copy(update={"relative_mde": 0.10})
        notes.append("No effect size given: planned for a +10 % relative lift (pass `relative_mde` or `mde`).")
    return params, notes


def _effect(params: PlanParams) -> float | None:
    """The absolute lift to detect (None: find the detectable one), after checking the inputs fit together."""
    t_test = params.metric == "mean"
    if t_test and params.std is None:
        raise ToolError("A mean metric needs `std`, the standard deviation per participant (e.g. of revenue).")
    if not t_test and params.baseline >= 1:
        raise ToolError("For a proportion, `baseline` is a rate between 0 and 1 (0.04 = 4 %).")
    if params.mde is not None and params.relative_mde is not None:
        raise ToolError("Give either `mde` (absolute) or `relative_mde`, not both.")
    effect = params.mde if params.mde is not None else (
        params.relative_mde * params.baseline if params.relative_mde is not None else None)
    if effect is None and params.sample_size_per_arm is None:
        raise ToolError("Give the smallest lift worth detecting (`mde` or `relative_mde`) to get a sample size, "
                        "or `sample_size_per_arm` to get the detectable effect.")
    if not t_test and effect is not None and params.baseline + effect >= 1:
        raise ToolError(f"baseline {params.baseline} + lift {effect} reaches 100 %; choose a smaller effect.")
    return effect


def _effect_size(params: PlanParams, effect: float) -> float:
    """Cohen's d of a mean lift, or Cohen's h of a rate lift."""
    return effect / params.std if params.metric == "mean" else cohens_h(params.baseline, effect)


def _size_for_effect(params: PlanParams, effect: float, alpha: float) -> tuple[dict, str]:
    """Participants needed per arm to detect `effect`: the metrics and the sentence."""
    rate = params.metric == "proportion"
    es = _effect_size(params, effect)
    n_exact = sample_size(es, alpha, params.power, params.ratio, t_test=not rate)
    n_control = math.ceil(n_exact)
    n_treatment = math.ceil(n_exact * params.ratio)
    total = n_control + n_treatment * (params.arms - 1)
    found = dict(effect=effect, effect_size=es, n_control_exact=n_exact, sample_size_control=n_control,
                 sample_size_treatment=n_treatment, sample_size_per_arm=max(n_control, n_treatment),
                 total_sample_size=total)
    summary = (f"To detect a lift of {value_text(effect, rate, signed=True)} over a baseline of "
               f"{value_text(params.baseline, rate)} with {params.power:.0%} power at α = {params.alpha}"
               f"{' (Bonferroni over arms)' if params.arms > 2 else ''}, you need {n_control:,} participants in "
               f"control and {n_treatment:,} in each of {params.arms - 1} treatment arm(s): {total:,} in total.")
    return found, summary


def _effect_for_size(params: PlanParams, alpha: float) -> tuple[dict, str]:
    """The smallest lift `sample_size_per_arm` participants detect: the metrics and the sentence."""
    rate = params.metric == "proportion"
    n_control = params.sample_size_per_arm
    es = detectable_effect_size(n_control, alpha, params.power, params.ratio, t_test=not rate)
    mde = lift_from_cohens_h(params.baseline, es) if rate else es * params.std
    n_treatment = math.ceil(n_control * params.ratio)
    found = dict(effect_size=es, mde=mde, relative_mde=mde / params.baseline, sample_size_control=n_control,
                 total_sample_size=n_control + n_treatment * (params.arms - 1))
    summary = (f"With {n_control:,} participants in control (and {n_treatment:,} per treatment arm), the "
               f"smallest lift you can reliably detect ({params.power:.0%} power, α = {params.alpha}) is "
               f"{value_text(mde, rate, signed=True)} ({mde / params.baseline:+.1%} relative).")
    return found, summary


def _power_for_size(params: PlanParams, effect: float, alpha: float) -> tuple[dict, str]:
    """The chance `sample_size_per_arm` participants detect `effect`: the metrics and the sentence."""
    rate = params.metric == "proportion"
    n_control = params.sample_size_per_arm
    power = achieved_power(_effect_size(params, effect), n_control, alpha, params.ratio, t_test=not rate)
    found = dict(effect=effect, achieved_power=power, sample_size_control=n_control,
                 total_sample_size=n_control + math.ceil(n_control * params.ratio) * (params.arms - 1))
    summary = (f"With {n_control:,} participants per arm, the chance of detecting a lift of "
               f"{value_text(effect, rate, signed=True)} is {power:.0%} (aim for {params.power:.0%}).")
    return found, summary


def _duration(daily_traffic: float, total: int) -> tuple[dict, str]:
    """Days (and whole weeks) to enrol `total` participants."""
    days = math.ceil(total / daily_traffic)
    weeks = math.ceil(days / 7)
    return dict(duration_days=days, duration_weeks=weeks), (
        f" At {daily_traffic:,.0f} eligible participants a day that takes {days} days; run whole weeks ({weeks}) "
        "so every weekday is covered, and do not stop early on a good-looking interim.")


@register(example=PlanParams(baseline=0.04, relative_mde=0.2, daily_traffic=2000),
          key_metrics=("sample_size_per_arm", "total_sample_size", "duration_days", "baseline", "effect", "power"),
          concepts={"sample_size": ["sample size", "how many users", "how many visitors", "how many people",
                                    "per arm", "per group", "per variant", "participants"],
                    "power": ["power", "powered", "power analysis", "minimum detectable effect", "mde", "detectable",
                              "detect a"],
                    "duration": ["how long", "how many weeks", "how many days", "duration", "run the test",
                                 "run a test", "run the experiment"]},
          synonyms={"alpha": ["significance level", "significance", "alpha"],
                    "power": ["power"],
                    "std": ["standard deviation", "std dev", "sd"],
                    "mde": ["absolute lift", "absolute difference", "absolute change"],
                    "relative_mde": ["relative lift", "relative mde", "lift", "uplift", "improvement", "increase",
                                     "mde"],
                    "baseline": ["baseline", "conversion rate", "cvr", "open rate", "click rate", "base rate",
                                 "conversion", "conversions", "converts at", "we convert at", "control rate",
                                 "control conversion", "control group rate", "rate in control", "purchase rate",
                                 "buy rate", "order rate",
                                 "current rate", "average", "mean", "revenue per user", "average basket",
                                 "average order value", "aov", "basket value", "order value"],
                    "proportion": ["conversion rate", "cvr", "open rate", "click rate", "click-through rate",
                                   "ctr", "rate", "conversion", "conversions", "converts", "point", "points",
                                   "pp"],
                    "daily_traffic": ["per day", "daily"],
                    "sample_size_per_arm": ["per arm", "per group", "per variant"],
                    "mean": ["average", "mean", "per user", "basket size", "order value", "aov", "spend per"]},
          requests=["How many users do we need for an A/B test?", "sample size for a conversion test with 4 % baseline",
                    "How long should the experiment run to detect a 10 % lift?",
                    "What is the minimum detectable effect with 5,000 users per arm?",
                    "power calculation for a revenue per user test", "Plan a test with three arms",
                    "Is 2 weeks enough to detect a 0.5 pp change in click rate?",
                    "How big should the holdout group be?", "test duration and sample size for a holdout test",
                    "how many shoppers must each variant get before we can call a winner?",
                    "is our traffic enough to see a 3 % improvement within a month?"])
def plan_experiment(con: duckdb.DuckDBPyConnection, params: PlanParams) -> PlanResult:
    """Size an A/B test: sample size per arm, duration from daily traffic, or the minimum detectable effect."""
    params, notes = _with_defaults(con, params)
    effect = _effect(params)
    alpha = params.alpha / (params.arms - 1)
    metrics: dict = {"metric": params.metric, "baseline": params.baseline, "alpha_per_comparison": alpha,
                     **({"std": params.std} if params.metric == "mean" else {}),
                     "power": params.power, "arms": params.arms, "ratio": params.ratio}
    if effect is not None and params.sample_size_per_arm is None:
        found, summary = _size_for_effect(params, effect, alpha)
    elif effect is None:
        found, summary = _effect_for_size(params, alpha)
    else:
        found, summary = _power_for_size(params, effect, alpha)
    metrics.update(found)
    if params.daily_traffic:
        found, sentence = _duration(params.daily_traffic, metrics["total_sample_size"])
        metrics.update(found)
        summary += sentence
    return PlanResult(summary=summary, data=[metrics], metrics=metrics, warnings=notes)
