"""plan_campaign: a brief becomes one campaign plan, every part of it reused from the tools that own it.

The audience comes from a churn, CLV or segmentation run or a saved audience, screened for consent on the channel
(tools/actions/audiences.py, consent.py); the copy from generate_content_variants (compliant, ranked); the holdout
from plan_experiment (the smallest share that detects the expected lift at the given power); the expected lift from
the measured outcomes of past campaigns with the same channel and goal (campaign_outcomes), else the user's, stated
as an assumption. Nothing is written but measurements of past campaigns not yet kept. launch_campaign
(tools/actions/campaigns.py) turns the same brief into one approval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools.actions.audiences import AudienceParams, _audience
from tools.actions.consent import Channel, describe, exclusions, screened_sql
from tools.analytics.campaign_measure import past_lifts
from tools.analytics.content import ContentParams, generate_content_variants, resolve_goal
from tools.analytics.experiments.plan import PlanParams, plan_experiment
from tools.analytics.experiments.stats import detectable_effect_size, lift_from_cohens_h
from tools.common import money
from tools.registry import ToolError, ToolResult, get_tool, register
from tools.warehouse import data_end

COST_PER_MESSAGE = {"email": 0.005, "sms": 0.05, "push": 0.001}
"""Default cost of one message per channel (pass `cost_per_message` for yours)."""
CONTENT_CHANNEL = {"email": "email_subject", "sms": "sms", "push": "push"}
HOLDOUT_GRID = [h / 100 for h in range(10, 51)]
"""Holdouts proposed: 10 % to 50 % (plan_experiment sizes at most 10 treated per held-out customer); a smaller
one may be given."""
Z95 = 1.959964


class CampaignBase(BaseModel, use_attribute_docstrings=True):
    """What a plan and a launch share: whom, by which channel, at what cost, with what lift and holdout."""

    model_config = ConfigDict(extra="forbid")

    offer: str | None = Field(None, max_length=120)
    """The offer, e.g. "15% off" (default: the goal's usual offer)."""
    source: Literal["churn", "clv", "segment", "audience"] = "churn"
    """Who it is for: customers at risk (a churn run), high value (a CLV run), a segment, or a saved audience."""
    risk_band: Literal["high", "medium", "low"] | None = "high"
    """Churn risk band to include (source=churn)."""
    segment: str | None = None
    """Segment name or id (source=segment)."""
    saved_audience: str | None = None
    """Saved audience id or name (source=audience)."""
    run_id: str | None = None
    """The churn, CLV or segmentation run to read (default: the latest; a churn run is made if there is none)."""
    top_n: int | None = Field(None, ge=1, le=1_000_000)
    """Keep only the N highest-scoring customers."""
    channel: Channel = "email"
    """email, sms or push: consent on it is required."""
    budget: float | None = Field(None, gt=0)
    """Most the send may cost; the audience is cut to the highest scores that fit."""
    cost_per_message: float | None = Field(None, ge=0)
    """Cost of one message (default: email 0.005, sms 0.05, push 0.001)."""
    expected_lift: float | None = Field(None, gt=0, lt=0.5)
    """Expected absolute lift in conversion rate (0.02 = +2 pp; default: the measured lift of past campaigns with
    the same channel and goal)."""
    holdout_pct: float | None = Field(None, ge=0.02, le=0.5)
    """Share of the audience held out (default: the smallest that detects the expected lift)."""
    power: float = Field(0.8, gt=0.5, lt=1)
    """Chance of detecting the expected lift if it is real."""
    window_days: int = Field(30, ge=3, le=120)
    """Days after the send in which an order counts as a conversion."""


class CampaignBrief(CampaignBase):
    goal: str = Field("win back lapsed customers", min_length=2, max_length=300)
    """What the campaign should achieve (win-back, promotion, cross-sell, new arrivals …)."""
    send_after: date | None = None
    """First day the send may go out (default: the day after the data ends)."""
    send_before: date | None = None
    """Last day the send may go out."""


class CampaignPlanResult(ToolResult):
    pass


@dataclass
class Plan:
    """What plan_campaign shows and launch_campaign executes."""

    goal: str
    screened: str
    """The audience as SQL with `excluded` (consent on the channel, now), and its arguments."""
    args: list
    audience: dict
    baseline: float
    value_per_conversion: float
    variants: list[dict]
    holdout_pct: float
    send_at: datetime
    cost_per_message: float
    lift: float | None
    lift_range: tuple[float, float] | None
    lift_basis: str
    detectable_lift: float | None
    notes: list[str] = field(default_factory=list)
    pinned: dict = field(default_factory=dict)

    @property
    def eligible(self) -> int:
        return self.audience["size"]

    @property
    def recipients(self) -> int:
        return self.eligible - round(self.eligible * self.holdout_pct)

    @property
    def cost(self) -> float:
        return round(self.recipients * self.cost_per_message, 2)


def audience_sql(con: duckdb.DuckDBPyConnection, brief: CampaignBrief) -> tuple[str, list, dict, list[str]]:
    """(screened SQL, args, counts and source, notes): the brief's audience with consent applied on its channel."""
    notes: list[str] = []
    if brief.source == "audience":
        from tools.actions.sends import _resolve_audience

        if not brief.saved_audience:
            raise ToolError("source=audience needs `saved_audience`: a saved audience's name or id "
                            "(create_audience).")
        aid, name, _ = _resolve_audience(con, brief.saved_audience)
        limit = f"ORDER BY customer_id LIMIT {int(brief.top_n)}" if brief.top_n else ""
        screened = screened_sql(f"SELECT customer_id, 0.0 AS score FROM audience_members WHERE audience_id = ? "
                                f"{limit}", brief.channel)
        size, excluded = exclusions(con, screened, [aid])
        return screened, [aid], {"source": f"audience {name}", "size": size, "channel": brief.channel,
                                 "excluded_no_consent": sum(excluded.values()), "excluded": excluded,
                                 "candidates": size + sum(excluded.values())}, notes
    table = {"churn": "churn_scores", "clv": "clv_scores", "segment": "customer_segments"}[brief.source]
    maker = {"churn": "score_churn", "clv": "predict_clv"}.get(brief.source)
    if maker and not brief.run_id and not con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]:
        run = get_tool(maker).run(con, {}).metrics.get("run_id")
        notes.append(f"There was no {brief.source} run, so {maker} ran now (run {run}).")
    top_n = brief.top_n
    if brief.source == "clv" and top_n is None:  # "high value": the top fifth by CLV unless told otherwise
        scored = con.execute("SELECT count(*) FROM clv_scores WHERE run_id = coalesce(?, (SELECT max(run_id) FROM "
                             "clv_scores))", [brief.run_id]).fetchall()[0][0]
        top_n = max(1, round(0.2 * scored))
        notes.append(f"High value = the top 20 % by predicted CLV ({top_n:,} customers); pass top_n for another cut.")
    params = AudienceParams(name="campaign plan", source=brief.source, channel=brief.channel, run_id=brief.run_id,
                            segment=brief.segment, risk_band=brief.risk_band if brief.source == "churn" else None,
                            top_n=top_n)
    screened, args, info = _audience(con, params)
    return screened, args, info, notes


