"""campaign_report: KPIs by channel, campaign or period from the ad platforms' daily delivery."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.common import money, pct, resolve_period, safe_div
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import require_table

GROUPS = {"channel": "channel", "campaign": "campaign_id", "day": "date",
          "week": "date_trunc('week', date)::DATE", "month": "date_trunc('month', date)::DATE"}


class CampaignReportParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    start: date | None = None
    """First day (default: 30 days before `end`)."""
    end: date | None = None
    """Last day (default: the last day with data)."""
    group_by: Literal["channel", "campaign", "day", "week", "month"] = "channel"
    """Rows of the report."""
    channels: list[str] | None = None
    """Only these channels (search, social, display, video, affiliate, email)."""
    campaign_ids: list[str] | None = None
    """Only these campaigns."""
    compare_previous: bool = True
    """Also compute the same KPIs for the preceding period of equal length."""
    limit: int = Field(50, ge=1, le=200)
    """Most rows returned (largest spend first)."""


class CampaignReportResult(ToolResult):
    pass


def _kpis(con, where: str, args: list, group_sql: str | None) -> list[dict]:
    group = f"{group_sql} AS grp," if group_sql else ""
    by = "GROUP BY 1" if group_sql else ""
    sql = f"""SELECT {group} sum(spend) AS spend, sum(impressions) AS impressions, sum(clicks) AS clicks,
                sum(conversions) AS conversions, sum(revenue) AS revenue
              FROM ad_spend WHERE {where} {by}"""
    cur = con.execute(sql, args)
    names = [d[0] for d in cur.description]
    rows = []
    for r in cur.fetchall():
        row = dict(zip(names, r, strict=True))
        row.update(ctr=safe_div(row["clicks"], row["impressions"]), cvr=safe_div(row["conversions"], row["clicks"]),
                   cpa=safe_div(row["spend"], row["conversions"]), roas=safe_div(row["revenue"], row["spend"]))
        rows.append(row)
    return rows


@register(example=CampaignReportParams(start=date(2026, 9, 1), end=date(2026, 9, 30)),
          key_metrics=("spend", "revenue", "roas", "conversions", "cpa", "ctr"),
          concepts={"ctr": ["click-through rate", "clickthrough rate", "click through rate", "click rate"],
                    "cvr": ["conversion rate", "conv rate"],
                    "cpa": ["cost per acquisition", "cost per conversion", "cost per order", "cost per sale",
                            "acquisition cost"],
                    "roas": ["return on ad spend", "return on advertising spend", "ad return"],
                    "spend": ["ad spend", "media spend", "spent", "spending", "cost by channel"],
                    "performance": ["perform", "performance", "performing", "performed", "kpi", "kpis",
                                    "results by channel", "scorecard", "channel report", "numbers", "figures",
                                    "stats", "in one line", "recap", "topline", "top line", "headline numbers",
                                    "how did we do", "how are we doing", "how we did", "wrap-up", "snapshot",
                                    "cpm", "cost per thousand"],
                    "trend": ["trend", "over time", "week by week", "month by month", "week on week",
                              "month on month"]},
          synonyms={"campaign": ["per campaign", "each campaign", "by campaign", "campaign level"],
                    "week": ["weekly", "per week", "each week", "by week"],
                    "month": ["monthly", "per month", "each month", "by month"],
                    "day": ["daily", "per day", "each day", "by day"]},
          requests=["How did our channels perform last month?", "Show spend, ROAS and CPA by channel for Q3",
                    "campaign performance report", "Which campaigns had the best ROAS in September?",
                    "What was our cost per acquisition on search last week?", "weekly conversions trend by channel",
                    "How much did we spend on social this quarter?", "CTR and conversion rate by campaign",
                    "break down clicks and impressions by campaign for last quarter",
                    "which channel had the cheapest conversions this month?",
                    "channel revenue trend per month this year", "how did social do this week?",
                    "how is display doing lately?", "how did search do last week?", "how did sms do yesterday?"])
def campaign_report(con: duckdb.DuckDBPyConnection, p: CampaignReportParams) -> CampaignReportResult:
    """Report spend, impressions, clicks, conversions, revenue, CTR, CVR, CPA and ROAS by channel, campaign or period."""
    require_table(con, "ad_spend", ["date", "channel", "campaign_id", "spend"])
    start, end = resolve_period(con, p.start, p.end)
    where, args = "date BETWEEN ? AND ?", [start, end]
    if p.channels:
        known = {r[0] for r in con.execute("SELECT DISTINCT channel FROM ad_spend").fetchall()}
        unknown = sorted(set(p.channels) - known)
        if unknown:
            raise ToolError(f"Unknown channel(s) {', '.join(unknown)}; the warehouse has {', '.join(sorted(known))}.")
        where += " AND channel IN (SELECT unnest(?))"
        args.append(list(p.channels))
    if p.campaign_ids:
        where += " AND campaign_id IN (SELECT unnest(?))"
        args.append(list(p.campaign_ids))
    total = _kpis(con, where, args, None)[0]
    if total["spend"] is None:
        raise ToolError(f"No ad spend between {start} and {end} for this filter. The data covers "
                        + "{} to {}.".format(*con.execute("SELECT min(date), max(date) FROM ad_spend").fetchone()))
    rows = _kpis(con, where, args, GROUPS[p.group_by])
    key = p.group_by
    rows = [{key: r.pop("grp"), **r} for r in rows]
    rows.sort(key=lambda r: r[key] if p.group_by in ("day", "week", "month") else -(r["spend"] or 0))
    metrics = {"start": start, "end": end, **{k: total[k] for k in total}}
    summary = (f"{start} to {end}: spend {money(total['spend'])}, {money(total['conversions'])} conversions, "
               f"revenue {money(total['revenue'])}, ROAS {total['roas']:.2f}, CPA {money(total['cpa'])}, "
               f"CTR {pct(total['ctr'], 2)}.")
    if p.compare_previous:
        days = (end - start).days + 1
        prev_args = [start - timedelta(days=days), start - timedelta(days=1), *args[2:]]
        prev = _kpis(con, where, prev_args, None)[0]
        if prev["spend"]:
            change = {k: safe_div(total[k] - prev[k], prev[k]) for k in ("spend", "conversions", "revenue", "roas",
                                                                          "cpa")}
            metrics["previous"] = prev
            metrics["change_vs_previous"] = change
            summary += (f" Versus the previous {days} days: spend {change['spend']:+.1%}, conversions "
                        f"{change['conversions']:+.1%}, ROAS {change['roas']:+.1%}.")
    if p.group_by in ("channel", "campaign") and rows:
        best = max(rows, key=lambda r: r["roas"] or 0)
        worst = min(rows, key=lambda r: r["roas"] if r["roas"] is not None else float("inf"))
        summary += (f" Best ROAS: {best[key]} ({best['roas']:.2f}); weakest: {worst[key]} ({worst['roas']:.2f}).")
        chart = charts.bar([{key: r[key], "roas": round(r["roas"] or 0, 3), "spend": round(r["spend"], 2)}
                            for r in rows], key, "roas", f"ROAS by {key}, {start} to {end}")
    else:
        chart = charts.line([{key: str(r[key]), "conversions": round(r["conversions"] or 0, 2),
                              "spend": round(r["spend"], 2)} for r in rows], key, "conversions",
                            f"Conversions by {key}")
    return CampaignReportResult(summary=summary, data=rows[: p.limit], metrics=metrics, chart=chart,
                                warnings=[f"{len(rows) - p.limit} more rows not shown"] if len(rows) > p.limit else [])
