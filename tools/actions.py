"""Actions: audiences, campaign sends, budget changes. Each runs only after an approver says yes."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.outbox import action_id, deliver, record, recorded
from tools.registry import ToolContext, ToolError, ToolResult, register
from tools.warehouse import require_table, transaction

CONSENTED = """customer_id IN (SELECT customer_id FROM customers WHERE marketing_opt_in IS TRUE)
  AND customer_id NOT IN (SELECT customer_id FROM (SELECT customer_id, opted_in, row_number() OVER
      (PARTITION BY customer_id ORDER BY updated_at DESC) AS rn FROM consent WHERE channel = 'email')
    WHERE rn = 1 AND NOT opted_in)"""


class ActionResult(ToolResult):
    action_id: str | None = None
    """Outbox key (also the webhook idempotency key)."""


def _key(params: BaseModel) -> str:
    return json.dumps(params.model_dump(mode="json"), sort_keys=True)


def _once(con, ctx: ToolContext, action: str, params: BaseModel) -> tuple[str, ActionResult | None]:
    """The action's outbox key, and its recorded result when this approved request already ran (exactly once)."""
    aid = action_id(action, ctx.thread_id, f"{ctx.request_id}|{_key(params)}")
    done = recorded(con, aid)
    return aid, (ActionResult(summary=done["summary"], metrics=done, action_id=aid) if done else None)


class AudienceParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=80)
    """Audience name."""
    source: Literal["segment", "churn", "clv", "customers"] = "churn"
    """Where membership comes from: a segmentation run, a churn scoring run, a CLV run, or explicit ids."""
    run_id: str | None = None
    """The run to take members from (default: the latest run of that source)."""
    segment: str | None = None
    """Segment name or id (source=segment)."""
    risk_band: Literal["high", "medium", "low"] | None = "high"
    """Churn risk band to include (source=churn)."""
    min_probability: float | None = Field(None, ge=0, le=1)
    """Lowest churn probability to include (source=churn)."""
    top_n: int | None = Field(None, ge=1, le=1_000_000)
    """Keep only the N highest-scoring members."""
    customer_ids: list[int] | None = None
    """Explicit members (source=customers)."""


def _members_sql(con, p: AudienceParams) -> tuple[str, list, str, str | None]:
    if p.source == "customers":
        if not p.customer_ids:
            raise ToolError("source=customers needs customer_ids.")
        return "SELECT unnest(?::BIGINT[]) AS customer_id, 0.0 AS score", [p.customer_ids], "explicit ids", None
    table = {"segment": "customer_segments", "churn": "churn_scores", "clv": "clv_scores"}[p.source]
    require_table(con, table)
    run = p.run_id or con.execute(f"SELECT max(run_id) FROM {table}").fetchone()[0]
    if run is None:
        tool = {"segment": "segment_customers", "churn": "score_churn", "clv": "predict_clv"}[p.source]
        raise ToolError(f"No {p.source} run yet: run {tool} first, then build the audience from it.")
    if p.source == "segment":
        if not p.segment:
            raise ToolError("source=segment needs `segment` (a segment name or id from segment_customers).")
        where, args = "run_id = ? AND (segment_id = ? OR lower(segment_name) = lower(?))", [run, p.segment, p.segment]
        sql = f"SELECT customer_id, 0.0 AS score FROM customer_segments WHERE {where}"
    elif p.source == "churn":
        where, args = "run_id = ?", [run]
        if p.risk_band:
            where += " AND risk_band = ?"
            args.append(p.risk_band)
        if p.min_probability is not None:
            where += " AND probability >= ?"
            args.append(p.min_probability)
        sql = f"SELECT customer_id, probability AS score FROM churn_scores WHERE {where}"
    else:
        where, args = "run_id = ?", [run]
        sql = f"SELECT TRY_CAST(customer_id AS BIGINT) AS customer_id, clv AS score FROM clv_scores WHERE {where}"
    return sql, args, f"{p.source} run {run}", run


def _audience(con, p: AudienceParams) -> tuple[str, list, dict]:
    sql, args, source, run = _members_sql(con, p)
    limit = f"LIMIT {int(p.top_n)}" if p.top_n else ""
    candidates = f"SELECT customer_id, score FROM ({sql}) ORDER BY score DESC, customer_id {limit}"
    total = con.execute(f"SELECT count(*) FROM ({candidates})", args).fetchone()[0]
    members = f"SELECT customer_id FROM ({candidates}) WHERE {CONSENTED}"
    size = con.execute(f"SELECT count(*) FROM ({members})", args).fetchone()[0]
    return members, args, {"source": source, "candidates": total, "size": size, "excluded_no_consent": total - size,
                           "pinned": {"run_id": run} if run and not p.run_id else {}}