def history_rates(con: duckdb.DuckDBPyConnection, screened: str, args: list, today: date,
                  window: int) -> tuple[float, float]:
    """(share of the eligible audience who ordered in the last `window` days, their average order value over the
    last year, else everyone's): the baseline the forecast starts from."""
    row = con.execute(f"""WITH a AS (SELECT DISTINCT customer_id FROM ({screened}) WHERE excluded IS NULL),
        r AS (SELECT DISTINCT customer_id FROM orders WHERE order_date > ?::DATE - ?::INTEGER AND order_date <= ?)
        SELECT avg((r.customer_id IS NOT NULL)::INT)::DOUBLE,
               (SELECT avg(revenue) FROM orders o JOIN a USING (customer_id) WHERE o.order_date > ?::DATE - 365),
               (SELECT avg(revenue) FROM orders) FROM a LEFT JOIN r USING (customer_id)""",
                      [*args, today, window, today, today]).fetchall()[0]
    return float(row[0] or 0.0), float(row[1] or row[2] or 0.0)


def expected_lift(con, brief: CampaignBrief, goal: str, today: date,
                  keep: bool = True) -> tuple[float | None, tuple | None, str]:
    """The lift to plan for, its range and the sentence saying where it comes from."""
    if brief.expected_lift is not None:
        lift = brief.expected_lift
        return lift, (lift / 2, lift * 1.5), (f"the expected lift of {lift * 100:+.2f} pp is your assumption; the "
                                              "range assumes it may be half or one and a half times that")
    past = past_lifts(con, brief.channel, goal, today, keep)
    if not past:
        return None, None, (f"no lift assumed: no past {goal} campaign by {brief.channel} has been measured; give "
                            "`expected_lift` for a forecast")
    weights = [1 / max(((p["ci_high"] - p["ci_low"]) / (2 * Z95)) ** 2, 1e-12) for p in past]
    lift = sum(w * p["lift"] for w, p in zip(weights, past, strict=True)) / sum(weights)
    se = math.sqrt(1 / sum(weights))
    ids = ", ".join(p["campaign_id"] for p in past)
    return lift, (lift - Z95 * se, lift + Z95 * se), (
        f"the default expected lift of {lift * 100:+.2f} pp is the measured lift of {len(past)} past {goal} "
        f"campaign(s) by {brief.channel} ({ids}, pooled by precision; 95 % confidence interval {100 * (lift - Z95 * se):+.2f} to "
        f"{100 * (lift + Z95 * se):+.2f} pp), assumed to carry over to this audience")


