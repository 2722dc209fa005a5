"""schedule_campaign: queue approved content to an audience at a time, with a deterministic holdout."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools import compliance
from tools.actions.base import ActionResult, refuse_problems, run_once
from tools.registry import ToolContext, ToolError, register


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


def preview_schedule_campaign(con, params: ScheduleParams, ctx: ToolContext) -> dict:
    aid, name = _resolve_audience(con, params.audience)
    size = con.execute("SELECT count(*) FROM audience_members WHERE audience_id = ?", [aid]).fetchone()[0]
    holdout = round(size * params.holdout_pct)
    channel = "email_subject" if params.channel == "email" else params.channel
    problems = [str(v) for v in compliance.check(params.variant, channel)]
    return {"audience_id": aid, "size": size, "holdout": holdout, "compliance": problems,
            "risk": "high" if problems else ("medium" if size > 10_000 else "low"),
            "description": f"Send '{params.variant}' by {params.channel} to audience '{name}' on "
                           f"{params.send_at:%Y-%m-%d %H:%M}: about {size - holdout:,} recipients, {holdout:,} held out."}


@register(example=ScheduleParams(audience="At-risk high value", variant="We miss you: 15% off your next order",
                                 send_at=datetime(2026, 10, 5, 9, 0)), approval=True,
          preview=preview_schedule_campaign, key_metrics=("recipients", "holdout"),
          requests=["schedule the campaign to this audience", "send the win-back email next Monday at 9",
                    "queue the send with a 10% holdout", "launch the email to the at-risk audience",
                    "schedule a push notification to the new customers", "send this subject line to the audience"])
def schedule_campaign(con: duckdb.DuckDBPyConnection, params: ScheduleParams, ctx: ToolContext) -> ActionResult:
    """Queue a send of approved content to an audience at a time, with a deterministic holdout group."""
    def prepare() -> dict:
        return refuse_problems(preview_schedule_campaign(con, params, ctx), "compliance",
                               "The content fails compliance")

    def write(con, aid: str, info: dict):
        cut = int(round(params.holdout_pct * 10_000))
        con.execute("UPDATE audience_members SET holdout = (hash(customer_id::VARCHAR || ?) % 10000) < ? "
                    "WHERE audience_id = ?", [aid, cut, info["audience_id"]])
        held = con.execute("SELECT count_if(holdout) FROM audience_members WHERE audience_id = ?",
                           [info["audience_id"]]).fetchone()[0]
        summary = (f"Scheduled '{params.variant}' by {params.channel} for {params.send_at:%Y-%m-%d %H:%M} to "
                   f"{info['size'] - held:,} customers with {held:,} held out ({aid}).")
        return {"audience_id": info["audience_id"], "channel": params.channel, "variant": params.variant,
                "send_at": params.send_at, "recipients": info["size"] - held, "holdout": held,
                "summary": summary}, None

    return run_once(con, ctx, "schedule_campaign", params, prepare, write)
