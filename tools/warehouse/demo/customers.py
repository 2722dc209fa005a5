"""The demo's customers and what they do: the population, orders, e-mail (sends, consent), events, and leads.

`draw_customers` draws who exists (segment, sign-up, drop-out day) and returns them as `Customers`; the other
generators here and in marketing.py and text.py draw around that. Churn drivers (world.CHURN_DRIVERS) are planted
here: bad experiences shorten lifetimes and raise tickets, e-mail engagement falls before drop-out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta

import duckdb
import numpy as np
import pyarrow as pa

from tools.warehouse.demo.columns import Tables, dates, dictionary, insert, timestamps
from tools.warehouse.demo.text import FIRST_NAMES, LAST_NAMES, SUBJECTS, write_customers, write_email_sends
from tools.warehouse.demo.world import (
    ACQUISITION,
    CATEGORIES,
    CATEGORY_MIX,
    CITIES,
    DAYS,
    LAPSED,
    LOYAL,
    NEW_EXPLORERS,
    SEGMENTS,
    START,
    per_segment,
    sigmoid,
)

__all__ = ["Customers", "Sends", "draw_customers", "email", "events", "leads", "orders", "write_newsletters"]


@dataclass(frozen=True)
class Customers:
    """The drawn population (or one block of it), one entry per customer; days are offsets from START."""
    ids: np.ndarray
    segment: np.ndarray          # code into SEGMENTS
    signup: np.ndarray
    death: np.ndarray            # the drop-out day (may lie past the end)
    active_end: np.ndarray       # the last active day inside the window
    bad_experience: np.ndarray
    email_ok: np.ndarray         # marketing opt-in is true
    first_name: np.ndarray       # code into FIRST_NAMES

    @property
    def n(self) -> int:
        return self.ids.size

    def trait(self, field: str) -> np.ndarray:
        """Each customer's value of a Segment field."""
        return per_segment(field)[self.segment]

    def days_active(self, rng: np.random.Generator, who: np.ndarray) -> np.ndarray:
        """A uniformly drawn day between sign-up and the last active day, for each customer index in `who`."""
        span = (self.active_end - self.signup + 1)[who]
        return self.signup[who] + np.floor(rng.random(who.size) * span).astype(np.int64)


def draw_customers(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, n: int, out: Tables,
                   first_id: int = 1) -> Customers:
    """Draw `n` customers (ids from `first_id`); write customers (text assembled in SQL) and demo_truth."""
    segment = rng.choice(len(SEGMENTS), size=n, p=per_segment("share"))
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    signup = _signup_days(rng, segment)
    bad = rng.random(n) < 0.18
    risk = np.where(bad, 3.0, 1.0)
    death = _drop_out_days(rng, segment, signup, risk)
    opt = rng.random(n)
    opt_in = np.where(opt < 0.85, True, np.where(opt < 0.97, False, None))
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    city = rng.integers(0, len(CITIES), n)
    write_customers(con, out.name("customers"), {
        "customer_id": ids, "first": dictionary(first, FIRST_NAMES), "last": dictionary(last, LAST_NAMES),
        "city": dictionary(city, [name for name, _ in CITIES]),
        "country": dictionary(city, [country for _, country in CITIES]), "signup_date": dates(signup),
        "acq": dictionary(rng.integers(0, len(ACQUISITION), n), ACQUISITION),
        "loyalty": rng.random(n) < np.where(segment == LOYAL, 0.7, 0.2), "opt_in": pa.array(opt_in, pa.bool_())})
    insert(con, out.name("demo_truth"), {"customer_id": ids,
                                         "planted_segment": dictionary(segment, [s.name for s in SEGMENTS]),
                                         "churn_risk_factor": risk, "bad_experience": bad})
    return Customers(ids=ids, segment=segment, signup=signup, death=death, active_end=np.minimum(death, DAYS - 1),
                     bad_experience=bad, email_ok=opt_in == True, first_name=first)  # noqa: E712


def _signup_days(rng: np.random.Generator, segment: np.ndarray) -> np.ndarray:
    """Sign-up days: new explorers joined in the last 150 days, the lapsed in the first 260."""
    signup = rng.integers(0, DAYS - 150, size=segment.size)
    new = segment == NEW_EXPLORERS
    signup[new] = rng.integers(DAYS - 150, DAYS - 14, size=new.sum())
    lapsed = segment == LAPSED
    signup[lapsed] = rng.integers(0, 260, size=lapsed.sum())
    return signup


