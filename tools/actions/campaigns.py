"""launch_campaign: one approval for a whole campaign plan, its parts (audience, variant, send time, holdout) editable.

The preview is plan_campaign's plan of the same brief (tools/analytics/campaign_plan.py), with every part it chose
pinned into the request so that the approver approves what was shown; an edit changes a part and the whole plan is
validated again. Approving runs `run_once`: in one transaction the audience (consent on the channel checked again,
now), each member's arm (a randomised holdout, salted per campaign), the campaign and the recipients' export are
written; a crash before the commit leaves nothing, and a replay of the same approval never writes twice. Rejecting
executes nothing. The holdout is never in the export: it is never contacted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import duckdb
from pydantic import Field

from tools import compliance
from tools.actions.base import ActionResult, held_out_sql, params_key, run_once
from tools.actions.consent import CONTACT_COLUMN, describe, exclusions
from tools.actions.exports import export_csv
from tools.analytics.campaign_plan import (
    CONTENT_CHANNEL,
    CampaignBase,
    CampaignBrief,
    Plan,
    build_plan,
    forecast,
)
from tools.registry import ToolContext, ToolError, register

Goal = Literal["win_back", "onboarding", "second_order", "cross_sell", "upsell", "churn_prevention", "promotion",
               "new_arrivals", "abandoned_cart", "loyalty", "re_engagement", "general"]
"""The content phrase bank's goals (knowledge/phrases.yaml)."""


class LaunchParams(CampaignBase):
    goal: Goal = "win_back"
    """What the campaign is for (as plan_campaign names it: win_back, promotion, new_arrivals …)."""
    campaign_name: str | None = Field(None, min_length=2, max_length=80)
    """Campaign name (default: the goal, channel and send day)."""
    variant: str | None = Field(None, min_length=3, max_length=2000)
    """The content to send (default: the plan's best compliant variant)."""
    send_at: datetime | None = None
    """When to send (default: the plan's send time)."""


def _brief(params: LaunchParams) -> CampaignBrief:
    return CampaignBrief(goal=params.goal.replace("_", " "),
                         **params.model_dump(exclude={"goal", "campaign_name", "variant", "send_at"}))


def _plan(con, params: LaunchParams, keep: bool) -> tuple[Plan, str, str, datetime, list[str]]:
    """The plan, the variant, the name and the send time, and the variant's compliance problems."""
    plan = build_plan(con, _brief(params), keep=keep)
    variant = params.variant or plan.variants[0]["text"]
    send_at = params.send_at or plan.send_at
    problems = [str(v) for v in compliance.check(variant, CONTENT_CHANNEL[params.channel])]
    name = params.campaign_name or f"{plan.goal.replace('_', ' ').capitalize()} {params.channel} {send_at:%Y-%m-%d}"
    return plan, variant, name, send_at, problems


def preview_launch_campaign(con, params: LaunchParams, ctx: ToolContext) -> dict:
    plan, variant, name, send_at, problems = _plan(con, params, keep=False)
    held = plan.eligible - plan.recipients
    expected = forecast(plan)
    gain = (f" Expected {expected['incremental_conversions']:+,.0f} incremental conversions "
            f"({expected['incremental_conversions_low']:+,.0f} to {expected['incremental_conversions_high']:+,.0f}); "
            f"{plan.lift_basis}." if expected else f" {plan.lift_basis[:1].upper()}{plan.lift_basis[1:]}.")
    pinned = {**plan.pinned, "campaign_name": name, "variant": variant, "send_at": send_at.isoformat(),
              "holdout_pct": plan.holdout_pct, "cost_per_message": plan.cost_per_message}
    if plan.lift is not None and params.expected_lift is None:
        pinned["expected_lift"] = round(plan.lift, 6)
    return {"name": name, "channel": params.channel, "source": plan.audience["source"], "size": plan.eligible,
            "recipients": plan.recipients, "holdout": held, "holdout_pct": plan.holdout_pct, "variant": variant,
            "send_at": send_at.isoformat(), "cost": plan.cost, "expected_lift": plan.lift,
            "detectable_lift": plan.detectable_lift, "excluded_no_consent": plan.audience["excluded_no_consent"],
            "excluded": plan.audience["excluded"], "compliance": problems, "pinned": pinned,
            "risk": "high" if problems else ("medium" if plan.recipients > 10_000 else "low"),
            "description": f"Launch '{name}': send {variant!r} by {params.channel} on {send_at:%Y-%m-%d %H:%M} to "
                           f"{plan.recipients:,} customers from {plan.audience['source']}, holding {held:,} "
                           f"({plan.holdout_pct:.0%}) out at random to measure it ({describe(plan.audience['excluded'])}"
                           f"); cost {plan.cost:,.2f}.{gain} Approving creates the audience, records each member's "
                           "arm and queues the send; the holdout is never contacted. Parts you can edit: variant, "
                           "send_at, holdout_pct, campaign_name, risk_band/segment/saved_audience, top_n, budget."}


def _refuse_nobody(size: int, excluded: dict, channel: str) -> None:
    if size == 0:
        raise ToolError(f"Nobody in the audience may be contacted by {channel} now ({describe(excluded)}); nothing "
                        "was launched.")


