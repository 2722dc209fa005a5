"""analyze_experiment: read out an A/B or holdout test with an honest verdict.

SQL functions read the arms and metrics (the warehouse's experiments, or a loaded table with one row per
participant); stats.py does the maths; the tool on top compares every arm with control, checks the sample ratio and
writes the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.experiments.formatting import p_text, value_text
from tools.analytics.experiments.stats import (
    ArmStats,
    bootstrap_means,
    detectable_lift,
    holm,
    mean_lift,
    proportion_lift,
    srm_p_value,
    two_proportion_ztest,
    welch_ttest,
)
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import is_numeric, quote, require_table, resolve_params

SRM_ALPHA = 0.001
SEGMENT_MIN_N = 30   # participants per arm and segment before a segment lift is shown
SEGMENT_LIMIT = 20   # largest segments shown


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


@dataclass(frozen=True)
class Source:
    """The participants to read: `sql` (with `args`) yields rows of (arm, one column per metric…, segment)."""

    sql: str
    args: list
    control: str
    metrics: list[str]
    label: str
    """How the summary names the experiment."""


@dataclass(frozen=True)
class Verdict:
    """What the readout concludes about the primary metric, and the sentence that says it."""

    kind: str
    """winner, worse, no_significant_difference or unreliable (sample ratio mismatch)."""
    text: str
    winner: str | None = None
    warning: str | None = None


# --- SQL -------------------------------------------------------------------------------------------------------------

def _source(con, params: ExperimentParams) -> Source:
    """Where the participants come from: the loaded `table` if given, else an experiment of the warehouse."""
    return _table_source(con, params) if params.table else _warehouse_source(con, params)


def _table_source(con, params: ExperimentParams) -> Source:
    """A loaded table with one row per participant."""
    params = resolve_params(con, params, columns=("variant_column", "metrics", "segment_by"))  # as typed, any case
    if not params.metrics:
        raise ToolError(f"Name the outcome column(s) of {params.table} in `metrics`, e.g. [\"converted\"].")
    segment = quote(params.segment_by) if params.segment_by else "NULL"
    columns = ", ".join(quote(m) for m in params.metrics)
    sql = (f"SELECT {quote(params.variant_column)}::VARCHAR AS arm, {columns}, {segment}::VARCHAR AS segment "
           f"FROM {quote(params.table)}")
    return Source(sql, [], params.control or "control", list(params.metrics),
                  f"{params.table} by {params.variant_column}")


def _warehouse_source(con, params: ExperimentParams) -> Source:
    """An experiment of the warehouse (the most recent one by default), segments from customers."""
    require_table(con, "experiments", ["experiment_id", "name", "control", "primary_metric", "start_date"])
    require_table(con, "experiment_assignments", ["experiment_id", "variant", "customer_id"])
    exp = con.execute("SELECT experiment_id, name, control, primary_metric FROM experiments "
                      "WHERE ? IS NULL OR experiment_id = ? ORDER BY start_date DESC NULLS LAST LIMIT 1",
                      [params.experiment_id, params.experiment_id]).fetchone()
    if exp is None:
        known = [r[0] for r in con.execute("SELECT experiment_id FROM experiments ORDER BY 1").fetchall()]
        raise ToolError(f"Unknown experiment {params.experiment_id!r}; the warehouse has {', '.join(known) or 'none'}.")
    experiment_id, name, control, primary = exp
    params = resolve_params(con, params, table_field=None, table="experiment_assignments", columns=("metrics",))
    params = resolve_params(con, params, table_field=None, table="customers", columns=("segment_by",))
    metrics = params.metrics or [primary or "converted"] + [m for m in ("converted", "revenue") if m != primary]
    segment = "NULL"
    if params.segment_by:
        require_table(con, "customers", [params.segment_by])
        segment = f"c.{quote(params.segment_by)}"
    columns = ", ".join(f"a.{quote(m)}" for m in metrics)
    require_table(con, "experiment_assignments", metrics)
    sql = (f"SELECT a.variant::VARCHAR AS arm, {columns}, {segment}::VARCHAR AS segment FROM experiment_assignments a "
           "LEFT JOIN customers c ON c.customer_id = a.customer_id WHERE a.experiment_id = ?")
    return Source(sql, [experiment_id], params.control or control or "control", metrics,
                  f"{experiment_id} \"{name}\"")


def _arm_counts(con, source: Source) -> dict[str, int]:
    """Participants per arm, arms in name order."""
    return dict(con.execute(f"SELECT arm, count(*) FROM ({source.sql}) WHERE arm IS NOT NULL GROUP BY arm "
                            "ORDER BY arm", source.args).fetchall())


def _metric_types(con, source: Source) -> dict[str, bool]:
    """Metric → binary? (0/1 or boolean); text metrics are refused."""
    out = {}
    for metric in source.metrics:
        column = quote(metric)
        kind, not_binary = con.execute(
            f"SELECT any_value(typeof({column})), count_if(TRY_CAST({column} AS DOUBLE) NOT IN (0, 1)) "
            f"FROM ({source.sql})", source.args).fetchone()
        if kind is not None and not is_numeric(kind):
            raise ToolError(f"Metric {metric!r} is {kind}; it must be numeric (a 0/1 flag or an amount).")
        out[metric] = not_binary == 0
    return out


def _arm_stats(con, source: Source, metric: str) -> dict[str, ArmStats]:
    """n, mean and sample variance of `metric` per arm."""
    column = quote(metric)
    return {arm: ArmStats(n, mean, var) for arm, n, mean, var in con.execute(
        f"SELECT arm, count({column}), avg({column}::DOUBLE), coalesce(var_samp({column}::DOUBLE), 0) "
        f"FROM ({source.sql}) WHERE arm IS NOT NULL GROUP BY arm", source.args).fetchall()}


def _value_counts(con, source: Source, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per arm (in name order), the distinct values of `metric` and how often each occurs: what the bootstrap needs."""
    column = quote(metric)
    rows = con.execute(f"SELECT arm, list(v ORDER BY v), list(c ORDER BY v) FROM (SELECT arm, {column}::DOUBLE AS v, "
                       f"count(*) AS c FROM ({source.sql}) WHERE {column} IS NOT NULL AND arm IS NOT NULL GROUP BY ALL) "
                       "GROUP BY arm ORDER BY arm", source.args).fetchall()
    return {arm: (np.array(values), np.array(counts, dtype=float)) for arm, values, counts in rows}