def choose_holdout(con, brief: CampaignBrief, eligible: int, baseline: float,
                   lift: float | None) -> tuple[float, float | None, list[str]]:
    """(holdout share, the lift it detects at the power asked, notes), sized with plan_experiment."""
    base = min(max(baseline, 0.001), 0.95)
    notes = []

    def detectable(h: float) -> float | None:
        held = round(eligible * h)
        if held < 2 or eligible - held < 2:
            return None
        es = detectable_effect_size(held, 0.05, brief.power, (1 - h) / h, t_test=False)  # as plan_experiment
        return lift_from_cohens_h(base, es)

    if brief.holdout_pct is not None:
        return brief.holdout_pct, detectable(brief.holdout_pct), notes
    if lift is None:
        notes.append("No expected lift: the holdout is the usual 10 %; the detectable lift says what it can show.")
        return 0.10, detectable(0.10), notes
    if lift <= 0:  # past campaigns of this goal showed no lift: nothing to size for, and nothing promised
        notes.append(f"Past campaigns of this goal measured {lift * 100:+.2f} pp (no lift): the holdout is the usual "
                     "10 %, and the lift it can detect is shown; give expected_lift to size it for another effect.")
        return 0.10, detectable(0.10), notes
    for h in HOLDOUT_GRID:
        sized = plan_experiment(con, PlanParams(baseline=base, mde=min(lift, 0.99 - base), ratio=(1 - h) / h,
                                                power=brief.power)).metrics
        if sized["sample_size_control"] <= eligible * h:
            return h, detectable(h), notes
    notes.append(f"{eligible:,} customers are too few to detect {lift * 100:+.2f} pp with {brief.power:.0%} power at "
                 "any holdout up to 50 %: the holdout is 20 %, and the lift it can detect is shown.")
    return 0.20, detectable(0.20), notes


def send_time(con, brief: CampaignBrief, today: date) -> datetime:
    """The first Tuesday to Thursday in the send window, at the hour e-mails are opened most (else 9:00)."""
    first = max(brief.send_after or today + timedelta(days=1), today + timedelta(days=1))
    day = next((first + timedelta(days=i) for i in range(7) if (first + timedelta(days=i)).weekday() in (1, 2, 3)),
               first)
    if brief.send_before and day > brief.send_before:
        day = first
    if brief.send_before and first > brief.send_before:
        raise ToolError(f"The send window ends on {brief.send_before}, before the first possible day {first}.")
    hour = con.execute("""SELECT hour(event_time) FROM events WHERE event_type = 'email_open'
        AND event_time >= ?::DATE - 90 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""", [today]).fetchall()
    return datetime.combine(day, time(hour[0][0] if hour else 9))