def _drop_out_days(rng: np.random.Generator, segment: np.ndarray, signup: np.ndarray,
                   risk: np.ndarray) -> np.ndarray:
    """Drop-out days: an exponential lifetime (segment mean ÷ risk); the lapsed stop 220+ days before the end."""
    life = per_segment("lifetime_days")[segment]
    death = signup + rng.exponential(np.maximum(life, 1) / risk)
    lapsed = segment == LAPSED
    death[lapsed] = signup[lapsed] + 60 + rng.random(lapsed.sum()) * np.maximum(DAYS - 220 - signup[lapsed] - 60, 1)
    return np.floor(death).astype(np.int64)


def orders(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers, out: Tables) -> None:
    """Write orders: Poisson purchases at the segment's rate while active, the first on the sign-up day."""
    span = (customers.active_end - customers.signup).clip(0)
    count = 1 + rng.poisson(customers.trait("orders_per_year") * span / 365.0)
    who = np.repeat(np.arange(customers.n), count)
    first = np.r_[0, np.cumsum(count)[:-1]]
    day = customers.signup[who] + np.floor(rng.random(who.size) * (span[who] + 1)).astype(np.int64)
    day[first] = customers.signup
    segment = customers.segment[who]
    aov = per_segment("order_value")[segment]
    gross = np.round(aov * rng.lognormal(-0.06, 0.35, who.size), 2)
    discounted = rng.random(who.size) < per_segment("discount_share")[segment]
    discount = np.where(discounted, np.round(gross * rng.uniform(0.1, 0.3, who.size), 2), 0.0)
    category = (rng.random(who.size)[:, None] > CATEGORY_MIX[segment].cumsum(axis=1)).sum(axis=1)
    app = per_segment("app_share")[segment]
    u = rng.random(who.size)
    channel = np.where(u < app, 1, np.where(u < app + 0.1, 2, 0))
    order = np.lexsort((customers.ids[who], day))
    insert(con, out.name("orders"), {
        "order_id": out.take("orders", who.size), "customer_id": customers.ids[who][order],
        "order_date": dates(day[order]), "revenue": (gross - discount)[order],
        "items": (1 + rng.poisson(aov / 80.0))[order].astype(np.int32),
        "category": dictionary(category[order], CATEGORIES), "discount": discount[order],
        "channel": dictionary(channel[order], ("web", "app", "store"))})


@dataclass(frozen=True)
class Sends:
    """E-mail sends, one entry per send: customer index, day and second, campaign and subject codes, outcome."""
    customer: np.ndarray
    day: np.ndarray
    second: np.ndarray
    campaign: np.ndarray         # position in the newsletter list
    subject: np.ndarray          # code into SUBJECTS
    opened: np.ndarray
    clicked: np.ndarray
    unsubscribed: np.ndarray

    @classmethod
    def concat(cls, parts: list[Sends]) -> Sends:
        return cls(*(np.concatenate([getattr(part, field.name) for part in parts]) for field in fields(cls)))


def email(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers, out: Tables,
          newsletters: bool = True) -> Sends:
    """Write the sends of the four-weekly newsletters and consent (and the newsletters unless `newsletters` is
    false: the blocks after a large world's first); returns the sends (events log their outcome)."""
    letters = _newsletters()
    sends = _sends(rng, customers, [day for _, day in letters])
    write_email_sends(con, out.name("email_sends"), {
        "send_id": out.take("email_sends", sends.customer.size), "customer_id": customers.ids[sends.customer],
        "campaign_id": dictionary(sends.campaign, [cid for cid, _ in letters]),
        "sent_at": timestamps(sends.day, sends.second), "subject": sends.subject,
        "first": dictionary(customers.first_name[sends.customer], FIRST_NAMES),
        "opened": sends.opened, "clicked": sends.clicked, "unsub": sends.unsubscribed})
    if newsletters:
        write_newsletters(con)
    _consent(con, rng, customers, sends, out)
    return sends


def _newsletters() -> list[tuple[str, int]]:
    """The four-weekly newsletters: campaign id and send day."""
    return [(f"EM-{k + 1:03d}", day) for k, day in enumerate(range(14, DAYS, 28))]


