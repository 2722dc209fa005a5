"""analyze_experiment and plan_experiment: A/B and holdout results with honest verdicts, and test sizing."""

from __future__ import annotations

import math
from typing import Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import is_numeric, quote, require_table

SRM_ALPHA = 0.001

class ExperimentParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str | None = None
    """Experiment in the warehouse (default: the most recent one). Ignored with `table`."""
    table: str | None = None
    """A loaded table with one row per participant instead of the warehouse experiments."""
    variant_column: str = "variant"
    """Column naming each participant's arm (with `table`)."""
    control: str | None = None
    """Name of the control arm (default: the experiment's control, else "control")."""
    metrics: list[str] | None = None
    """Outcome columns; 0/1 or true/false columns are rates, others means (default: converted, revenue)."""
    segment_by: str | None = None
    """Break the primary metric down by this column (a customers column, or a column of `table`)."""
    alpha: float = Field(0.05, gt=0, lt=0.5)
    """Significance level (family-wise across arms, Holm)."""
    expected_split: dict[str, float] | None = None
    """Planned traffic share per arm for the sample-ratio check (default: equal)."""
    bootstrap: int = Field(2000, ge=200, le=20000)
    """Bootstrap resamples for the confidence intervals of continuous metrics (fixed seed)."""


class ExperimentResult(ToolResult):
    pass


def _pfmt(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _num(x: float, binary: bool, signed: bool = False) -> str:
    if binary:
        return f"{100 * x:+.2f} pp" if signed else f"{100 * x:.2f} %"
    return f"{x:+,.4g}" if signed else f"{x:,.4g}"


def _holm(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (p.size - np.arange(p.size))))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def _boot_means(values: np.ndarray, counts: np.ndarray, n: int, draws: int, rng) -> np.ndarray:
    """Bootstrap means by resampling distinct values with multinomial counts (exact, fast for repeated values)."""
    return rng.multinomial(n, counts / counts.sum(), size=draws) @ values / n


def _source(con, p: ExperimentParams) -> tuple[str, list, str, list[str], str, str]:
    """SQL of (arm, metrics…, segment) rows, its parameters, control, metrics, label and segment expression."""
    if p.table:
        require_table(con, p.table, [p.variant_column, *(p.metrics or []), *([p.segment_by] if p.segment_by else [])])
        if not p.metrics:
            raise ToolError(f"Name the outcome column(s) of {p.table} in `metrics`, e.g. [\"converted\"].")
        seg = quote(p.segment_by) if p.segment_by else "NULL"
        cols = ", ".join(quote(m) for m in p.metrics)
        sql = f"SELECT {quote(p.variant_column)}::VARCHAR AS arm, {cols}, {seg}::VARCHAR AS segment FROM {quote(p.table)}"
        return sql, [], p.control or "control", list(p.metrics), f"{p.table} by {p.variant_column}", seg
    require_table(con, "experiments", ["experiment_id", "name", "control", "primary_metric", "start_date"])
    require_table(con, "experiment_assignments", ["experiment_id", "variant", "customer_id"])
    exp = con.execute("SELECT experiment_id, name, control, primary_metric FROM experiments "
                      "WHERE ? IS NULL OR experiment_id = ? ORDER BY start_date DESC NULLS LAST LIMIT 1",
                      [p.experiment_id, p.experiment_id]).fetchone()
    if exp is None:
        known = [r[0] for r in con.execute("SELECT experiment_id FROM experiments ORDER BY 1").fetchall()]
        raise ToolError(f"Unknown experiment {p.experiment_id!r}; the warehouse has {', '.join(known) or 'none'}.")
    metrics = p.metrics or [exp[3] or "converted"] + [m for m in ("converted", "revenue") if m != exp[3]]
    seg = "NULL"
    if p.segment_by:
        require_table(con, "customers", [p.segment_by])
        seg = f"c.{quote(p.segment_by)}"
    cols = ", ".join(f"a.{quote(m)}" for m in metrics)
    require_table(con, "experiment_assignments", metrics)
    sql = (f"SELECT a.variant::VARCHAR AS arm, {cols}, {seg}::VARCHAR AS segment FROM experiment_assignments a "
           "LEFT JOIN customers c ON c.customer_id = a.customer_id WHERE a.experiment_id = ?")
    return sql, [exp[0]], p.control or exp[2] or "control", metrics, f"{exp[0]} \"{exp[1]}\"", seg