def build_plan(con: duckdb.DuckDBPyConnection, brief: CampaignBrief, today: date | None = None,
               keep: bool = True) -> Plan:
    """The plan of a brief (the same brief and warehouse give the same plan: launch_campaign relies on it);
    `keep` False changes nothing (an approver's preview)."""
    today = today or data_end(con)
    if today is None:
        raise ToolError("There is no dated data yet. Run `northstar init --demo` or load your tables.")
    goal = resolve_goal(brief.goal)
    cpm = brief.cost_per_message if brief.cost_per_message is not None else COST_PER_MESSAGE[brief.channel]
    screened, args, info, notes = audience_sql(con, brief)
    if info.get("candidates") == 0:  # nobody to screen: the source itself is empty, consent is not the reason
        what = (f"segment {brief.segment!r} has no members in the {info.get('source') or 'latest segment run'}"
                if brief.source == "segment" else f"the {info.get('source') or brief.source} has no members here")
        raise ToolError(f"The audience is empty before any consent check: {what}. Check the name (segment_customers "
                        "lists the segments), or choose another source.")
    if info["size"] == 0:
        raise ToolError(f"Nobody in the audience may be contacted by {brief.channel} ({describe(info['excluded'])})"
                        f": choose another channel or source.")
    baseline, value = history_rates(con, screened, args, today, brief.window_days)
    lift, lift_range, basis = expected_lift(con, brief, goal, today, keep)
    holdout, detectable, more = choose_holdout(con, brief, info["size"], baseline, lift)
    notes += more
    if brief.budget is not None and cpm > 0 and info["size"] * (1 - holdout) * cpm > brief.budget:
        affordable = max(2, math.floor(brief.budget / cpm / (1 - holdout)))
        screened = (f"SELECT * FROM ({screened}) WHERE excluded IS NULL ORDER BY score DESC, customer_id "
                    f"LIMIT {affordable}")  # the budget buys the highest scores among those who may be contacted
        info = {**info, "size": min(affordable, info["size"])}
        baseline, value = history_rates(con, screened, args, today, brief.window_days)
        notes.append(f"The budget of {money(brief.budget)} covers {affordable:,} customers at {cpm} a message (holdout "
                     "included): the audience is cut to the highest scores.")
        holdout, detectable, more = choose_holdout(con, brief, info["size"], baseline, lift)
        notes += more
    content = generate_content_variants(con, ContentParams(channel=CONTENT_CHANNEL[brief.channel], goal=brief.goal,
                                                           offer=brief.offer, audience=info["source"], n=3))
    if getattr(content, "refused", False):
        raise ToolError(content.summary)
    pinned = {k: v for k, v in (info.get("pinned") or {}).items() if v}
    return Plan(goal, screened, args, info, baseline, value, content.data, holdout, send_time(con, brief, today),
                cpm, lift, lift_range, basis, detectable, notes, pinned)


def forecast(plan: Plan) -> dict:
    """Incremental conversions and revenue of the recipients, with the range of the lift assumption."""
    if plan.lift is None:
        return {}
    low, high = plan.lift_range
    r, v = plan.recipients, plan.value_per_conversion
    out = {"incremental_conversions": r * plan.lift, "incremental_conversions_low": r * max(low, 0.0),
           "incremental_conversions_high": r * high, "incremental_revenue": r * plan.lift * v,
           "incremental_revenue_low": r * max(low, 0.0) * v, "incremental_revenue_high": r * high * v}
    if plan.cost:
        out["expected_roi"] = out["incremental_revenue"] / plan.cost
    return out


def plan_metrics(plan: Plan, brief: CampaignBrief) -> dict:
    return {"goal": plan.goal, "channel": brief.channel, "audience_source": plan.audience["source"],
            "candidates": plan.audience["candidates"], "eligible": plan.eligible,
            "excluded_no_consent": plan.audience["excluded_no_consent"], "recipients": plan.recipients,
            "holdout_pct": plan.holdout_pct, "holdout": plan.eligible - plan.recipients,
            "baseline_rate": plan.baseline, "value_per_conversion": plan.value_per_conversion,
            "expected_lift": plan.lift, "expected_lift_low": plan.lift_range[0] if plan.lift_range else None,
            "expected_lift_high": plan.lift_range[1] if plan.lift_range else None, "lift_basis": plan.lift_basis,
            "detectable_lift": plan.detectable_lift, "power": brief.power, "send_at": plan.send_at,
            "window_days": brief.window_days, "cost_per_message": plan.cost_per_message, "cost": plan.cost,
            "variant": plan.variants[0]["text"], **forecast(plan),
            "launch_args": {**brief.model_dump(mode="json", exclude_none=True), **plan.pinned,
                            "variant": plan.variants[0]["text"], "send_at": plan.send_at.isoformat(),
                            "holdout_pct": plan.holdout_pct, "cost_per_message": plan.cost_per_message}}