def _segment_cells(con, source: Source, metric: str) -> dict[str, dict[str, ArmStats]]:
    """Segment → arm → stats of `metric`, the largest segments first."""
    column = quote(metric)
    cells = con.execute(
        f"SELECT segment, arm, count({column}), avg({column}::DOUBLE), coalesce(var_samp({column}::DOUBLE), 0), "
        f"sum(count({column})) OVER (PARTITION BY segment) AS size FROM ({source.sql}) "
        "WHERE arm IS NOT NULL GROUP BY segment, arm ORDER BY size DESC, segment, arm", source.args).fetchall()
    by_segment: dict[str, dict[str, ArmStats]] = {}
    for segment, arm, n, mean, var, _ in cells:
        by_segment.setdefault(segment, {})[arm] = ArmStats(n, mean, var)
    return by_segment


def _control_sd(con, source: Source, metric: str) -> float:
    """Standard deviation of `metric` in the control arm."""
    return math.sqrt(con.execute(f"SELECT coalesce(var_samp({quote(metric)}::DOUBLE), 0) FROM ({source.sql}) "
                                 "WHERE arm = ?", [*source.args, source.control]).fetchone()[0])


# --- comparisons -----------------------------------------------------------------------------------------------------

def _compare(con, source: Source, metric: str, binary: bool, arms: list[str], level: float, draws: int,
             seed: int) -> list[dict]:
    """One row per arm: n, mean, and versus control the lift, its CI and the unadjusted p-value."""
    by_arm = _arm_stats(con, source, metric)
    control = by_arm[source.control]
    kind = "rate" if binary else "mean"
    rows = [{"metric": metric, "type": kind, "arm": source.control, "is_control": True, "n": control.n,
             "mean": control.mean}]
    boot = {}
    if not binary:
        rng = np.random.default_rng(seed)
        boot = {arm: bootstrap_means(values, counts, draws, rng)
                for arm, (values, counts) in _value_counts(con, source, metric).items()}
    for arm in arms:
        if arm == source.control:
            continue
        treatment = by_arm[arm]
        if min(control.n, treatment.n) < 2:
            raise ToolError(f"Arm {arm if treatment.n < 2 else source.control!r} has fewer than 2 observations "
                            f"of {metric}.")
        lift = (proportion_lift(treatment, control, level) if binary
                else mean_lift(treatment, control, boot[arm], boot[source.control], level))
        rows.append({"metric": metric, "type": kind, "arm": arm, "is_control": False, "n": treatment.n,
                     "mean": treatment.mean, "lift": lift.lift,
                     "lift_relative": (treatment.mean / control.mean - 1) if control.mean else None,
                     "ci_low": float(lift.ci_low), "ci_high": float(lift.ci_high),
                     "ci_relative_low": lift.ci_relative_low, "ci_relative_high": lift.ci_relative_high,
                     "p_value": 1.0 if math.isnan(lift.p_value) else lift.p_value})
    return rows


