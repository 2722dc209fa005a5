"""measure_campaign: did a launched campaign work? Its incremental effect, read against its randomised holdout.

One SQL query sums each arm (members, converters, revenue and its square, e-mail clickers) over the orders and
e-mail events that arrived in the campaign's window after the send; the statistics are the experiment readout's
(tools/analytics/experiments/stats.py, tested against statsmodels): the Wald interval of the difference in
conversion rate, Welch's interval of the difference in revenue per recipient, the chi-square sample-ratio check.
Each measurement is kept in `campaign_outcomes`, where plan_campaign reads past lifts (docs/campaigns.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools.analytics.experiments.formatting import value_text
from tools.analytics.experiments.stats import (
    ArmStats,
    detectable_effect_size,
    lift_from_cohens_h,
    proportion_lift,
    srm_p_value,
)
from tools.common import money
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import data_end, table_exists

SRM_ALPHA = 0.001
LEVEL = 0.95
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")


class MeasureParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str | None = Field(None, max_length=80)
    """Launched campaign id or exact name (default: the most recent campaign sent by `until`)."""
    goal: str | None = Field(None, max_length=300)
    """The campaign in words ("the December win-back"): the most recent sent campaign whose goal, name or month
    matches (ignored when `campaign_id` is given)."""
    until: date | None = None
    """Last day of data to read (default: the last day with data)."""


class MeasureResult(ToolResult):
    pass


@dataclass(frozen=True)
class Arm:
    n: int
    converters: int
    revenue: float
    revenue_sq: float
    clickers: int

    @property
    def revenue_stats(self) -> ArmStats:
        mean = self.revenue / self.n
        var = max(0.0, (self.revenue_sq - self.n * mean ** 2) / (self.n - 1)) if self.n > 1 else 0.0
        return ArmStats(self.n, mean, var)


def welch_interval(treated: ArmStats, control: ArmStats, level: float = LEVEL) -> tuple[float, float, float]:
    """Difference of means with Welch's t interval (statsmodels CompareMeans.tconfint_diff(usevar="unequal")):
    (difference, low, high)."""
    from scipy import stats

    a, b = treated.var / treated.n, control.var / control.n
    diff = treated.mean - control.mean
    if a + b <= 0:
        return diff, diff, diff
    df = (a + b) ** 2 / (a ** 2 / (treated.n - 1) + b ** 2 / (control.n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(a + b)
    return diff, diff - half, diff + half


def find_campaign(con: duckdb.DuckDBPyConnection, params: MeasureParams, until: date) -> tuple:
    """(campaign_id, name, goal, channel, send_at, holdout_pct, window_days, cost) of the campaign meant."""
    if not table_exists(con, "campaign_launches"):
        raise ToolError("No launched campaigns: plan one with plan_campaign and launch it with launch_campaign.")
    cols = "campaign_id, name, goal, channel, send_at, holdout_pct, window_days, cost"
    if params.campaign_id:
        row = con.execute(f"SELECT {cols} FROM campaign_launches WHERE campaign_id = ? OR lower(name) = lower(?) "
                          "ORDER BY send_at DESC LIMIT 1", [params.campaign_id, params.campaign_id]).fetchone()
        if row:
            return row
    rows = con.execute(f"SELECT {cols} FROM campaign_launches WHERE send_at::DATE <= ? ORDER BY send_at DESC",
                       [until]).fetchall()
    if params.goal and not params.campaign_id:
        rows = _matching(rows, params.goal) or rows
    if not rows or params.campaign_id:
        known = [r[0] for r in con.execute("SELECT campaign_id FROM campaign_launches ORDER BY send_at DESC "
                                           "LIMIT 8").fetchall()]
        what = f"No campaign {params.campaign_id!r}" if params.campaign_id else f"No campaign was sent by {until}"
        raise ToolError(f"{what}; launched campaigns: {', '.join(known) or 'none'}.")
    return rows[0]


def _matching(rows: list[tuple], text: str) -> list[tuple]:
    """The campaigns a description fits: the month named, and the goal (phrase bank) or a word of the name."""
    from tools.analytics.content import resolve_goal

    low = text.lower()
    month = next((i + 1 for i, m in enumerate(MONTHS) if re.search(rf"\b({m}|{m[:3]})\b", low)), None)
    goal = resolve_goal(text)
    words = set(re.findall(r"[a-z]{4,}", low)) - set(MONTHS)
    fits = [r for r in rows if (month is None or r[4].month == month)
            and (goal == "general" or r[2] == goal or words & set(re.findall(r"[a-z]{4,}", r[1].lower())))]
    return fits


def arm_sums(con: duckdb.DuckDBPyConnection, campaign_id: str, until: date) -> dict[str, Arm]:
    """Per arm, over the window after the send (and not past `until`): members, converters (≥ 1 order),
    revenue and its square per member, members who clicked an e-mail. All in SQL."""
    rows = con.execute("""
        WITH c AS (SELECT send_at, send_at::DATE AS first_day,
                          least(send_at::DATE + window_days, ?::DATE + 1) AS stop FROM campaign_launches
                   WHERE campaign_id = ?),
        m AS (SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ?),
        o AS (SELECT o.customer_id, sum(o.revenue) AS revenue FROM orders o JOIN m USING (customer_id), c
              WHERE o.order_date >= c.first_day AND o.order_date < c.stop GROUP BY 1),
        e AS (SELECT DISTINCT e.customer_id FROM events e JOIN m USING (customer_id), c
              WHERE e.event_type = 'email_click' AND e.event_time >= c.send_at AND e.event_time < c.stop)
        SELECT m.arm, count(*), count(o.customer_id), coalesce(sum(o.revenue), 0),
               coalesce(sum(o.revenue * o.revenue), 0), count(e.customer_id)
        FROM m LEFT JOIN o USING (customer_id) LEFT JOIN e USING (customer_id) GROUP BY 1""",
                       [until, campaign_id, campaign_id]).fetchall()
    return {arm: Arm(int(n), int(conv), float(rev), float(rev2), int(clicks))
            for arm, n, conv, rev, rev2, clicks in rows}


def measure(con: duckdb.DuckDBPyConnection, params: MeasureParams) -> tuple[dict, list[str]]:
    """The measurement's metrics and its warnings (no sentences, nothing saved)."""
    last = data_end(con)
    if last is None:
        raise ToolError("There is no dated data yet. Run `northstar init --demo` or load your tables.")
    until = min(params.until or last, last)
    cid, name, goal, channel, send_at, holdout_pct, window, cost = find_campaign(con, params, until)
    arms = arm_sums(con, cid, until)
    treated, held = arms.get("treated"), arms.get("holdout")
    if not treated or not held or treated.n < 2 or held.n < 2:
        raise ToolError(f"Campaign {cid} has no holdout or no recipients recorded, so its effect cannot be measured "
                        "against a holdout.")
    elapsed = max(0, min(window, (until - send_at.date()).days + 1))
    rate = proportion_lift(ArmStats(treated.n, treated.converters / treated.n, 0.0),
                           ArmStats(held.n, held.converters / held.n, 0.0), LEVEL)
    rpr, rpr_low, rpr_high = welch_interval(treated.revenue_stats, held.revenue_stats)
    srm_p = srm_p_value([treated.n, held.n], [1 - holdout_pct, holdout_pct])
    es = detectable_effect_size(held.n, 0.05, 0.8, treated.n / held.n, t_test=False)
    base = held.converters / held.n
    metrics = {
        "campaign_id": cid, "name": name, "goal": goal, "channel": channel, "send_at": send_at,
        "window_days": window, "days_elapsed": elapsed, "measured_until": until,
        "treated": treated.n, "holdout": held.n, "rate_treated": treated.converters / treated.n,
        "rate_holdout": base, "lift": rate.lift, "ci_low": rate.ci_low, "ci_high": rate.ci_high,
        "relative_lift": rate.lift / base if base else None, "p_value": rate.p_value,
        "incremental_conversions": rate.lift * treated.n,
        "incremental_conversions_low": rate.ci_low * treated.n, "incremental_conversions_high": rate.ci_high * treated.n,
        "revenue_per_recipient_treated": treated.revenue_stats.mean,
        "revenue_per_recipient_holdout": held.revenue_stats.mean,
        "revenue_per_recipient_lift": rpr, "revenue_per_recipient_ci_low": rpr_low,
        "revenue_per_recipient_ci_high": rpr_high, "incremental_revenue": rpr * treated.n,
        "incremental_revenue_low": rpr_low * treated.n, "incremental_revenue_high": rpr_high * treated.n,
        "click_rate_treated": treated.clickers / treated.n, "click_rate_holdout": held.clickers / held.n,
        "holdout_share": held.n / (treated.n + held.n), "planned_holdout_share": holdout_pct,
        "srm_p_value": srm_p, "sample_ratio_ok": srm_p >= SRM_ALPHA,
        "detectable_lift": lift_from_cohens_h(base, es) if 0 < base < 1 else None,
        "significant": rate.ci_low > 0 or rate.ci_high < 0, "complete": elapsed >= window, "cost": cost,
        "roi": rpr * treated.n / cost if cost else None,
        "roi_low": rpr_low * treated.n / cost if cost else None,
        "roi_high": rpr_high * treated.n / cost if cost else None}
    metrics["conclusive"] = metrics["complete"] and metrics["sample_ratio_ok"]
    warnings = []
    if not metrics["sample_ratio_ok"]:
        warnings.append(f"Sample ratio mismatch: {held.n / (treated.n + held.n):.1%} held out against "
                        f"{holdout_pct:.0%} planned (p = {srm_p:.2g}); the assignment may be broken, so the lift "
                        "is not trustworthy.")
    if not metrics["complete"]:
        warnings.append(f"Only {elapsed} of the {window} days of the window have data: an interim reading, not "
                        "a result; wait for the window to close before deciding.")
    return metrics, warnings