def _compare(con, sql: str, args: list, metric: str, binary: bool, arms: list[str], control: str, level: float,
             draws: int, seed: int) -> list[dict]:
    """One row per arm: n, mean, and versus control the lift, its CI and the unadjusted p-value."""
    from scipy import stats  # lazy: keeps `northstar` start-up fast

    m = quote(metric)
    agg = {r[0]: r[1:] for r in con.execute(
        f"SELECT arm, count({m}), avg({m}::DOUBLE), coalesce(var_samp({m}::DOUBLE), 0) FROM ({sql}) "
        "WHERE arm IS NOT NULL GROUP BY arm", args).fetchall()}
    z = stats.norm.ppf(0.5 + level / 2)
    n0, m0, v0 = agg[control]
    rows = [{"metric": metric, "type": "rate" if binary else "mean", "arm": control, "is_control": True,
             "n": n0, "mean": m0}]
    dist = {}
    if not binary:
        rng = np.random.default_rng(seed)
        for arm, v, c in con.execute(f"SELECT arm, list(v ORDER BY v), list(c ORDER BY v) FROM (SELECT arm, "
                                     f"{m}::DOUBLE AS v, count(*) AS c FROM ({sql}) WHERE {m} IS NOT NULL AND "
                                     "arm IS NOT NULL GROUP BY ALL) GROUP BY arm ORDER BY arm", args).fetchall():
            dist[arm] = _boot_means(np.array(v), np.array(c, dtype=float), int(sum(c)), draws, rng)
    for arm in arms:
        if arm == control:
            continue
        n1, m1, v1 = agg[arm]
        if min(n0, n1) < 2:
            raise ToolError(f"Arm {arm if n1 < 2 else control!r} has fewer than 2 observations of {metric}.")
        if binary:
            se = math.sqrt(m1 * (1 - m1) / n1 + m0 * (1 - m0) / n0)
            pool = (m1 * n1 + m0 * n0) / (n1 + n0)
            se0 = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n0))
            pval = 2 * stats.norm.sf(abs(m1 - m0) / se0) if se0 > 0 else 1.0
            lo, hi = m1 - m0 - z * se, m1 - m0 + z * se
            if m0 > 0 and m1 > 0:
                sl = math.sqrt((1 - m1) / (n1 * m1) + (1 - m0) / (n0 * m0))
                rlo, rhi = math.exp(math.log(m1 / m0) - z * sl) - 1, math.exp(math.log(m1 / m0) + z * sl) - 1
            else:
                rlo = rhi = None
        else:
            pval = float(stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m0, math.sqrt(v0), n0,
                                                    equal_var=False).pvalue) if v0 + v1 > 0 else 1.0
            diff = dist[arm] - dist[control]
            q = [50 - 50 * level, 50 + 50 * level]
            lo, hi = np.percentile(diff, q)
            rel = np.divide(dist[arm], dist[control], out=np.full(diff.size, np.nan), where=dist[control] != 0) - 1
            rlo, rhi = np.nanpercentile(rel, q) if np.isfinite(rel).any() else (None, None)
        rows.append({"metric": metric, "type": "rate" if binary else "mean", "arm": arm, "is_control": False,
                     "n": n1, "mean": m1, "lift": m1 - m0, "lift_relative": (m1 / m0 - 1) if m0 else None,
                     "ci_low": float(lo), "ci_high": float(hi), "ci_relative_low": rlo, "ci_relative_high": rhi,
                     "p_value": 1.0 if math.isnan(pval) else pval})
    return rows


