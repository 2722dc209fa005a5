"""The demo's past CRM campaigns, sent with a randomised holdout and a planted true effect, so the campaign loop
(docs/campaigns.md) can be walked and checked: `measure_campaign` must recover each planted lift.

A campaign is written as a launch (`campaign_launches`), its members and arms (`campaign_members`) and, for the
treated arm, the orders the campaign caused; the planted effect goes to `demo_campaign_truth`. The effect is
planted so the true lift is exact in expectation: organic conversions are whatever the world already holds, and each
treated customer who did not convert on their own converts because of the campaign with probability
q = lift / (1 − p₀), p₀ the audience's organic rate in the window; the expected treated rate is then p₀ + lift.

`simulate_outcomes` does the same for a campaign approved in the demo (whose send lies after the data ends):
organic conversions at a baseline rate plus a configurable true effect, so a user can walk the whole loop.
The generator is seeded from the demo's seed but is its own stream: adding campaigns changes no other table's draws.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa

from tools.warehouse.demo.columns import dictionary, insert

CAMPAIGN_TABLES = ("campaign_launches", "campaign_members", "campaign_outcomes", "demo_campaign_truth")
INCREMENTAL_ORDER_VALUE = 80.0 * float(np.exp(0.4 ** 2 / 2)) * 0.85
"""Expected revenue of an order the campaign caused: 80 × lognormal(0, 0.4) before a 15 % discount."""


class DemoCampaign(NamedTuple):
    campaign_id: str
    name: str
    goal: str
    channel: str
    offer: str | None
    variant: str
    send_at: datetime
    holdout_pct: float
    true_lift: float
    cost_per_message: float
    audience_sql: str
    """Customers eligible at the send (`?` is the send time): consent on e-mail as of then."""


_EMAIL_OK = """c.marketing_opt_in AND NOT EXISTS (SELECT 1 FROM consent k WHERE k.customer_id = c.customer_id
    AND k.channel = 'email' AND k.updated_at <= $send AND NOT k.opted_in)"""
DEMO_CAMPAIGNS = (
    DemoCampaign("WB-2025-12", "December win-back", "win_back", "email", "15% off your next order",
                 "We miss you: 15% off your next order", datetime(2025, 12, 2, 9), 0.20, 0.03, 0.005,
                 f"""SELECT c.customer_id FROM customers c JOIN (SELECT customer_id, max(order_date) AS last
                 FROM orders WHERE order_date < $send::DATE GROUP BY 1) o USING (customer_id)
                 WHERE o.last BETWEEN $send::DATE - 365 AND $send::DATE - 90 AND {_EMAIL_OK}"""),
    DemoCampaign("NA-2026-06", "June new arrivals", "new_arrivals", "email", None,
                 "New this week: the summer edit", datetime(2026, 6, 9, 9), 0.10, 0.0, 0.005,
                 f"""SELECT c.customer_id FROM customers c JOIN (SELECT customer_id, max(order_date) AS last
                 FROM orders WHERE order_date < $send::DATE GROUP BY 1) o USING (customer_id)
                 WHERE o.last >= $send::DATE - 120 AND {_EMAIL_OK}"""),
)
"""The planted campaigns: a win-back with a true lift of +3 pp (20 % holdout) and a null one (10 % holdout)."""
WINDOW_DAYS = 30
STREAM = 20
"""Salt of the campaigns' own random stream (the demo seed is the other half)."""