def _comparisons(con, source: Source, types: dict[str, bool], arms: list[str], level: float,
                 params: ExperimentParams) -> list[dict]:
    """Every metric's rows, with Holm-adjusted p-values across the treatment arms of each metric."""
    rows = []
    for i, metric in enumerate(source.metrics):
        compared = _compare(con, source, metric, types[metric], arms, level, params.bootstrap, seed=7 + i)
        adjusted = holm(np.array([row["p_value"] for row in compared[1:]]))
        for row, p_adjusted in zip(compared[1:], adjusted, strict=True):
            row.update(p_adjusted=float(p_adjusted), significant=bool(p_adjusted < params.alpha))
        rows += compared
    return rows


def _segments(con, source: Source, metric: str, binary: bool) -> list[dict]:
    """Exploratory lift of the primary metric per segment (unadjusted p-values, at least 30 per arm)."""
    out = []
    for segment, by_arm in list(_segment_cells(con, source, metric).items())[:SEGMENT_LIMIT]:
        control = by_arm.get(source.control)
        if control is None or control.n < SEGMENT_MIN_N:
            continue
        for arm, treatment in by_arm.items():
            if arm == source.control or treatment.n < SEGMENT_MIN_N:
                continue
            p_value = two_proportion_ztest(treatment, control) if binary else welch_ttest(treatment, control)
            out.append({"segment": segment, "arm": arm, "n": treatment.n, "n_control": control.n,
                        "mean": treatment.mean, "mean_control": control.mean, "lift": treatment.mean - control.mean,
                        "p_value": p_value})
    return out


def _srm(counts: dict[str, int], expected_split: dict[str, float] | None) -> float:
    """p-value of the sample-ratio check against the planned split (equal by default)."""
    split = expected_split or {arm: 1.0 for arm in counts}
    if set(split) != set(counts):
        raise ToolError(f"expected_split must name exactly the arms {', '.join(counts)}.")
    return srm_p_value([counts[arm] for arm in counts], [split[arm] for arm in counts])


# --- the readout -----------------------------------------------------------------------------------------------------

def _check_arms(counts: dict[str, int], source: Source) -> None:
    arms = list(counts)
    if not arms:
        raise ToolError(f"{source.label} has no participants.")
    if len(arms) < 2:
        raise ToolError(f"{source.label} has only one arm ({arms[0]!r}, {counts[arms[0]]:,} participants): there is "
                        "nothing to compare. An experiment needs a control and at least one treatment arm.")
    if source.control not in counts:
        raise ToolError(f"Control arm {source.control!r} not found in {source.label}; the arms are "
                        f"{', '.join(map(repr, arms))}. Pass control=… naming one of them.")


def _primary_text(lifts: list[dict], binary: bool, level: float) -> str:
    """One sentence per treatment arm on the primary metric."""
    text = ""
    for row in lifts:
        relative = f", {row['lift_relative']:+.1%}" if row["lift_relative"] is not None else ""
        word = "significant" if row["significant"] else "not significant"
        text += (f" {row['arm']}: {value_text(row['mean'], binary)} ({value_text(row['lift'], binary, True)}"
                 f"{relative}; {level:.1%} CI {value_text(row['ci_low'], binary, True)} to "
                 f"{value_text(row['ci_high'], binary, True)}; {p_text(row['p_adjusted'])}"
                 f"{' after Holm' if len(lifts) > 1 else ''}: {word}).")
    return text


def _verdict(con, source: Source, lifts: list[dict], binary: bool, control_mean: float, srm_p: float,
             min_arm: int, alpha: float) -> Verdict:
    """Unreliable (sample ratio mismatch), a winner, worse, or no significant difference with the test's MDE."""
    primary = source.metrics[0]
    wins = [row for row in lifts if row["significant"] and row["lift"] > 0]
    losses = [row for row in lifts if row["significant"] and row["lift"] < 0]
    if srm_p < SRM_ALPHA:
        return Verdict("unreliable", f" Verdict: do not trust this result: sample ratio mismatch (χ² {p_text(srm_p)}), "
                       "the arms are not split as planned; fix the assignment first.",
                       warning=f"Sample ratio mismatch (p = {srm_p:.2g}).")
    if wins:
        best = max(wins, key=lambda row: row["lift"])["arm"]
        return Verdict("winner", f" Verdict: {best} beats {source.control} on {primary}.", winner=best)
    text = f" Verdict: no arm beats {source.control} on {primary}"
    if losses:
        return Verdict("worse", text + f"; {', '.join(row['arm'] for row in losses)} is significantly worse.")
    sd = math.sqrt(control_mean * (1 - control_mean)) if binary else _control_sd(con, source, primary)
    mde = detectable_lift(sd, min_arm, alpha / len(lifts))
    return Verdict("no_significant_difference", text + ": the differences are within noise, so do not call a winner "
                   f"(this test could reliably detect lifts of about {value_text(mde, binary, True)} or more).")