def preview_create_audience(con, p: AudienceParams) -> dict:
    _, _, info = _audience(con, p)
    return {**info, "risk": "low" if info["size"] < 50_000 else "medium",
            "description": f"Create audience '{p.name}' from {info['source']}: {info['size']:,} customers "
                           f"({info['excluded_no_consent']:,} left out for lack of consent) and export it as CSV."}


@register(example=AudienceParams(name="At-risk high value"), approval=True,
          requests=["save them as an audience", "create an audience from the at-risk customers",
                    "build a segment audience for the win-back campaign", "export this segment as an audience",
                    "make a list of these customers for CRM", "turn the high-risk customers into an audience"])
def create_audience(con: duckdb.DuckDBPyConnection, p: AudienceParams, ctx: ToolContext) -> ActionResult:
    """Save a segment's or score run's members as a named audience and export it (opted-out customers excluded)."""
    aid, done = _once(con, ctx, "create_audience", p)
    if done:
        return done
    members, args, info = _audience(con, p)
    if info["size"] == 0:
        raise ToolError(f"The audience would be empty ({info['candidates']} candidates, none with consent).")
    export = ctx.home / "outbox" / f"audience_{aid}.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    now = ctx.now or datetime.now()
    with transaction(con):
        con.execute("INSERT INTO audiences VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [aid, p.name, info["source"], _key(p), info["size"], info["excluded_no_consent"], now, ctx.user])
        con.execute(f"INSERT INTO audience_members SELECT ?, customer_id, NULL FROM ({members})", [aid, *args])
        summary = (f"Created audience '{p.name}' ({aid}) with {info['size']:,} customers; "
                   f"{info['excluded_no_consent']:,} excluded for lack of marketing consent. Exported to {export.name}.")
        payload = {**info, "audience_id": aid, "name": p.name, "summary": summary}
        record(con, ctx, aid, "create_audience", payload, export)
        target = str(export).replace("'", "''")
        con.execute(f"""COPY (SELECT m.customer_id, c.email FROM audience_members m JOIN customers c
                       USING (customer_id) WHERE m.audience_id = '{aid}' ORDER BY 1) TO '{target}' (HEADER)""")
    status = deliver(con, ctx, aid)
    return ActionResult(summary=summary + ("" if status == "recorded" else f" Webhook: {status}."),
                        metrics={**payload, "delivery": status}, action_id=aid)


class ScheduleParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    audience: str
    """Audience id or name (from create_audience)."""
    channel: Literal["email", "sms", "push"] = "email"
    """Channel of the send."""
    variant: str = Field(min_length=3, max_length=2000)
    """The approved content (e.g. a subject line from generate_content_variants)."""
    send_at: datetime
    """When to send."""
    holdout_pct: float = Field(0.1, ge=0.0, le=0.5)
    """Share of the audience held out (deterministic by customer) to measure lift."""


def _resolve_audience(con, ref: str) -> tuple[str, str]:
    row = con.execute("SELECT audience_id, name FROM audiences WHERE audience_id = ? OR lower(name) = lower(?) "
                      "ORDER BY created_at DESC LIMIT 1", [ref, ref]).fetchone()
    if not row:
        names = [r[0] for r in con.execute("SELECT name FROM audiences ORDER BY created_at DESC LIMIT 5").fetchall()]
        raise ToolError(f"No audience {ref!r}. " + (f"Recent audiences: {', '.join(names)}." if names
                                                       else "Create one with create_audience first."))
    return row


def _compliance(text: str, channel: str) -> list[str]:
    try:
        from tools.compliance import check
    except ImportError:  # compliance rules not installed: refuse to send unchecked content
        raise ToolError("The compliance checker is unavailable, so nothing can be scheduled.") from None
    return [str(v) for v in check(text, channel)]


def preview_schedule_campaign(con, p: ScheduleParams) -> dict:
    aid, name = _resolve_audience(con, p.audience)
    size = con.execute("SELECT count(*) FROM audience_members WHERE audience_id = ?", [aid]).fetchone()[0]
    holdout = round(size * p.holdout_pct)
    problems = _compliance(p.variant, "email_subject" if p.channel == "email" else p.channel)
    return {"audience_id": aid, "size": size, "holdout": holdout, "compliance": problems,
            "risk": "high" if problems else ("medium" if size > 10_000 else "low"),
            "description": f"Send '{p.variant}' by {p.channel} to audience '{name}' on {p.send_at:%Y-%m-%d %H:%M}: "
                           f"about {size - holdout:,} recipients, {holdout:,} held out."}


@register(example=ScheduleParams(audience="At-risk high value", variant="We miss you: 15% off your next order",
                                 send_at=datetime(2026, 10, 5, 9, 0)), approval=True,
          requests=["schedule the campaign to this audience", "send the win-back email next Monday at 9",
                    "queue the send with a 10% holdout", "launch the email to the at-risk audience",
                    "schedule a push notification to the new customers", "send this subject line to the audience"])
def schedule_campaign(con: duckdb.DuckDBPyConnection, p: ScheduleParams, ctx: ToolContext) -> ActionResult:
    """Queue a send of approved content to an audience at a time, with a deterministic holdout group."""
    aid, done = _once(con, ctx, "schedule_campaign", p)
    if done:
        return done
    info = preview_schedule_campaign(con, p)
    if info["compliance"]:
        raise ToolError("The content fails compliance: " + "; ".join(info["compliance"]))
    cut = int(round(p.holdout_pct * 10_000))
    with transaction(con):
        con.execute("UPDATE audience_members SET holdout = (hash(customer_id::VARCHAR || ?) % 10000) < ? "
                    "WHERE audience_id = ?", [aid, cut, info["audience_id"]])
        held = con.execute("SELECT count_if(holdout) FROM audience_members WHERE audience_id = ?",
                           [info["audience_id"]]).fetchone()[0]
        summary = (f"Scheduled '{p.variant}' by {p.channel} for {p.send_at:%Y-%m-%d %H:%M} to "
                   f"{info['size'] - held:,} customers with {held:,} held out ({aid}).")
        payload = {"audience_id": info["audience_id"], "channel": p.channel, "variant": p.variant,
                   "send_at": p.send_at, "recipients": info["size"] - held, "holdout": held, "summary": summary}
        record(con, ctx, aid, "schedule_campaign", payload, None)
    status = deliver(con, ctx, aid)
    return ActionResult(summary=summary, metrics={**payload, "delivery": status}, action_id=aid)


class BudgetParams(BaseModel, use_attribute_docstrings=True):
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


def preview_update_budget(con, p: BudgetParams, max_change: float = 0.25) -> dict:
    current = current_budgets(con)
    changes, problems = [], []
    for ch, new in sorted(p.daily_budgets.items()):
        if ch not in current:
            problems.append(f"unknown channel {ch!r} (known: {', '.join(sorted(current))})")
            continue
        old = current[ch]
        rel = (new - old) / old if old else float("inf")
        changes.append({"channel": ch, "from": round(old, 2), "to": round(new, 2), "change": rel})
        if abs(rel) > max_change + 0.005:  # half a percentage point for rounding of planned amounts
            problems.append(f"{ch}: {rel:+.0%} exceeds the ±{max_change:.0%} bound per approval")
    return {"changes": changes, "problems": problems, "risk": "high" if problems else "medium",
            "description": "Change daily budgets: " + ", ".join(
                f"{c['channel']} {c['from']:,.0f} → {c['to']:,.0f} ({c['change']:+.0%})" for c in changes)}


@register(example=BudgetParams(daily_budgets={"search": 3300.0}), approval=True,
          requests=["apply the recommended budget split", "move budget from display to search",
                    "update next month's channel budgets", "increase the search budget by 10%",
                    "cut social spend to 2000 a day", "make the budget change"])
def update_budget(con: duckdb.DuckDBPyConnection, p: BudgetParams, ctx: ToolContext) -> ActionResult:
    """Record a new per-channel daily budget plan (each channel may change by at most the configured bound)."""
    aid, done = _once(con, ctx, "update_budget", p)
    if done:
        return done
    info = preview_update_budget(con, p, ctx.max_budget_change)
    if info["problems"]:
        raise ToolError("Budget change refused: " + "; ".join(info["problems"]))
    effective = p.effective_date or con.execute("SELECT max(date) + 1 FROM ad_spend").fetchone()[0]
    now = ctx.now or datetime.now()
    with transaction(con):
        for c in info["changes"]:
            con.execute("INSERT INTO budget_plans VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [aid, c["channel"], c["from"], c["to"], effective, now, ctx.user])
        summary = f"Recorded budget plan {aid} from {effective}: " + info["description"].split(": ", 1)[1] + "."
        payload = {"changes": info["changes"], "effective_date": effective, "summary": summary}
        record(con, ctx, aid, "update_budget", payload, None)
    status = deliver(con, ctx, aid)
    return ActionResult(summary=summary, metrics={**payload, "delivery": status}, action_id=aid)


PREVIEWS = {"create_audience": preview_create_audience, "schedule_campaign": preview_schedule_campaign,
            "update_budget": preview_update_budget}