def save_outcome(con: duckdb.DuckDBPyConnection, m: dict) -> str | None:
    """Keep the measurement in campaign_outcomes (one row per campaign and day of data); a warning if it cannot."""
    from tools.analytics.customers.runs import read_only

    if read_only(con):
        return "The warehouse is open read-only, so the outcome was not kept in campaign_outcomes."
    con.execute("INSERT OR REPLACE INTO campaign_outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [m["campaign_id"], m["measured_until"], m["channel"], m["goal"], m["treated"], m["holdout"],
                 m["rate_treated"], m["rate_holdout"], m["lift"], m["ci_low"], m["ci_high"],
                 m["incremental_revenue"], m["roi"], m["days_elapsed"], m["conclusive"]])
    return None


def past_lifts(con: duckdb.DuckDBPyConnection, channel: str, goal: str, today: date, keep: bool = True) -> list[dict]:
    """The latest measured outcome of every past campaign with this channel and goal. Sent campaigns whose window
    has closed but that were never measured are measured now (and kept in campaign_outcomes when `keep`)."""
    unmeasured = con.execute("""SELECT campaign_id FROM campaign_launches l WHERE channel = ? AND goal = ?
        AND send_at::DATE + window_days - 1 <= ? AND NOT EXISTS (SELECT 1 FROM campaign_outcomes o
        WHERE o.campaign_id = l.campaign_id AND o.conclusive) ORDER BY 1""", [channel, goal, today]).fetchall()
    fresh = {}
    for (cid,) in unmeasured:
        try:
            m = measure(con, MeasureParams(campaign_id=cid, until=today))[0]
        except ToolError:
            continue
        if m["conclusive"]:
            fresh[cid] = {"campaign_id": cid, "lift": m["lift"], "ci_low": m["ci_low"], "ci_high": m["ci_high"],
                          "size": m["treated"] + m["holdout"]}
            if keep:
                save_outcome(con, m)
    rows = con.execute("""SELECT campaign_id, lift, ci_low, ci_high, treated + holdout FROM campaign_outcomes
        WHERE channel = ? AND goal = ? AND conclusive QUALIFY row_number() OVER (PARTITION BY campaign_id
        ORDER BY measured_at DESC) = 1 ORDER BY campaign_id""", [channel, goal]).fetchall()
    kept = {r[0]: {"campaign_id": r[0], "lift": r[1], "ci_low": r[2], "ci_high": r[3], "size": r[4]} for r in rows}
    return [v for _, v in sorted({**kept, **fresh}.items())]