def _types(con, sql: str, args: list, metrics: list[str]) -> dict[str, bool]:
    """Metric → binary? (0/1 or boolean); text metrics are refused."""
    out = {}
    for m in metrics:
        q = quote(m)
        kind, bad = con.execute(f"SELECT any_value(typeof({q})), count_if(TRY_CAST({q} AS DOUBLE) NOT IN (0, 1)) "
                                f"FROM ({sql})", args).fetchone()
        if kind is not None and not is_numeric(kind):
            raise ToolError(f"Metric {m!r} is {kind}; it must be numeric (a 0/1 flag or an amount).")
        out[m] = bad == 0
    return out


def _segments(con, sql: str, args: list, metric: str, binary: bool, control: str) -> list[dict]:
    """Exploratory lift of the primary metric per segment (unadjusted p-values, at least 30 per arm)."""
    from scipy import stats

    q = quote(metric)
    cells = con.execute(f"SELECT segment, arm, count({q}), avg({q}::DOUBLE), coalesce(var_samp({q}::DOUBLE), 0), "
                        f"sum(count({q})) OVER (PARTITION BY segment) AS size FROM ({sql}) "
                        "WHERE arm IS NOT NULL GROUP BY segment, arm ORDER BY size DESC, segment, arm", args).fetchall()
    by_seg: dict = {}
    for seg, arm, n, mean, var, _ in cells:
        by_seg.setdefault(seg, {})[arm] = (n, mean, var)
    out = []
    for seg, arms in list(by_seg.items())[:20]:
        if control not in arms or arms[control][0] < 30:
            continue
        n0, m0, v0 = arms[control]
        for arm, (n1, m1, v1) in arms.items():
            if arm == control or n1 < 30:
                continue
            if binary:
                pool = (m1 * n1 + m0 * n0) / (n1 + n0)
                se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n0))
                pval = 2 * stats.norm.sf(abs(m1 - m0) / se) if se > 0 else 1.0
            else:
                se = math.sqrt(v1 / n1 + v0 / n0)
                pval = float(stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m0, math.sqrt(v0), n0,
                                                        equal_var=False).pvalue) if se > 0 else 1.0
            out.append({"segment": seg, "arm": arm, "n": n1, "n_control": n0, "mean": m1, "mean_control": m0,
                        "lift": m1 - m0, "p_value": pval})
    return out


@register(example=ExperimentParams(experiment_id="EXP-FREESHIP"),
          key_metrics=("srm_p_value",),
          requests=["Did the free shipping test win?", "Analyze experiment EXP-SUBJECT",
                    "What was the lift of our A/B test on conversion?", "Is the variant significantly better than "
                    "control?", "Read out the holdout test results with confidence intervals",
                    "Which subject line arm won the email test?", "Check the experiment for sample ratio mismatch",
                    "Did the treatment increase revenue per user?", "A/B test results by segment",
                    "Was the uplift from the email campaign statistically significant?"])