def write_newsletters(con: duckdb.DuckDBPyConnection) -> None:
    """Write the newsletters to campaigns."""
    con.executemany("INSERT INTO campaigns VALUES (?, ?, 'email', 'retention', ?, ?, 200.0)",
                    [(cid, f"Newsletter {START + timedelta(days=day):%b %Y}", START + timedelta(days=day),
                      START + timedelta(days=day)) for cid, day in _newsletters()])


def _subject_effects() -> np.ndarray:
    """The planted subject-line effects on the log-odds of opening, one per SUBJECTS entry."""
    features = np.array([subject[1:] for subject in SUBJECTS], dtype=float)
    too_long = np.array([len(subject[0]) > 60 for subject in SUBJECTS], dtype=float)
    return features @ np.array([0.35, 0.2, 0.15, 0.25, -0.05]) - 0.45 * too_long


def _sends(rng: np.random.Generator, customers: Customers, newsletter_days: list[int]) -> Sends:
    """Each newsletter reaches 15 % of subscribers; opens fall before drop-out, unsubscribes rise."""
    subscribed = customers.email_ok.copy()
    open_base = customers.trait("open_rate")
    subject_effect = _subject_effects()
    parts = []
    for k, day in enumerate(newsletter_days):
        idx = np.flatnonzero(subscribed & (customers.signup <= day) & (rng.random(customers.n) < 0.15))
        variant = rng.choice(len(SUBJECTS), size=idx.size) if k % 3 else np.full(idx.size, k % len(SUBJECTS))
        death = customers.death[idx]
        near_death = (death > day) & (death - day < 90)
        dead = death <= day
        logit = (np.log(open_base[idx] / (1 - open_base[idx])) + subject_effect[variant]
                 - 1.2 * near_death - 2.0 * dead)
        opened = rng.random(idx.size) < sigmoid(logit)
        clicked = opened & (rng.random(idx.size) < np.where(near_death | dead, 0.05, 0.2))
        unsub = rng.random(idx.size) < (0.002 + 0.03 * near_death + 0.01 * customers.bad_experience[idx])
        subscribed[idx[unsub]] = False
        parts.append(Sends(customer=idx, day=np.full(idx.size, day), second=rng.integers(28800, 36000, idx.size),
                           campaign=np.full(idx.size, k), subject=variant, opened=opened, clicked=clicked,
                           unsubscribed=unsub))
    return Sends.concat(parts)


def _consent(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers, sends: Sends,
             out: Tables) -> None:
    """Write consent: e-mail follows opt-in and unsubscribes; sms and push are separate opt-ins."""
    n = customers.n
    unsub_day = np.full(n, -1)
    unsub_day[sends.customer[sends.unsubscribed]] = sends.day[sends.unsubscribed]
    parts = []
    for code, share in enumerate((None, 0.4, 0.3)):  # e-mail, sms, push
        opted = (customers.email_ok & (unsub_day < 0)) if share is None else (rng.random(n) < share)
        unsubscribed = (share is None) & (unsub_day >= 0)
        source = np.where(unsubscribed, 2, np.where(rng.random(n) < 0.7, 0, 1))
        parts.append((np.full(n, code), opted, np.where(unsubscribed, unsub_day, customers.signup), source))
    channel, opted, when, source = (np.concatenate(column) for column in zip(*parts, strict=True))
    insert(con, out.name("consent"), {
        "customer_id": np.tile(customers.ids, 3), "channel": dictionary(channel, ("email", "sms", "push")),
        "opted_in": opted, "updated_at": timestamps(when, np.full(when.size, 43200)),
        "source": dictionary(source, ("checkout", "preference_center", "unsubscribe_link"))})