def _summary(m: dict) -> str:
    if m["days_elapsed"] == 0:
        return (f"Nothing to measure yet: {m['name']} ({m['campaign_id']}) goes out on {m['send_at']:%Y-%m-%d}, and "
                f"the data end on {m['measured_until']}. {m['treated']:,} customers get it and {m['holdout']:,} are "
                f"held out; ask again once orders of the {m['window_days']}-day window have arrived.")
    lift = (f"{value_text(m['lift'], True, signed=True)} in conversion rate (95 % confidence interval "
            f"{value_text(m['ci_low'], True, signed=True)} to {value_text(m['ci_high'], True, signed=True)}): "
            f"{m['rate_treated']:.2%} of {m['treated']:,} recipients converted against {m['rate_holdout']:.2%} of "
            f"{m['holdout']:,} held out")
    if not m["complete"]:
        verdict = f"Too early to tell: {m['days_elapsed']} of {m['window_days']} days in"
    elif not m["sample_ratio_ok"]:
        verdict = "Not trustworthy (sample ratio mismatch)"
    elif m["significant"] and m["lift"] > 0:
        verdict = "It worked"
    elif m["significant"]:
        verdict = "It backfired"
    else:
        verdict = "No detectable effect"
    text = (f"{verdict}. {m['name']} ({m['campaign_id']}, {m['channel']}, sent {m['send_at']:%Y-%m-%d}): "
            f"{lift}. Incremental conversions {m['incremental_conversions']:+,.0f} "
            f"({m['incremental_conversions_low']:+,.0f} to {m['incremental_conversions_high']:+,.0f}); revenue "
            f"per recipient {m['revenue_per_recipient_lift']:+,.2f} ({m['revenue_per_recipient_ci_low']:+,.2f} to "
            f"{m['revenue_per_recipient_ci_high']:+,.2f}), incremental revenue {money(m['incremental_revenue'])} "
            f"({money(m['incremental_revenue_low'])} to {money(m['incremental_revenue_high'])}).")
    if m["roi"] is not None:
        text += (f" Return {m['roi']:,.1f} per unit of cost ({money(m['cost'])} spent; 95 % confidence interval {m['roi_low']:,.1f} "
                 f"to {m['roi_high']:,.1f}).")
    if verdict == "No detectable effect" and m["detectable_lift"]:
        text += f" At these sizes a lift of {value_text(m['detectable_lift'], True, signed=True)} would be detected."
    text += f" Sample ratio {'as planned' if m['sample_ratio_ok'] else 'MISMATCHED'} (p = {m['srm_p_value']:.2g})."
    return text


