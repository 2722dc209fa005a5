"""The demo's marketing: customer journeys (touchpoints, conversions), paid media (campaigns, daily ad spend),
and experiments.

Planted here: each channel's effect on journey conversion (JOURNEY_EFFECTS), adstock and saturation per channel
(MEDIA, with SATURATED_CHANNEL far past its curve's knee), the ANOMALY_DAY outage, and one experiment with a
lift (EXPERIMENT_LIFT) beside one without (EXPERIMENT_NULL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from tools.warehouse.demo.columns import Tables, dates, dictionary, insert, timestamps
from tools.warehouse.demo.customers import Customers
from tools.warehouse.demo.text import campaign_name
from tools.warehouse.demo.world import (
    ANOMALY_CHANNEL,
    ANOMALY_DAY,
    CHANNELS,
    DAYS,
    EXPERIMENT_LIFT,
    EXPERIMENT_NULL,
    JOURNEY_EFFECTS,
    MEDIA,
    START,
    Media,
    day_of,
    sigmoid,
)

__all__ = ["experiment_pools", "experiments", "journeys", "media"]
EMAIL = CHANNELS.index("email")


def _campaign_ids(channel: str, email_campaign: str) -> list[str]:
    """A channel's campaigns: two per paid channel (SEA-1, SEA-2 …), one for e-mail."""
    return [f"{channel[:3].upper()}-{i}" for i in (1, 2)] if channel != "email" else [email_campaign]


@dataclass(frozen=True)
class Journeys:
    """Journeys (customer, length, converted: one entry each) and their touches (one entry per touch)."""
    customer: np.ndarray         # customer index
    length: np.ndarray
    converted: np.ndarray
    journey: np.ndarray          # the touch's journey index
    channel: np.ndarray          # code into CHANNELS
    day: np.ndarray
    second: np.ndarray


def journeys(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers, out: Tables) -> None:
    """Write touchpoints and conversions: two journeys per customer, converting by the channels they touch."""
    drawn = _draw_journeys(rng, customers)
    first_journey = out.first("journeys", drawn.length.size)
    _touchpoints(con, rng, customers, drawn, out, first_journey)
    _conversions(con, rng, customers, drawn, out, first_journey)