def analyze_experiment(con: duckdb.DuckDBPyConnection, p: ExperimentParams) -> ExperimentResult:
    """Read out an A/B or holdout test: rates or means per arm, lift with CI, p-value (Holm), SRM check, verdict."""
    from scipy import stats

    sql, args, control, metrics, label, _ = _source(con, p)
    try:
        counts = dict(con.execute(f"SELECT arm, count(*) FROM ({sql}) WHERE arm IS NOT NULL GROUP BY arm "
                                  "ORDER BY arm", args).fetchall())
        types = _types(con, sql, args, metrics)
    except duckdb.Error as exc:
        raise ToolError(f"Could not read {label}: {str(exc).splitlines()[0]}") from exc
    arms = list(counts)
    if not arms:
        raise ToolError(f"{label} has no participants.")
    if len(arms) < 2:
        raise ToolError(f"{label} has only one arm ({arms[0]!r}, {counts[arms[0]]:,} participants): there is nothing "
                        "to compare. An experiment needs a control and at least one treatment arm.")
    if control not in counts:
        raise ToolError(f"Control arm {control!r} not found in {label}; the arms are {', '.join(map(repr, arms))}. "
                        "Pass control=… naming one of them.")
    treat = [a for a in arms if a != control]
    level = 1 - p.alpha / len(treat)
    rows = []
    for i, metric in enumerate(metrics):
        r = _compare(con, sql, args, metric, types[metric], arms, control, level, p.bootstrap, seed=7 + i)
        adj = _holm(np.array([x["p_value"] for x in r[1:]]))
        for x, a in zip(r[1:], adj, strict=True):
            x.update(p_adjusted=float(a), significant=bool(a < p.alpha))
        rows += r
    total = sum(counts.values())
    split = p.expected_split or {a: 1.0 for a in arms}
    if set(split) != set(arms):
        raise ToolError(f"expected_split must name exactly the arms {', '.join(arms)}.")
    share = np.array([split[a] for a in arms]) / sum(split.values())
    srm_p = float(stats.chisquare([counts[a] for a in arms], share * total).pvalue)
    primary, binary = metrics[0], types[metrics[0]]
    ctrl = rows[0]
    prim = [r for r in rows if r["metric"] == primary and not r["is_control"]]
    summary = (f"{label}: {total:,} participants ({', '.join(f'{a} {counts[a]:,}' for a in arms)}). "
               f"{primary} in {control}: {_num(ctrl['mean'], binary)}.")
    for r in prim:
        rel = f", {r['lift_relative']:+.1%}" if r["lift_relative"] is not None else ""
        word = ("significant" if r["significant"] else "not significant")
        summary += (f" {r['arm']}: {_num(r['mean'], binary)} ({_num(r['lift'], binary, True)}{rel}; {level:.1%} CI "
                    f"{_num(r['ci_low'], binary, True)} to {_num(r['ci_high'], binary, True)}; "
                    f"{_pfmt(r['p_adjusted'])}{' after Holm' if len(treat) > 1 else ''}: {word}).")
    wins = [r for r in prim if r["significant"] and r["lift"] > 0]
    losses = [r for r in prim if r["significant"] and r["lift"] < 0]
    warnings = []
    if srm_p < SRM_ALPHA:
        verdict = "unreliable"
        summary += (f" Verdict: do not trust this result: sample ratio mismatch (χ² {_pfmt(srm_p)}), the arms are "
                    "not split as planned; fix the assignment first.")
        warnings.append(f"Sample ratio mismatch (p = {srm_p:.2g}).")
    elif wins:
        best = max(wins, key=lambda r: r["lift"])
        verdict = "winner"
        summary += f" Verdict: {best['arm']} beats {control} on {primary}."
    else:
        verdict = "worse" if losses else "no_significant_difference"
        n_min = min(counts.values())
        sd = math.sqrt(ctrl["mean"] * (1 - ctrl["mean"])) if binary else math.sqrt(
            con.execute(f"SELECT coalesce(var_samp({quote(primary)}::DOUBLE), 0) FROM ({sql}) WHERE arm = ?",
                        [*args, control]).fetchone()[0])
        mde = (stats.norm.ppf(1 - p.alpha / (2 * len(treat))) + stats.norm.ppf(0.8)) * sd * math.sqrt(2 / n_min)
        summary += (f" Verdict: no arm beats {control} on {primary}"
                    + (f"; {', '.join(r['arm'] for r in losses)} is significantly worse." if losses else
                       f": the differences are within noise, so do not call a winner (this test could reliably "
                       f"detect lifts of about {_num(mde, binary, True)} or more)."))
    for metric in metrics[1:]:
        sub = [r for r in rows if r["metric"] == metric and not r["is_control"]]
        summary += f" {metric}: " + "; ".join(
            f"{r['arm']} {_num(r['lift'], types[metric], True)} ({_pfmt(r['p_adjusted'])}, "
            f"{'significant' if r['significant'] else 'not significant'})" for r in sub) + "."
    segments = _segments(con, sql, args, primary, binary, control) if p.segment_by else []
    if segments:
        warnings.append("Segment lifts are exploratory (unadjusted p-values); confirm any segment finding in a new test.")
    metrics_out = {"arms": counts, "control": control, "primary_metric": primary, "verdict": verdict,
                   "winner": max(wins, key=lambda r: r["lift"])["arm"] if wins and verdict == "winner" else None,
                   "srm_p_value": srm_p, "srm": srm_p < SRM_ALPHA, "confidence_level": level, "alpha": p.alpha,
                   "metric_types": {m: "rate" if b else "mean" for m, b in types.items()}, "segments": segments}
    chart = charts.bar([{"arm": r["arm"], "mean": r["mean"]} for r in rows if r["metric"] == primary], "arm", "mean",
                       f"{primary} by arm", sort="x")
    return ExperimentResult(summary=summary, data=rows, metrics=metrics_out, chart=chart, warnings=warnings)


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