def _summary(m: dict, plan: Plan) -> str:
    text = (f"Campaign plan ({m['goal']}, {m['channel']}): {m['eligible']:,} of {m['candidates']:,} customers may "
            f"be contacted by {m['channel']} ({m['audience_source']}; {describe(plan.audience['excluded'])}); "
            f"{m['recipients']:,} get it and "
            f"{m['holdout']:,} ({m['holdout_pct']:.0%}) are held out at random to measure it. Send "
            f"{m['send_at']:%a %Y-%m-%d %H:%M} with {m['variant']!r} (best of {len(plan.variants)} compliant "
            f"variants); cost {money(m['cost'])}. Baseline: {m['baseline_rate']:.2%} of them ordered in the last "
            f"{m['window_days']} days.")
    if m["expected_lift"] is not None:
        text += (f" Forecast: {m['incremental_conversions']:+,.0f} incremental conversions "
                 f"({m['incremental_conversions_low']:+,.0f} to {m['incremental_conversions_high']:+,.0f}) and "
                 f"{money(m['incremental_revenue'])} incremental revenue ({money(m['incremental_revenue_low'])} to "
                 f"{money(m['incremental_revenue_high'])}); basis: {m['lift_basis']}, and each incremental conversion "
                 f"worth the audience's average order of {money(m['value_per_conversion'])}.")
    else:
        text += f" No forecast: {m['lift_basis']}."
    if m["detectable_lift"] is not None:
        text += (f" With this holdout the smallest lift detectable ({m['power']:.0%} power) is "
                 f"{m['detectable_lift'] * 100:+.2f} pp.")
    return text + " Nothing is sent until launch_campaign is approved."


@register(example=CampaignBrief(goal="win back lapsed customers", offer="15% off", channel="email", holdout_pct=0.1),
          requires={"source": {"segment": "segment_customers"}},  # a segment run first when none is saved
          key_metrics=("eligible", "recipients", "holdout_pct", "expected_lift", "incremental_revenue", "cost",
                       "detectable_lift"),
          concepts={"campaign_plan": ["plan a campaign", "plan a win-back", "campaign plan", "plan the campaign",
                                      "campaign brief", "brief", "plan a win back", "plan a winback",
                                      "plan an email campaign", "plan a push campaign", "plan an sms campaign",
                                      "campaign for customers", "design a campaign", "put together a campaign",
                                      "campaign plan together", "what would a campaign bring"]},
          synonyms={"budget": ["budget", "cap the cost", "cost cap", "cost capped", "capped at", "spend cap", "cap spend",
                               "spend at most",
                               "max spend", "cost at most", "no more than", "spend more than", "spend over"],
                    "churn": ["at risk", "at-risk", "churn", "likely to churn", "lapsing", "about to leave"],
                    "clv": ["high value", "high-value", "valuable", "lifetime value", "clv", "best customers"],
                    "segment": ["segment"], "audience": ["saved audience", "existing audience"],
                    "expected_lift": ["expected lift", "expect a lift"]},
          requests=["Plan a win-back campaign for customers at risk, email, 10 % holdout",
                    "plan a win-back campaign for lapsed high-value customers in December with 15 % off",
                    "put together a push campaign for new arrivals",
                    "draft a campaign plan from this brief: promotion, sms, high-value customers",
                    "what would a win-back email to the at-risk customers bring?"])
def plan_campaign(con: duckdb.DuckDBPyConnection, params: CampaignBrief) -> CampaignPlanResult:
    """Plan a campaign from a brief: audience with consent, 3 compliant variants, holdout, send time, cost, forecast."""
    plan = build_plan(con, params)
    metrics = plan_metrics(plan, params)
    return CampaignPlanResult(summary=_summary(metrics, plan), data=plan.variants, metrics=metrics,
                              warnings=plan.notes)
