"""The demo world's planted truths and parameters: every number the generators draw around.

docs/demo-data.md documents the truths; tests and evals read them here (through `tools.warehouse.demo`).
Days inside the generators are offsets from START (`day_of`); planted effects are log-odds that `sigmoid`
turns into probabilities. No SQL and no Arrow here: those are columns.py's.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import numpy as np

START = date(2024, 10, 1)
END = date(2026, 9, 30)
DAYS = (END - START).days + 1
CHANNELS = ("search", "social", "display", "video", "affiliate", "email")
ANOMALY_DAY = date(2026, 6, 17)          # search conversions fall to 25 % (tracking outage)
ANOMALY_CHANNEL = "search"
SPIKE_WEEK = date(2026, 8, 3)            # Monday of the week with the negative delivery spike
SATURATED_CHANNEL = "display"            # spends far past its saturation point
EXPERIMENT_LIFT = ("EXP-FREESHIP", "control", "free_shipping", 0.040, 0.052)
EXPERIMENT_NULL = ("EXP-SUBJECT", "control", ("emoji", "question"), 0.060)
JOURNEY_EFFECTS = {"search": 1.2, "email": 1.0, "affiliate": 0.6, "social": 0.4, "video": 0.2, "display": 0.0}
CHURN_DRIVERS = ("support tickets (bad experience: drop-out hazard × 3)",
                 "e-mail disengagement before drop-out (opens fall, unsubscribes rise)",
                 "discount dependence (bargain hunters drop out sooner)")


class Segment(NamedTuple):
    name: str
    share: float
    orders_per_year: float
    order_value: float
    discount_share: float        # share of orders with a discount
    open_rate: float             # e-mail open probability before churn effects
    sessions_per_month: float
    app_share: float             # share of orders and sessions in the app
    lifetime_days: float         # mean of the exponential lifetime (the lapsed drop out on their own schedule)


#                     name                    share  orders/yr  aov  discount  open  sessions/mo  app   life(d)
SEGMENTS = (Segment("Loyal high spenders",    0.15,  8.0,      160,  0.05,     0.45, 1.2,         0.6, 2000),
            Segment("Bargain hunters",        0.25,  5.0,      40,   0.85,     0.30, 0.5,         0.3, 420),
            Segment("Occasional big-ticket",  0.15,  1.2,      330,  0.10,     0.18, 0.15,        0.1, 1100),
            Segment("New explorers",          0.20,  3.0,      70,   0.25,     0.35, 3.0,         0.7, 700),
            Segment("Lapsed",                 0.25,  4.0,      85,   0.30,     0.25, 0.4,         0.3, 0))
LOYAL, NEW_EXPLORERS, LAPSED = 0, 3, 4   # segment codes with behaviour of their own
CATEGORIES = ("apparel", "home", "beauty", "electronics", "outdoor")
CATEGORY_MIX = np.array([[.35, .25, .25, .10, .05], [.40, .15, .35, .05, .05], [.05, .30, .05, .40, .20],
                         [.30, .20, .30, .10, .10], [.30, .25, .20, .15, .10]])
CITIES = (("London", "GB"), ("Manchester", "GB"), ("Berlin", "DE"), ("Munich", "DE"), ("Paris", "FR"),
          ("Lyon", "FR"), ("Madrid", "ES"), ("Milan", "IT"), ("Amsterdam", "NL"), ("Dublin", "IE"))
ACQUISITION = ("search", "social", "display", "affiliate", "referral", "direct")


class Media(NamedTuple):
    daily_spend: float           # at 50k customers
    kappa: float                 # half-saturation κ as a multiple of mean (adstocked) spend
    max_conversions: float       # per day, at 50k customers
    adstock: float               # carry-over α
    cpm: float
    ctr: float
    revenue_per_conversion: float


MEDIA = {"search": Media(3000, 2.5, 260, 0.2, 25.0, 0.045, 95.0),
         "social": Media(2500, 1.2, 120, 0.4, 8.0, 0.012, 80.0),
         "display": Media(2000, 0.15, 25, 0.3, 3.0, 0.004, 70.0),
         "video": Media(1200, 1.0, 40, 0.5, 12.0, 0.006, 85.0),
         "affiliate": Media(800, 1.5, 55, 0.1, 6.0, 0.02, 90.0),
         "email": Media(200, 0.8, 60, 0.2, 1.0, 0.03, 75.0)}


def per_segment(field: str) -> np.ndarray:
    """One of the Segment fields as a float array in SEGMENTS order: index it with segment codes."""
    return np.array([getattr(segment, field) for segment in SEGMENTS], dtype=float)


def day_of(day: date) -> int:
    """A date as its offset from START."""
    return (day - START).days


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
