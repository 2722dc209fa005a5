"""update_budget: record a new per-channel daily budget plan, each channel within the bound per approval."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
from pydantic import BaseModel, ConfigDict, model_validator

from tools.actions.base import ActionResult, refuse_problems, run_once
from tools.registry import ToolContext, register


class BudgetChange(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    daily_budgets: dict[str, float]
    """New daily budget per channel (channels not named keep theirs)."""
    effective_date: date | None = None
    """From when the plan applies (default: the day after the last day of data)."""

    @model_validator(mode="after")
    def _positive(self):
        bad = [k for k, v in self.daily_budgets.items() if v < 0]
        if bad:
            raise ValueError(f"budgets must be ≥ 0 (negative for {', '.join(bad)})")
        return self


def current_budgets(con) -> dict[str, float]:
    """The latest approved plan per channel, else what the channel really spent per day over the last 90 days
    of data (the 90-day window allocate_budget starts from), else the campaigns' planned daily budgets."""
    rows = con.execute("""SELECT channel, daily_budget FROM (SELECT channel, daily_budget, row_number() OVER
        (PARTITION BY channel ORDER BY created_at DESC) rn FROM budget_plans) WHERE rn = 1""").fetchall()
    plans = dict(rows)
    planned = dict(con.execute("SELECT channel, sum(daily_budget) FROM campaigns WHERE end_date IS NULL "
                               "GROUP BY 1").fetchall())
    spent = dict(con.execute("""SELECT channel, sum(spend) / 90 FROM ad_spend
        WHERE date > (SELECT max(date) FROM ad_spend) - 90 GROUP BY 1""").fetchall())
    return {**planned, **{k: round(v, 2) for k, v in spent.items() if v}, **plans}


def preview_update_budget(con, params: BudgetChange, ctx: ToolContext) -> dict:
    current, bound = current_budgets(con), ctx.max_budget_change
    changes, problems = [], []
    for channel, new in sorted(params.daily_budgets.items()):
        if channel not in current:
            problems.append(f"unknown channel {channel!r} (known: {', '.join(sorted(current))})")
            continue
        old = current[channel]
        rel = (new - old) / old if old else float("inf")
        changes.append({"channel": channel, "from": round(old, 2), "to": round(new, 2), "change": rel})
        if abs(rel) > bound + 0.005:  # half a percentage point for rounding of planned amounts
            problems.append(f"{channel}: {rel:+.0%} exceeds the ±{bound:.0%} bound per approval")
    return {"changes": changes, "problems": problems, "risk": "high" if problems else "medium",
            "description": "Change daily budgets: " + ", ".join(
                f"{c['channel']} {c['from']:,.0f} → {c['to']:,.0f} ({c['change']:+.0%})" for c in changes)}


@register(example=BudgetChange(daily_budgets={"search": 3300.0}), approval=True, preview=preview_update_budget,
          requires={}, current={"daily_budgets": current_budgets},
          concepts={"update": ["scale back", "scale up", "scale down", "dial back", "dial down", "ramp up", "pare back",
                               "pause", "kill", "bump", "trim", "slash", "bring down", "bring up", "shift budget",
                               "move budget", "reallocate", "daily budget"]},  # how buyers say it: its verbs
          key_metrics=("effective_date", "delivery"),
          requests=["apply the recommended budget split", "move budget from display to search",
                    "update next month's channel budgets", "increase the search budget by 10%",
                    "cut social spend to 2000 a day", "make the budget change"])
def update_budget(con: duckdb.DuckDBPyConnection, params: BudgetChange, ctx: ToolContext) -> ActionResult:
    """Record a new per-channel daily budget plan (each channel may change by at most the configured bound)."""
    def prepare() -> dict:
        return refuse_problems(preview_update_budget(con, params, ctx), "problems", "Budget change refused")

    def write(con, aid: str, info: dict):
        effective = params.effective_date or con.execute("SELECT max(date) + 1 FROM ad_spend").fetchone()[0]
        now = ctx.now or datetime.now()
        for c in info["changes"]:
            con.execute("INSERT INTO budget_plans VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [aid, c["channel"], c["from"], c["to"], effective, now, ctx.user])
        summary = f"Recorded budget plan {aid} from {effective}: " + info["description"].split(": ", 1)[1] + "."
        return {"changes": info["changes"], "effective_date": effective, "summary": summary}, None

    return run_once(con, ctx, "update_budget", params, prepare, write)
