"""schedule_campaign: queue approved content to an audience at a time, with a deterministic holdout; consent on the
send's channel is checked again when it runs, so anyone who withdrew since the audience was made is left out."""

from __future__ import annotations

from datetime import datetime

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools import compliance
from tools.actions.base import ActionResult, held_out_sql, refuse_problems, run_once
from tools.actions.consent import CONTACT_COLUMN, Channel, describe, exclusions, screened_sql
from tools.actions.exports import export_csv
from tools.registry import ToolContext, ToolError, register


class ScheduleParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    audience: str
    """Audience id or name (from create_audience)."""
    channel: Channel = "email"
    """Channel of the send (email, sms or push); consent on it is checked when the send runs."""
    variant: str = Field(min_length=3, max_length=2000)
    """The approved content (e.g. a subject line from generate_content_variants)."""
    send_at: datetime
    """When to send."""
    holdout_pct: float = Field(0.1, ge=0.0, le=0.5)
    """Share of the audience held out (deterministic by customer) to measure lift."""


def _resolve_audience(con, ref: str) -> tuple[str, str, str]:
    """(audience id, name, the channel it was built for)."""
    row = con.execute("SELECT audience_id, name, coalesce(channel, 'email') FROM audiences WHERE audience_id = ? "
                      "OR lower(name) = lower(?) ORDER BY created_at DESC LIMIT 1", [ref, ref]).fetchone()
    if not row:
        names = [r[0] for r in con.execute("SELECT name FROM audiences ORDER BY created_at DESC LIMIT 5").fetchall()]
        raise ToolError(f"No audience {ref!r}. " + (f"Recent audiences: {', '.join(names)}." if names
                                                       else "Create one with create_audience first."))
    return row


def _screened(audience_id: str, channel: str) -> tuple[str, list]:
    return screened_sql("SELECT customer_id FROM audience_members WHERE audience_id = ?", channel), [audience_id]


def preview_schedule_campaign(con, params: ScheduleParams, ctx: ToolContext) -> dict:
    aid, name, built_for = _resolve_audience(con, params.audience)
    eligible, excluded = exclusions(con, *_screened(aid, params.channel))
    holdout = round(eligible * params.holdout_pct)
    channel = "email_subject" if params.channel == "email" else params.channel
    added = ""
    if full := compliance.completed(params.variant, channel):  # the sender and opt-out the guide requires
        added = f" The brand guide's required parts were added to the text as written: {full!r}."
        params = params.model_copy(update={"variant": full})
    problems = [str(v) for v in compliance.check(params.variant, channel)]
    rebuilt = "" if built_for == params.channel else f"; the audience was built for {built_for}"
    return {"audience_id": aid, "audience": name, "variant": params.variant,
            "size": eligible + sum(excluded.values()), "eligible": eligible,
            "recipients": eligible - holdout, "holdout": holdout, "excluded_no_consent": sum(excluded.values()),
            "excluded": excluded, "compliance": problems,
            "risk": "high" if problems else ("medium" if eligible > 10_000 else "low"),
            "description": f"Send '{params.variant}' by {params.channel} to audience '{name}' on "
                           f"{params.send_at:%Y-%m-%d %H:%M}: about {eligible - holdout:,} recipients, {holdout:,} "
                           f"held out; {describe(excluded)} (consent on {params.channel} is checked again when it "
                           f"runs{rebuilt}).{added}", "pinned": {"variant": params.variant} if added else {}}


def _refuse_nobody(info: dict, channel: str) -> None:
    if info["eligible"] == 0:
        raise ToolError(f"Nobody in audience '{info['audience']}' may be contacted by {channel} "
                        f"({describe(info['excluded'])}). Build an audience for {channel} with create_audience "
                        f"(channel={channel}) from customers who consented to it.")


@register(example=ScheduleParams(audience="At-risk high value", variant="We miss you: 15% off your next order",
                                 send_at=datetime(2026, 10, 5, 9, 0)), approval=True,
          preview=preview_schedule_campaign, key_metrics=("recipients", "holdout", "excluded_no_consent", "delivery"),
          concepts={"schedule": ["send", "sending", "queue", "programme", "program"]},
          # ("plan the sending of …": this action's verb)
          synonyms={"sms": ["sms", "text message", "texts", "text them", "text the", "texting"],
                    "push": ["push", "push notification", "app notification"]},
          requests=["schedule the campaign to this audience", "send the win-back email next Monday at 9",
                    "queue the send with a 10% holdout", "launch the email to the at-risk audience",
                    "schedule a push notification to the new customers", "send this subject line to the audience"])
def schedule_campaign(con: duckdb.DuckDBPyConnection, params: ScheduleParams, ctx: ToolContext) -> ActionResult:
    """Queue a send of approved content to an audience at a time, with a deterministic holdout group."""
    def prepare() -> dict:
        info = refuse_problems(preview_schedule_campaign(con, params, ctx), "compliance",
                               "The content fails compliance")
        _refuse_nobody(info, params.channel)
        return info

    def write(con, aid: str, info: dict):
        audience = info["audience_id"]
        screened, args = _screened(audience, params.channel)
        eligible, excluded = exclusions(con, screened, args)  # consent as of now, inside the transaction
        info = {**info, "eligible": eligible, "excluded": excluded}
        _refuse_nobody(info, params.channel)
        con.execute(f"""UPDATE audience_members SET holdout = CASE WHEN customer_id IN
            (SELECT customer_id FROM ({screened}) WHERE excluded IS NULL)
            THEN {held_out_sql('customer_id', aid, params.holdout_pct)} END WHERE audience_id = ?""",
                    [*args, audience])
        held = con.execute("SELECT count_if(holdout) FROM audience_members WHERE audience_id = ?",
                           [audience]).fetchone()[0]
        contact = CONTACT_COLUMN[params.channel]
        export = export_csv(con, f"""SELECT m.customer_id{f', c.{contact}' if contact else ''} FROM audience_members m
            JOIN customers c USING (customer_id) WHERE m.audience_id = ? AND m.holdout = false ORDER BY 1""",
                            [audience], ctx.home / "outbox" / f"send_{aid}.csv")
        summary = (f"Scheduled '{info['variant']}' by {params.channel} for {params.send_at:%Y-%m-%d %H:%M} to "
                   f"{eligible - held:,} customers with {held:,} held out; {describe(excluded)} at send time "
                   f"({aid}). Recipients in {export.name}.")
        return {"audience_id": audience, "channel": params.channel, "variant": info["variant"],
                "send_at": params.send_at, "recipients": eligible - held, "holdout": held,
                "excluded_no_consent": sum(excluded.values()), "excluded": excluded, "export": export.name,
                "summary": summary}, export

    return run_once(con, ctx, "schedule_campaign", params, prepare, write)