def _power(es: float, n1: float, alpha: float, ratio: float, t_test: bool) -> float:
    """Two-sided power, as statsmodels' NormalIndPower (Cohen's h) and TTestIndPower (Cohen's d) compute it."""
    from scipy import stats

    nobs = 1.0 / (1.0 / n1 + 1.0 / (n1 * ratio))
    nc = es * math.sqrt(nobs)
    if not t_test:
        crit = stats.norm.isf(alpha / 2)
        return float(stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc))
    df = n1 * (1 + ratio) - 2
    crit = stats.t.isf(alpha / 2, df)
    power = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    if not np.isfinite(power):  # nct fails numerically at very large df or nc; the normal tail is exact there
        power = stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc)
    return float(power)


@register(example=PlanParams(baseline=0.04, relative_mde=0.2, daily_traffic=2000),
          key_metrics=("sample_size_per_arm", "total_sample_size", "duration_days", "baseline", "effect", "power"),
          requests=["How many users do we need for an A/B test?", "sample size for a conversion test with 4 % baseline",
                    "How long should the experiment run to detect a 10 % lift?",
                    "What is the minimum detectable effect with 5,000 users per arm?",
                    "power calculation for a revenue per user test", "Plan a test with three arms",
                    "Is 2 weeks enough to detect a 0.5 pp change in click rate?",
                    "How big should the holdout group be?", "test duration and sample size for a holdout test"])