def _draw_journeys(rng: np.random.Generator, customers: Customers) -> Journeys:
    """1–8 touches hours to days apart; conversion log-odds add the JOURNEY_EFFECTS of the channels present."""
    count = 2 * customers.n
    customer = rng.integers(0, customers.n, count)
    length = 1 + np.minimum(rng.poisson(1.6, count), 7)
    start = customers.days_active(rng, customer)
    journey = np.repeat(np.arange(count), length)
    channel = rng.choice(len(CHANNELS), size=journey.size, p=np.array([0.25, 0.25, 0.2, 0.08, 0.08, 0.14]))
    position = np.arange(journey.size) - np.r_[0, np.cumsum(length)[:-1]][journey]
    secs = position * rng.integers(3600, 4 * 86400, journey.size) // 2 + rng.integers(0, 3600, journey.size)
    present = np.zeros((count, len(CHANNELS)), dtype=bool)
    present[journey, channel] = True
    effects = np.array([JOURNEY_EFFECTS[name] for name in CHANNELS])
    converted = rng.random(count) < sigmoid(-2.8 + present @ effects + 0.1 * (length - 1))
    return Journeys(customer=customer, length=length, converted=converted, journey=journey, channel=channel,
                    day=start[journey] + secs // 86400, second=secs % 86400)


def _touchpoints(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers,
                 drawn: Journeys, out: Tables, first_journey: int) -> None:
    """Write the touches inside the window, each credited to one of its channel's campaigns."""
    campaigns = {channel: _campaign_ids(channel, "EM-001") for channel in CHANNELS}
    labels = [cid for channel in CHANNELS for cid in campaigns[channel]]
    first = np.cumsum([0] + [len(campaigns[channel]) for channel in CHANNELS])[:-1]
    campaign = first[drawn.channel] + np.where(drawn.channel == EMAIL, 0, rng.integers(0, 2, drawn.channel.size))
    keep = drawn.day < DAYS
    insert(con, out.name("touchpoints"), {
        "touchpoint_id": out.take("touchpoints", int(keep.sum())),
        "journey_id": (drawn.journey[keep] + first_journey).astype(np.int64),
        "customer_id": customers.ids[drawn.customer[drawn.journey[keep]]],
        "touch_time": timestamps(drawn.day[keep], drawn.second[keep]),
        "channel": dictionary(drawn.channel[keep], CHANNELS), "campaign_id": dictionary(campaign[keep], labels)})


def _conversions(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers,
                 drawn: Journeys, out: Tables, first_journey: int) -> None:
    """Write a conversion two hours after the last touch of each converting journey that ends inside the window."""
    last = np.r_[0, np.cumsum(drawn.length)[:-1]] + drawn.length - 1
    day = drawn.day[last] + (drawn.second[last] + 7200) // 86400
    second = (drawn.second[last] + 7200) % 86400
    journey = np.flatnonzero(drawn.converted & (day < DAYS))
    insert(con, out.name("conversions"), {
        "conversion_id": out.take("conversions", journey.size),
        "journey_id": (journey + first_journey).astype(np.int64), "customer_id": customers.ids[drawn.customer[journey]],
        "conversion_time": timestamps(day[journey], second[journey]),
        "value": np.round(75 * rng.lognormal(0, 0.4, journey.size), 2)})


def media(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, scale: float) -> None:
    """Write media campaigns and daily ad_spend: per channel, spend drives adstocked, saturating conversions."""
    days = np.arange(DAYS)
    dow = (np.datetime64(START, "D") + days.astype("timedelta64[D]")).astype("datetime64[D]").view("int64")
    weekday = (dow + 3) % 7  # 0 = Monday
    rows, campaigns = [], []
    for channel in CHANNELS:
        daily = _channel_days(rng, channel, scale, days, weekday)
        ids = _campaign_ids(channel, "EM-ALWAYS-ON")
        for position, (cid, share) in enumerate(zip(ids, (0.6, 0.4) if len(ids) == 2 else (1.0,), strict=True)):
            rows.append((np.full(DAYS, cid), np.full(DAYS, channel), days, *(series * share for series in daily)))
            campaigns.append((cid, campaign_name(cid, channel, position), channel,
                              "acquisition" if channel != "email" else "retention", START,
                              round(MEDIA[channel].daily_spend * scale * share, 2)))
    con.executemany("INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, NULL, ?)", campaigns)
    campaign, channel, day, spend, impressions, clicks, conversions, revenue = (
        np.concatenate(column) for column in zip(*rows, strict=True))
    insert(con, "ad_spend", {
        "date": dates(day), "campaign_id": pa.array(campaign), "channel": pa.array(channel),
        "spend": np.round(spend, 2), "impressions": impressions.astype(np.int64), "clicks": clicks.astype(np.int64),
        "conversions": np.round(conversions, 2), "revenue": np.round(revenue, 2)})


def _channel_days(rng: np.random.Generator, channel: str, scale: float, days: np.ndarray,
                  weekday: np.ndarray) -> tuple[np.ndarray, ...]:
    """One channel's daily spend, impressions, clicks, conversions and revenue (ANOMALY_DAY planted)."""
    params = MEDIA[channel]
    walk = np.cumsum(rng.normal(0, 0.06, DAYS))
    walk = walk - np.convolve(walk, np.ones(60) / 60, mode="same")
    flights = 1 + 0.6 * (np.sin(2 * np.pi * days / rng.uniform(50, 120)) > 0.6)
    spend = params.daily_spend * scale * np.exp(walk) * flights * (1 + 0.1 * (weekday < 5))
    spend = np.round(spend * rng.uniform(0.85, 1.15, DAYS), 2)
    conversions = np.maximum(_mean_conversions(spend, params, scale, weekday) * rng.normal(1, 0.08, DAYS), 0)
    if channel == ANOMALY_CHANNEL:
        conversions[day_of(ANOMALY_DAY)] *= 0.25
    revenue = conversions * params.revenue_per_conversion * rng.normal(1, 0.05, DAYS)
    impressions = np.round(spend / params.cpm * 1000 * rng.normal(1, 0.03, DAYS))
    clicks = np.round(impressions * params.ctr * rng.normal(1, 0.05, DAYS))
    return spend, impressions, clicks, conversions, revenue


def _mean_conversions(spend: np.ndarray, params: Media, scale: float, weekday: np.ndarray) -> np.ndarray:
    """Expected daily conversions: geometric adstock, then exponential saturation, a little higher at weekends."""
    adstock = np.zeros(DAYS)
    for t in range(DAYS):  # recursive filter over days (730 steps), not rows
        adstock[t] = spend[t] + (params.adstock * adstock[t - 1] if t else 0.0)
    kappa = params.kappa * params.daily_spend * scale / (1 - params.adstock)
    return params.max_conversions * scale * (1 - np.exp(-adstock / kappa)) * (1 + 0.08 * (weekday >= 5))


@dataclass(frozen=True)
class Arms:
    """One experiment's assignments: customer id, arm, whether it converted and the revenue."""
    customer: np.ndarray
    arm: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray


def _assign(rng: np.random.Generator, eligible: np.ndarray, size: int, rates: tuple[float, ...],
            order_value: float) -> Arms:
    """Assign `size` eligible customers at random to one arm per rate; each converts at its arm's rate."""
    customer = rng.choice(eligible, size, replace=False)
    arm = rng.integers(0, len(rates), size)
    converted = rng.random(size) < np.array(rates)[arm]
    revenue = np.where(converted, np.round(order_value * rng.lognormal(0, 0.5, size), 2), 0.0)
    return Arms(customer, arm, converted, revenue)


LIFT_DAYS, NULL_DAYS = (date(2026, 5, 4), date(2026, 5, 31)), (date(2026, 7, 6), date(2026, 7, 26))


def experiment_pools(customers: Customers) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the customers each experiment may enrol: active at the lift test's start; signed up before the
    null test's. A large world collects them block by block (an id each, not the population's draws)."""
    lift_start, null_start = day_of(LIFT_DAYS[0]), day_of(NULL_DAYS[0])
    return (customers.ids[(customers.signup < lift_start) & (customers.death > lift_start)],
            customers.ids[customers.signup < null_start])


def experiments(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, lift_pool: np.ndarray,
                null_pool: np.ndarray, population: int) -> None:
    """Write two experiments and their assignments: free shipping lifts conversion, subject-line style does not.
    The pools are experiment_pools' ids; `population` is the number of customers in the world."""
    lift_id, control, treatment, p_control, p_treatment = EXPERIMENT_LIFT
    null_id, null_control, null_arms, p_null = EXPERIMENT_NULL
    (lift_start, lift_end), (null_start, null_end) = LIFT_DAYS, NULL_DAYS
    con.executemany("INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (lift_id, "Free shipping banner", "A free-shipping banner on the home page raises conversion.",
         "converted", lift_start, lift_end, control),
        (null_id, "Subject line style", "Emoji or question subject lines lift conversion over plain ones.",
         "converted", null_start, null_end, null_control)])
    lift = _assign(rng, lift_pool, min(lift_pool.size, max(4000, int(population * 0.6)), 60_000),
                   (p_control, p_treatment), 60)
    null = _assign(rng, null_pool, min(null_pool.size, max(3000, int(population * 0.6)), 45_000), (p_null,) * 3, 55)
    n_lift, n_null = lift.arm.size, null.arm.size
    insert(con, "experiment_assignments", {
        "experiment_id": dictionary(np.r_[np.zeros(n_lift, int), np.ones(n_null, int)], (lift_id, null_id)),
        "customer_id": np.r_[lift.customer, null.customer],
        "variant": dictionary(np.r_[lift.arm, 2 + null.arm], (control, treatment, null_control, *null_arms)),
        "assigned_date": dates(np.r_[day_of(lift_start) + rng.integers(0, 7, n_lift),
                                     day_of(null_start) + rng.integers(0, 5, n_null)]),
        "converted": np.r_[lift.converted, null.converted], "revenue": np.r_[lift.revenue, null.revenue]})