@register(example=LaunchParams(goal="win_back", offer="15% off", channel="email", holdout_pct=0.1),
          approval=True, preview=preview_launch_campaign,
          requires={"source": {"churn": "score_churn", "clv": "predict_clv", "segment": "segment_customers"}},
          key_metrics=("recipients", "holdout", "holdout_pct", "cost", "delivery"),
          concepts={"launch": ["launch the campaign", "launch it", "launch the plan", "launch a win-back",
                               "launch a campaign", "launch this campaign", "launch the win-back", "go live with",
                               "roll out the campaign", "kick off the campaign", "kick off a campaign"]},
          synonyms={"budget": ["budget", "cap the cost", "cost cap", "cost capped", "capped at", "spend cap", "cap spend",
                               "spend at most",
                               "max spend", "cost at most", "no more than", "spend more than", "spend over"],
                    "win_back": ["win-back", "win back", "winback", "reactivate", "lapsed"],
                    "new_arrivals": ["new arrivals", "new collection"], "promotion": ["promotion", "promo", "sale"],
                    "sms": ["sms", "text message", "texts", "text them", "text the", "texting", "texted"],
                    "cross_sell": ["cross-sell", "cross sell"], "onboarding": ["welcome", "onboarding"],
                    "churn": ["at risk", "at-risk", "churn", "likely to churn", "lapsing"],
                    "clv": ["high value", "high-value", "valuable", "lifetime value", "best customers"]},
          requests=["launch the win-back campaign", "launch it", "launch the campaign plan we just made",
                    "launch a win-back email campaign", "launch the planned campaign"])
def launch_campaign(con: duckdb.DuckDBPyConnection, params: LaunchParams, ctx: ToolContext) -> ActionResult:
    """Launch a campaign plan in one approval: its audience, consent checks, randomised holdout and delivery."""
    def prepare() -> tuple:
        plan, variant, name, send_at, problems = _plan(con, params, keep=True)
        if problems:
            raise ToolError("The content fails compliance: " + "; ".join(problems))
        return plan, variant, name, send_at

    def write(con, aid: str, prepared: tuple):
        plan, variant, name, send_at = prepared
        campaign_id = "CMP-" + aid[4:14].upper()
        size, excluded = exclusions(con, plan.screened, plan.args)  # consent as of now, inside the transaction
        _refuse_nobody(size, excluded, params.channel)
        now = ctx.now or datetime.now()
        con.execute("INSERT INTO audiences (audience_id, name, source, definition, size, excluded_no_consent, "
                    "created_at, created_by, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [aid, name, plan.audience["source"], params_key(params), size, sum(excluded.values()), now,
                     ctx.user, params.channel])
        con.execute(f"""INSERT INTO audience_members (audience_id, customer_id, holdout)
            SELECT ?, customer_id, {held_out_sql('customer_id', campaign_id, plan.holdout_pct)}
            FROM ({plan.screened}) WHERE excluded IS NULL""", [aid, *plan.args])
        con.execute("INSERT INTO campaign_launches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [campaign_id, name, plan.goal, params.channel, params.offer, aid, variant, send_at,
                     plan.holdout_pct, params.window_days, None, plan.lift, now, ctx.user])
        con.execute("""INSERT INTO campaign_members SELECT ?, customer_id, CASE WHEN holdout THEN 'holdout'
            ELSE 'treated' END FROM audience_members WHERE audience_id = ?""", [campaign_id, aid])
        treated, held = con.execute("SELECT count_if(arm = 'treated'), count_if(arm = 'holdout') FROM "
                                    "campaign_members WHERE campaign_id = ?", [campaign_id]).fetchall()[0]
        cost = round(treated * plan.cost_per_message, 2)
        con.execute("UPDATE campaign_launches SET cost = ? WHERE campaign_id = ?", [cost, campaign_id])
        contact = CONTACT_COLUMN[params.channel]
        export = export_csv(con, f"""SELECT m.customer_id{f', c.{contact}' if contact else ''}
            FROM campaign_members m JOIN customers c USING (customer_id)
            WHERE m.campaign_id = ? AND m.arm = 'treated' ORDER BY 1""", [campaign_id],
                            ctx.home / "outbox" / f"campaign_{campaign_id}.csv")
        summary = (f"Launched '{name}' ({campaign_id}): {variant!r} by {params.channel} on "
                   f"{send_at:%Y-%m-%d %H:%M} to {treated:,} customers, {held:,} held out at random "
                   f"({held / max(1, treated + held):.1%}); {describe(excluded)} at launch; cost {cost:,.2f}. "
                   f"Recipients in {export.name}. Measure it with measure_campaign after the {params.window_days}-day "
                   "window.")
        return {"campaign_id": campaign_id, "audience_id": aid, "name": name, "channel": params.channel,
                "variant": variant, "send_at": send_at, "recipients": treated, "holdout": held,
                "holdout_pct": plan.holdout_pct, "cost": cost, "excluded_no_consent": sum(excluded.values()),
                "excluded": excluded, "export": export.name, "summary": summary}, export

    return run_once(con, ctx, "launch_campaign", params, prepare, write)