@register(example=MeasureParams(campaign_id="WB-2025-12"),
          key_metrics=("lift", "ci_low", "ci_high", "incremental_revenue", "roi", "days_elapsed", "conclusive"),
          concepts={"srm": ["sample ratio", "sample-ratio", "srm", "holdout size check"],
                    "incrementality": ["incremental", "incrementality", "incremental lift", "incremental revenue",
                                       "versus the holdout", "against the holdout", "against its holdout",
                                       "vs holdout", "versus the control group", "compared with its holdout",
                                       "move the needle"],
                    "campaign_result": ["did the campaign work", "did it work", "how did the campaign do",
                                        "how did it do", "campaign result", "measure the campaign", "win-back work",
                                        "winback work", "campaign work", "pay off", "was it worth it",
                                        "campaign outcome"]},
          synonyms={"campaign_id": ["campaign", "send", "blast"]},
          requests=["Did the December win-back work?", "measure the last campaign against its holdout",
                    "what was the incremental revenue of the win-back email?", "how did the campaign do?",
                    "did the win-back campaign pay off versus the holdout?",
                    "incremental lift of campaign WB-2025-12", "was the June new arrivals email worth it?",
                    "read out the holdout of our last CRM send"])
def measure_campaign(con: duckdb.DuckDBPyConnection, params: MeasureParams) -> MeasureResult:
    """Measure a launched campaign's incremental conversions, revenue and ROI against its randomised holdout."""
    metrics, warnings = measure(con, params)
    if problem := save_outcome(con, metrics):
        warnings.append(problem)
    rows = [{"arm": arm, "customers": metrics[arm], "conversion_rate": metrics[f"rate_{arm}"],
             "revenue_per_recipient": metrics[f"revenue_per_recipient_{arm}"],
             "click_rate": metrics[f"click_rate_{arm}"]} for arm in ("treated", "holdout")]
    return MeasureResult(summary=_summary(metrics), data=rows, metrics=metrics, warnings=warnings)