def events(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: Customers, sends: Sends,
           out: Tables) -> None:
    """Write events: sessions (some add to cart), e-mail opens/clicks/unsubscribes, support tickets."""
    months = (customers.active_end - customers.signup + 1) / 30.0
    sessions = np.repeat(np.arange(customers.n), rng.poisson(customers.trait("sessions_per_month") * months))
    session_day = customers.days_active(rng, sessions)
    app = rng.random(sessions.size) < customers.trait("app_share")[sessions]
    cart = rng.random(sessions.size) < 0.2
    tickets_each = np.where(customers.bad_experience, 1 + rng.poisson(1.0, customers.n),
                            rng.poisson(0.12, customers.n))
    tickets = np.repeat(np.arange(customers.n), tickets_each)
    ticket_day = customers.days_active(rng, tickets)
    opened, clicked, unsub = sends.opened, sends.clicked, sends.unsubscribed
    # type codes: 0 page_view 1 add_to_cart 2 app_session 3 email_open 4 email_click 5 support_ticket 6 unsubscribe
    kind = np.concatenate([np.where(app, 2, 0), np.ones(cart.sum(), int), np.full(opened.sum(), 3),
                           np.full(clicked.sum(), 4), np.full(unsub.sum(), 6), np.full(tickets.size, 5)])
    who = np.concatenate([sessions, sessions[cart], sends.customer[opened], sends.customer[clicked],
                          sends.customer[unsub], tickets])
    day = np.concatenate([session_day, session_day[cart], sends.day[opened], sends.day[clicked], sends.day[unsub],
                          ticket_day])
    second = np.concatenate([rng.integers(0, 86000, sessions.size), rng.integers(0, 86000, cart.sum()),
                             sends.second[opened] + 600, sends.second[clicked] + 900, sends.second[unsub] + 1200,
                             rng.integers(28800, 64800, tickets.size)])
    order = np.lexsort((who, second, day))
    insert(con, out.name("events"), {
        "event_id": out.take("events", kind.size), "customer_id": customers.ids[who[order]],
        "event_time": timestamps(day[order], second[order]),
        "event_type": dictionary(kind[order], ("page_view", "add_to_cart", "app_session", "email_open",
                                               "email_click", "support_ticket", "unsubscribe")),
        "channel": dictionary(np.array([0, 0, 1, 2, 2, 3, 2])[kind[order]], ("web", "app", "email", "support"))})


def leads(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, n: int) -> None:
    """Write B2B leads: won with log-odds from demo requests, source, company size, seniority and engagement."""
    created = rng.integers(0, DAYS, n)
    source = rng.choice(6, n, p=[.2, .1, .25, .2, .15, .1])
    size = rng.choice(5, n, p=[.25, .3, .2, .15, .1])
    seniority = rng.choice(5, n, p=[.35, .3, .18, .1, .07])
    pages = rng.poisson(6, n)
    mails = rng.poisson(3, n)
    demo = rng.random(n) < 0.22
    logit = (-2.4 + 1.8 * demo + np.array([.5, 1.0, .1, -.5, 0, .3])[source] + np.array([-.6, 0, .3, .6, .8])[size]
             + np.array([0, .3, .9, 1.2, 1.0])[seniority] + 0.09 * pages + 0.1 * mails)
    won = rng.random(n) < sigmoid(logit)
    is_open = created > DAYS - 46
    closed = np.minimum(created + rng.integers(7, 90, n), DAYS - 1)
    status = np.where(is_open, 0, np.where(won, 1, 2))
    insert(con, "leads", {
        "lead_id": np.arange(1, n + 1, dtype=np.int64), "created_date": dates(created),
        "source": dictionary(source, ("webinar", "referral", "paid_search", "paid_social", "content", "event")),
        "company_size": dictionary(size, ("1-10", "11-50", "51-200", "201-1000", "1000+")),
        "industry": dictionary(rng.integers(0, 6, n), ("retail", "software", "finance", "healthcare",
                                                       "manufacturing", "education")),
        "seniority": dictionary(seniority, ("individual", "manager", "director", "vp", "c_level")),
        "pages_viewed": pages.astype(np.int32), "emails_opened": mails.astype(np.int32), "demo_requested": demo,
        "status": dictionary(status, ("open", "won", "lost")),
        "closed_date": pa.array(np.where(is_open, np.datetime64("NaT"), np.datetime64(START, "D")
                                         + closed.astype("timedelta64[D]"))),
        "deal_value": np.where(status == 1, np.round(rng.lognormal(9, 0.6, n), 0), np.nan)})
    con.execute("UPDATE leads SET contact_email = 'lead' || lead_id || '@example.org', "
                "deal_value = CASE WHEN isnan(deal_value) THEN NULL ELSE deal_value END")