def plan_experiment(con: duckdb.DuckDBPyConnection, p: PlanParams) -> PlanResult:
    """Size an A/B test: sample size per arm, duration from daily traffic, or the minimum detectable effect."""
    from scipy import optimize, stats

    t_test = p.metric == "mean"
    notes: list[str] = []
    if p.baseline is None:
        row = None if t_test else con.execute(
            "SELECT a.experiment_id, avg(a.converted::INT) FROM experiment_assignments a JOIN experiments e "
            "USING (experiment_id) WHERE a.variant = e.control GROUP BY 1, e.start_date "
            "ORDER BY e.start_date DESC NULLS LAST LIMIT 1").fetchone()
        if not row or not row[1]:
            raise ToolError("Give `baseline`: the control's expected rate (0.04 = 4 %) or mean.")
        p = p.model_copy(update={"baseline": float(row[1])})
        notes.append(f"Baseline {p.baseline:.2%} is the control conversion rate of {row[0]}; pass `baseline` "
                     "to plan for another metric.")
    if p.mde is None and p.relative_mde is None and p.sample_size_per_arm is None:
        p = p.model_copy(update={"relative_mde": 0.10})
        notes.append("No effect size given: planned for a +10 % relative lift (pass `relative_mde` or `mde`).")
    if t_test and p.std is None:
        raise ToolError("A mean metric needs `std`, the standard deviation per participant (e.g. of revenue).")
    if not t_test and p.baseline >= 1:
        raise ToolError("For a proportion, `baseline` is a rate between 0 and 1 (0.04 = 4 %).")
    if p.mde is not None and p.relative_mde is not None:
        raise ToolError("Give either `mde` (absolute) or `relative_mde`, not both.")
    effect = p.mde if p.mde is not None else (p.relative_mde * p.baseline if p.relative_mde is not None else None)
    if effect is None and p.sample_size_per_arm is None:
        raise ToolError("Give the smallest lift worth detecting (`mde` or `relative_mde`) to get a sample size, "
                        "or `sample_size_per_arm` to get the detectable effect.")
    if not t_test and effect is not None and p.baseline + effect >= 1:
        raise ToolError(f"baseline {p.baseline} + lift {effect} reaches 100 %; choose a smaller effect.")
    alpha = p.alpha / (p.arms - 1)
    scale = p.std if t_test else None

    def unit(x: float) -> str:
        return _num(x, not t_test, signed=True)

    def size(eff: float) -> float:  # Cohen's d, or Cohen's h = 2 asin√p2 − 2 asin√p1
        return eff / scale if t_test else 2 * math.asin(math.sqrt(p.baseline + eff)) - 2 * math.asin(
            math.sqrt(p.baseline))

    metrics: dict = {"metric": p.metric, "baseline": p.baseline, "alpha_per_comparison": alpha, "power": p.power,
                     "arms": p.arms, "ratio": p.ratio}
    if effect is not None and p.sample_size_per_arm is None:
        es = size(effect)
        guess = (stats.norm.isf(alpha / 2) + stats.norm.ppf(p.power)) ** 2 * (1 + 1 / p.ratio) / es ** 2
        n_exact = optimize.brentq(lambda n: _power(es, n, alpha, p.ratio, t_test) - p.power,
                                  max(2.0 / (1 + p.ratio) + 1.0, guess / 2), 2 * guess + 10)
        n1 = math.ceil(n_exact)
        n_treat = math.ceil(n_exact * p.ratio)
        total = n1 + n_treat * (p.arms - 1)
        metrics.update(effect=effect, effect_size=es, n_control_exact=n_exact, sample_size_control=n1,
                       sample_size_treatment=n_treat, sample_size_per_arm=max(n1, n_treat), total_sample_size=total)
        summary = (f"To detect a lift of {unit(effect)} over a baseline of {_num(p.baseline, not t_test)}"
                   f" with {p.power:.0%} power at α = {p.alpha}{' (Bonferroni over arms)' if p.arms > 2 else ''}, "
                   f"you need {n1:,} participants in control and {n_treat:,} in each of {p.arms - 1} treatment "
                   f"arm(s): {total:,} in total.")
    elif effect is None:
        n1 = p.sample_size_per_arm
        guess = (stats.norm.isf(alpha / 2) + stats.norm.ppf(p.power)) * math.sqrt(1 / n1 + 1 / (n1 * p.ratio))
        es = optimize.brentq(lambda e: _power(e, n1, alpha, p.ratio, t_test) - p.power, guess / 3, guess * 3)
        mde = es * scale if t_test else math.sin(math.asin(math.sqrt(p.baseline)) + es / 2) ** 2 - p.baseline
        total = n1 + math.ceil(n1 * p.ratio) * (p.arms - 1)
        metrics.update(effect_size=es, mde=mde, relative_mde=mde / p.baseline, sample_size_control=n1,
                       total_sample_size=total)
        summary = (f"With {n1:,} participants in control (and {math.ceil(n1 * p.ratio):,} per treatment arm), the "
                   f"smallest lift you can reliably detect ({p.power:.0%} power, α = {p.alpha}) is {unit(mde)} "
                   f"({mde / p.baseline:+.1%} relative).")
    else:
        n1 = p.sample_size_per_arm
        achieved = _power(size(effect), n1, alpha, p.ratio, t_test)
        total = n1 + math.ceil(n1 * p.ratio) * (p.arms - 1)
        metrics.update(effect=effect, achieved_power=achieved, sample_size_control=n1, total_sample_size=total)
        summary = (f"With {n1:,} participants per arm, the chance of detecting a lift of {unit(effect)} is "
                   f"{achieved:.0%} (aim for {p.power:.0%}).")
    if p.daily_traffic:
        days = math.ceil(total / p.daily_traffic)
        weeks = math.ceil(days / 7)
        metrics.update(duration_days=days, duration_weeks=weeks)
        summary += (f" At {p.daily_traffic:,.0f} eligible participants a day that takes {days} days; run whole "
                    f"weeks ({weeks}) so every weekday is covered, and do not stop early on a good-looking interim.")
    return PlanResult(summary=summary, data=[metrics], metrics=metrics, warnings=notes)
