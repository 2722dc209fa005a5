"""Who may be contacted on a channel: marketing opt-in, then the latest consent event for that channel.

`consent` is an event log: each row is an opt-in or a withdrawal at a time, and the latest event per (customer,
channel) decides; a withdrawal wins a tie. Channel spellings are normalised on read as well as on load, so a row
loaded as 'E-mail' before normalisation existed still counts. E-mail follows `customers.marketing_opt_in` when no
e-mail event is on record; SMS and push are opt-in channels: no event on record means no consent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator

from tools.warehouse.schema import CHANNELS

OPT_IN_CHANNELS = frozenset({"sms", "push"})
"""Channels where no consent on record means no consent."""

CONTACT_COLUMN = {"email": "email", "sms": "phone", "push": None}
"""The `customers` column an export carries for each channel (push needs only the customer id)."""

Channel = Annotated[Literal["email", "sms", "push"],
                    BeforeValidator(lambda v: (CHANNELS.normalise(v) or v) if isinstance(v, str) else v)]
"""A channel Northstar sends on; "E-mail", "SMS", "text", "Push" … are read as email, sms, push."""


def _checked(channel: str) -> str:
    if channel not in CHANNELS.values:
        raise ValueError(f"unknown channel {channel!r}: {CHANNELS.hint}")
    return channel


def latest_consent_sql(channel: str) -> str:
    """The latest consent event per customer on `channel`: (customer_id, opted_in)."""
    return f"""SELECT customer_id, opted_in FROM consent WHERE {CHANNELS.sql('channel')} = '{_checked(channel)}'
        QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC, opted_in ASC) = 1"""


def screened_sql(members: str, channel: str) -> str:
    """Every row of `members` (a query with `customer_id`) plus `excluded`: NULL when the customer may be contacted
    on `channel` now, else why not (not in customers / no marketing opt-in / withdrew <channel> consent / no
    <channel> consent on record)."""
    no_record = f"'no {channel} consent on record'" if _checked(channel) in OPT_IN_CHANNELS else "NULL"
    return f"""SELECT m.*, CASE WHEN c.customer_id IS NULL THEN 'not in customers'
            WHEN c.marketing_opt_in IS NOT TRUE THEN 'no marketing opt-in'
            WHEN l.opted_in IS FALSE THEN 'withdrew {channel} consent'
            WHEN l.opted_in IS NULL THEN {no_record} END AS excluded
        FROM ({members}) m LEFT JOIN customers c ON c.customer_id = m.customer_id
        LEFT JOIN ({latest_consent_sql(channel)}) l ON l.customer_id = m.customer_id"""


def exclusions(con, screened: str, args: list) -> tuple[int, dict[str, int]]:
    """(members who may be contacted, {reason: members excluded for it}) of a screened query."""
    rows = con.execute(f"SELECT excluded, count(*) FROM ({screened}) GROUP BY 1 ORDER BY 2 DESC, 1",
                       args).fetchall()
    return sum(n for why, n in rows if why is None), {why: n for why, n in rows if why is not None}


def describe(excluded: dict[str, int]) -> str:
    """'3,120 excluded: 3,000 no marketing opt-in, 120 withdrew sms consent' (or 'none excluded')."""
    total = sum(excluded.values())
    if not total:
        return "none excluded for lack of consent"
    return f"{total:,} excluded: " + ", ".join(f"{n:,} {why}" for why, n in excluded.items())
