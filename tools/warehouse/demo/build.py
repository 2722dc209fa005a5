"""Build the demo warehouse: a coherent e-commerce world with planted, documented truths.

Everything is drawn with numpy from seeded generators, vectorised over customers/rows, and written
through Arrow into DuckDB; text columns are assembled in SQL. Same seed → same warehouse, so the parts
below run in a fixed order: each draws from the generator where the one before it stopped.
The planted truths are listed in docs/demo-data.md and are the constants of world.py.

A world of up to BLOCK customers comes from one generator, in one transaction (the worlds the docs, evals and tests
know). A larger one is drawn BLOCK customers at a time, each block from its own generator (seed, block) with its
ids following the block before: its per-customer tables are filled under STAGING names, a block per transaction,
and swapped in with the population-wide parts (media, leads, experiments, past campaigns) in one last transaction.
Memory is then bounded by a block, not by the population (one transaction holding every row of a large world kept
them all in memory), and a failure part-way still leaves the old world in place. The per-customer processes, and
so the planted truths, are the same.
"""

from __future__ import annotations

import duckdb
import numpy as np

from tools.warehouse import transaction
from tools.warehouse.demo.campaigns import past_campaigns
from tools.warehouse.demo.columns import Tables
from tools.warehouse.demo.customers import draw_customers, email, events, leads, orders, write_newsletters
from tools.warehouse.demo.marketing import experiment_pools, experiments, journeys, media
from tools.warehouse.demo.text import reviews
from tools.warehouse.schema import TABLES as SCHEMA
from tools.warehouse.schema import ddl

TABLES = ("customers", "consent", "orders", "events", "touchpoints", "conversions", "campaigns", "ad_spend",
          "leads", "reviews", "experiments", "experiment_assignments", "email_sends", "demo_truth")
DERIVED = ("customer_segments", "churn_scores", "lead_scores", "clv_scores", "review_scores",
           "audiences", "audience_members", "budget_plans", "outbox")  # emptied: they describe the old world
BLOCK = 1_000_000
"""Customers drawn at once: a larger world is drawn in blocks of this size (peak memory follows it)."""
BLOCK_STREAM = 19
"""Salt of a large world's block generators (the seed and the block number are the rest)."""


PER_CUSTOMER = ("customers", "demo_truth", "orders", "email_sends", "consent", "events", "touchpoints",
                "conversions", "reviews")
STAGING = "_demo_next_"
"""Prefix of a large world's per-customer tables while its blocks are written (dropped if a build was cut short)."""


def generate(con: duckdb.DuckDBPyConnection, customers: int = 50_000, seed: int = 7) -> dict[str, int]:
    """Replace every canonical table's rows with a freshly generated world; returns row counts."""
    if customers < 1000:
        raise ValueError("--customers must be at least 1000 for a meaningful demo world")
    if getattr(con, "engine", "duckdb") != "duckdb":  # Spark: built here in DuckDB, then copied (backends/)
        return con.generate_demo(customers, seed)
    if customers <= BLOCK:
        with transaction(con):
            _clear(con, TABLES + DERIVED)
            _whole(con, np.random.default_rng(seed), customers)
            past_campaigns(con, seed)  # last: it reads the orders and consent above
    else:
        _by_block(con, seed, customers)
    return {table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in TABLES}


def _clear(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> None:
    for table in tables:
        con.execute(f'DELETE FROM "{table}"')


def _whole(con: duckdb.DuckDBPyConnection, rng: np.random.Generator, customers: int) -> None:
    """The world from one generator, in the order its draws have always been made (same seed → same world)."""
    out = Tables()
    population = draw_customers(con, rng, customers, out)
    orders(con, rng, population, out)
    sends = email(con, rng, population, out)
    events(con, rng, population, sends, out)
    journeys(con, rng, population, out)
    media(con, rng, customers / 50_000)
    leads(con, rng, max(2000, customers // 10))
    reviews(con, rng, population, out)
    experiments(con, rng, *experiment_pools(population), customers)


def _by_block(con: duckdb.DuckDBPyConnection, seed: int, customers: int) -> None:
    """The world BLOCK customers at a time into the STAGING tables, then swapped in with the population-wide parts.
    Cut short (an error, Ctrl-C), the old world stays as it was and the staging tables go."""
    out = Tables(STAGING)
    schema = {table.name: table for table in SCHEMA}
    try:
        for table in PER_CUSTOMER:
            con.execute(f'DROP TABLE IF EXISTS "{out.name(table)}"')
            con.execute(ddl(schema[table], out.name(table)))
        pools = _blocks(con, seed, customers, out)
        rng = np.random.default_rng([seed, BLOCK_STREAM, len(pools)])
        with transaction(con):
            _clear(con, tuple(t for t in TABLES + DERIVED if t not in PER_CUSTOMER))
            for table in PER_CUSTOMER:
                con.execute(f'DROP TABLE "{table}"')
                con.execute(f'ALTER TABLE "{out.name(table)}" RENAME TO "{table}"')
            write_newsletters(con)
            media(con, rng, customers / 50_000)
            leads(con, rng, max(2000, customers // 10))
            experiments(con, rng, *(np.concatenate(pool) for pool in zip(*pools, strict=True)), customers)
            past_campaigns(con, seed)  # last: it reads the orders and consent above
    finally:
        for table in PER_CUSTOMER:  # swapped in by now, unless the build was cut short
            con.execute(f'DROP TABLE IF EXISTS "{out.name(table)}"')


def _blocks(con: duckdb.DuckDBPyConnection, seed: int, customers: int,
            out: Tables) -> list[tuple[np.ndarray, np.ndarray]]:
    """Write the per-customer tables block by block (a transaction each); returns each block's experiment pools.
    The blocks are of equal size (± 1), never a sliver: 1,000,001 customers are two blocks of about 500,000."""
    pools = []
    bounds = np.linspace(0, customers, -(-customers // BLOCK) + 1).round().astype(np.int64)
    for block, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        rng = np.random.default_rng([seed, BLOCK_STREAM, block])
        with transaction(con):
            population = draw_customers(con, rng, int(end - start), out, int(start) + 1)
            orders(con, rng, population, out)
            sends = email(con, rng, population, out, newsletters=False)
            events(con, rng, population, sends, out)
            journeys(con, rng, population, out)
            reviews(con, rng, population, out)
        pools.append(experiment_pools(population))
        del population, sends  # before the next block is drawn
    return pools