def _secondary_text(rows: list[dict], metrics: list[str], types: dict[str, bool]) -> str:
    """One clause per treatment arm for each metric after the primary one."""
    text = ""
    for metric in metrics[1:]:
        lifts = [row for row in rows if row["metric"] == metric and not row["is_control"]]
        text += f" {metric}: " + "; ".join(
            f"{row['arm']} {value_text(row['lift'], types[metric], True)} ({p_text(row['p_adjusted'])}, "
            f"{'significant' if row['significant'] else 'not significant'})" for row in lifts) + "."
    return text


@register(example=ExperimentParams(experiment_id="EXP-FREESHIP"),
          key_metrics=("srm_p_value",),
          concepts={"readout": ["a/b test", "ab test", "split test", "experiment", "test result", "test results",
                                "readout", "read out", "winner", "win", "won"],
                    "significance": ["significant", "significance", "p-value", "p value", "confidence interval",
                                     "noise", "by chance", "real effect", "incremental"],
                    "srm": ["sample ratio", "srm", "balanced", "unbalanced", "imbalance", "imbalanced", "uneven",
                            "unequal", "50/50", "50:50", "traffic allocation", "assignment", "assigned"],
                    "arms": ["control", "treatment", "variant", "arm", "arms"]},
          synonyms={"alpha": ["significance level", "significance", "confidence level"]},
          requests=["Did the free shipping test win?", "Analyze experiment EXP-SUBJECT",
                    "What was the lift of our A/B test on conversion?", "Is the variant significantly better than "
                    "control?", "Read out the holdout test results with confidence intervals",
                    "Which subject line arm won the email test?", "Check the experiment for sample ratio mismatch",
                    "Did the treatment increase revenue per user?", "A/B test results by segment",
                    "Was the uplift from the email campaign statistically significant?",
                    "did the treatment group convert better than control in our latest test?",
                    "were users assigned to the test arms in the planned proportions?"])
def analyze_experiment(con: duckdb.DuckDBPyConnection, params: ExperimentParams) -> ExperimentResult:
    """Read out an A/B or holdout test: rates or means per arm, lift with CI, p-value (Holm), SRM check, verdict."""
    source = _source(con, params)
    try:
        counts = _arm_counts(con, source)
        types = _metric_types(con, source)
    except duckdb.Error as exc:
        raise ToolError(f"Could not read {source.label}: {str(exc).splitlines()[0]}") from exc
    _check_arms(counts, source)
    arms, control, primary = list(counts), source.control, source.metrics[0]
    level = 1 - params.alpha / (len(arms) - 1)
    rows = _comparisons(con, source, types, arms, level, params)
    srm_p = _srm(counts, params.expected_split)
    binary, control_mean = types[primary], rows[0]["mean"]
    lifts = [row for row in rows if row["metric"] == primary and not row["is_control"]]
    verdict = _verdict(con, source, lifts, binary, control_mean, srm_p, min(counts.values()), params.alpha)
    summary = (f"{source.label}: {sum(counts.values()):,} participants "
               f"({', '.join(f'{arm} {counts[arm]:,}' for arm in arms)}). {primary} in {control}: "
               f"{value_text(control_mean, binary)}." + _primary_text(lifts, binary, level) + verdict.text
               + _secondary_text(rows, source.metrics, types))
    warnings = [verdict.warning] if verdict.warning else []
    segments = _segments(con, source, primary, binary) if params.segment_by else []
    if segments:
        warnings.append("Segment lifts are exploratory (unadjusted p-values); confirm any segment finding in a new test.")
    metrics_out = {"arms": counts, "control": control, "primary_metric": primary, "verdict": verdict.kind,
                   "winner": verdict.winner, "srm_p_value": srm_p, "srm": srm_p < SRM_ALPHA,
                   "confidence_level": level, "alpha": params.alpha,
                   "metric_types": {m: "rate" if b else "mean" for m, b in types.items()}, "segments": segments}
    chart = charts.bar([{"arm": row["arm"], "mean": row["mean"]} for row in rows if row["metric"] == primary],
                       "arm", "mean", f"{primary} by arm", sort="x")
    return ExperimentResult(summary=summary, data=rows, metrics=metrics_out, chart=chart, warnings=warnings)
