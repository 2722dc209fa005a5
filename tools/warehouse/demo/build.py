"""Build the demo warehouse: a coherent e-commerce world with planted, documented truths.

Everything is drawn with numpy from one seeded generator, vectorised over customers/rows, and written
through Arrow into DuckDB; text columns are assembled in SQL. Same seed → same warehouse, so the parts
below run in a fixed order: each draws from the generator where the one before it stopped.
The planted truths are listed in docs/demo-data.md and are the constants of world.py.
"""

from __future__ import annotations

import duckdb
import numpy as np

from tools.warehouse import transaction
from tools.warehouse.demo.campaigns import past_campaigns
from tools.warehouse.demo.customers import draw_customers, email, events, leads, orders
from tools.warehouse.demo.marketing import experiments, journeys, media
from tools.warehouse.demo.text import reviews

TABLES = ("customers", "consent", "orders", "events", "touchpoints", "conversions", "campaigns", "ad_spend",
          "leads", "reviews", "experiments", "experiment_assignments", "email_sends", "demo_truth")
DERIVED = ("customer_segments", "churn_scores", "lead_scores", "clv_scores", "review_scores",
           "audiences", "audience_members", "budget_plans", "outbox")  # emptied: they describe the old world


def generate(con: duckdb.DuckDBPyConnection, customers: int = 50_000, seed: int = 7) -> dict[str, int]:
    """Replace every canonical table's rows with a freshly generated world; returns row counts."""
    if customers < 1000:
        raise ValueError("--customers must be at least 1000 for a meaningful demo world")
    if getattr(con, "engine", "duckdb") != "duckdb":  # Spark: built here in DuckDB, then copied (backends/)
        return con.generate_demo(customers, seed)
    rng = np.random.default_rng(seed)
    with transaction(con):
        for table in TABLES + DERIVED:
            con.execute(f'DELETE FROM "{table}"')
        population = draw_customers(con, rng, customers)
        orders(con, rng, population)
        sends = email(con, rng, population)
        events(con, rng, population, sends)
        journeys(con, rng, population)
        media(con, rng, customers / 50_000)
        leads(con, rng, max(2000, customers // 10))
        reviews(con, rng, population)
        experiments(con, rng, population)
        past_campaigns(con, seed)  # last: it reads the orders and consent above
    return {table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in TABLES}