def past_campaigns(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Write DEMO_CAMPAIGNS (after every other generator: it reads their orders and consent)."""
    for table in CAMPAIGN_TABLES:
        con.execute(f'DELETE FROM "{table}"')
    rng = np.random.default_rng([seed, STREAM])
    for spec in DEMO_CAMPAIGNS:
        ids = con.execute(f"{spec.audience_sql} ORDER BY 1",
                          {"send": spec.send_at}).fetchnumpy()["customer_id"].astype(np.int64)
        holdout = rng.random(ids.size) < spec.holdout_pct
        cost = round(float((~holdout).sum()) * spec.cost_per_message, 2)
        con.execute("INSERT INTO campaign_launches VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, ?, 'demo')",
                    [spec.campaign_id, spec.name, spec.goal, spec.channel, spec.offer, spec.variant, spec.send_at,
                     spec.holdout_pct, WINDOW_DAYS, cost, spec.send_at - timedelta(days=3)])
        _members(con, spec.campaign_id, ids, holdout)
        organic = _converted(con, ids, spec.send_at.date())
        _plant(con, rng, spec.campaign_id, ids[~holdout & ~organic], spec.send_at.date(),
               spec.true_lift / max(1e-9, 1 - organic.mean()) if ids.size else 0.0)
        con.execute("INSERT INTO demo_campaign_truth VALUES (?, ?, ?)",
                    [spec.campaign_id, spec.true_lift, spec.true_lift * INCREMENTAL_ORDER_VALUE])


def _members(con: duckdb.DuckDBPyConnection, campaign_id: str, ids: np.ndarray, holdout: np.ndarray) -> None:
    insert(con, "campaign_members", {"campaign_id": dictionary(np.zeros(ids.size, int), [campaign_id]),
                                     "customer_id": ids,
                                     "arm": dictionary(holdout.astype(int), ("treated", "holdout"))})


def _converted(con: duckdb.DuckDBPyConnection, ids: np.ndarray, send: date) -> np.ndarray:
    """Whether each customer of `ids` (sorted) ordered in the window after `send`, as the world already holds."""
    buyers = con.execute(
        "SELECT DISTINCT customer_id FROM orders WHERE order_date >= ? AND order_date < ? + ?::INTEGER",
        [send, send, WINDOW_DAYS]).fetchnumpy()["customer_id"]
    return np.isin(ids, buyers.astype(np.int64))


def _plant(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, campaign_id: str, candidates: np.ndarray,
           send: date, q: float) -> int:
    """Orders caused by the campaign: each candidate converts with probability q, on a day of the window."""
    who = candidates[rng.random(candidates.size) < min(q, 1.0)]
    gross = np.round(80.0 * rng.lognormal(0, 0.4, who.size), 2)
    discount = np.round(gross * 0.15, 2)
    first = con.execute("SELECT coalesce(max(order_id), 0) + 1 FROM orders").fetchall()[0][0]
    days = (np.datetime64(send, "D") + rng.integers(0, WINDOW_DAYS, who.size).astype("timedelta64[D]"))
    insert(con, "orders", {
        "order_id": np.arange(first, first + who.size, dtype=np.int64), "customer_id": who,
        "order_date": pa.array(days), "revenue": gross - discount,
        "items": (1 + rng.poisson(1.0, who.size)).astype(np.int32),
        "category": pa.array(rng.choice(["apparel", "home", "beauty", "outdoor"], who.size).tolist(), pa.string()),
        "discount": discount, "channel": pa.array(np.where(rng.random(who.size) < 0.5, "web", "app").tolist())})
    return int(who.size)


def simulate_outcomes(con: duckdb.DuckDBPyConnection, campaign_id: str, true_lift: float = 0.03,
                      baseline: float | None = None, seed: int = 0) -> dict:
    """Write the orders a launched campaign's window would bring: organic conversions at `baseline` (default: the
    members' conversion rate in the same number of days before the send) in both arms, plus `true_lift` caused in
    the treated arm; records the truth in demo_campaign_truth. For walking the loop on the demo, never real data."""
    if not 0 <= true_lift < 1:
        raise ValueError("true_lift is an absolute change in conversion rate between 0 and 1 (0.03 = +3 pp)")
    row = con.execute("SELECT send_at::DATE, window_days FROM campaign_launches WHERE campaign_id = ?",
                      [campaign_id]).fetchone()
    if row is None:
        raise ValueError(f"no launched campaign {campaign_id!r}: approve a launch_campaign first")
    send, window = row
    members = con.execute("SELECT customer_id, arm = 'holdout' AS held FROM campaign_members WHERE campaign_id = ? "
                          "ORDER BY 1", [campaign_id]).fetchnumpy()
    ids, holdout = members["customer_id"].astype(np.int64), members["held"].astype(bool)
    if baseline is None:
        baseline = con.execute("""SELECT coalesce(avg((o.customer_id IS NOT NULL)::INT), 0) FROM campaign_members m
            LEFT JOIN (SELECT DISTINCT customer_id FROM orders WHERE order_date >= ?::DATE - ?::INTEGER
            AND order_date < ?) o USING (customer_id) WHERE m.campaign_id = ?""",
                               [send, window, send, campaign_id]).fetchall()[0][0]
    rng = np.random.default_rng([seed, 18, len(ids)])
    organic = rng.random(ids.size) < baseline
    planted = _plant(con, rng, campaign_id, ids[organic], send, 1.0)
    caused = _plant(con, rng, campaign_id, ids[~holdout & ~organic], send, true_lift / max(1e-9, 1 - baseline))
    con.execute("INSERT OR REPLACE INTO demo_campaign_truth VALUES (?, ?, ?)",
                [campaign_id, true_lift, true_lift * INCREMENTAL_ORDER_VALUE])
    return {"campaign_id": campaign_id, "baseline": float(baseline), "true_lift": true_lift,
            "organic_orders": planted, "caused_orders": caused}
