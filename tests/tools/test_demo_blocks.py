"""The demo world drawn block by block (tools/warehouse/demo/build.py): a world larger than BLOCK customers is drawn
a block at a time into staging tables and swapped in, so memory follows the block, not the population.

BLOCK is set to 2,000 here, so a 5,000-customer world takes three blocks (1,667 + 1,666 + 1,667) on real DuckDB
files. Worlds up to BLOCK must stay exactly what the single generator has always made (docs, evals and tests
know them), checked against a fingerprint measured from the code before block generation existed.
"""

import hashlib

import pytest

from tools.warehouse import connect, demo
from tools.warehouse.demo import build
from tools.warehouse.demo.text import HOSTILE_REVIEWS
from tools.warehouse.schema import CANONICAL, TABLES

PLANTED = ("demo_truth", "campaign_launches", "campaign_members", "demo_campaign_truth")
ROW_IDS = {"customers": "customer_id", "orders": "order_id", "events": "event_id", "touchpoints": "touchpoint_id",
           "conversions": "conversion_id", "reviews": "review_id", "email_sends": "send_id", "leads": "lead_id",
           "demo_truth": "customer_id"}
CUSTOMER_TABLES = ("consent", "orders", "events", "touchpoints", "conversions", "reviews", "email_sends",
                   "demo_truth", "experiment_assignments", "campaign_members")

# Regression baseline, measured with the single-generator code BEFORE block generation was added (same numbers
# `fingerprint` gives): per table, the row count, then per column in table order the sum of numbers (doubles in
# hundredths), of dates / timestamps as epoch seconds, of VARCHAR lengths, and the count of true booleans.
BEFORE_1500_SEED_5 = {
    "customers": [1500, 1125750, 39367, 6254, 8720, 22500, 9420, 3000, 2631622435200, 10504, 388, 1263],
    "consent": [4500, 3377250, 18000, 2276, 7895428387200, 48226],
    "orders": [5931, 17591346, 4382173, 10449351216000, 70044589, 15215, 39062, 2441993, 18927],
    "events": [11574, 66984525, 8516916, 20467447104192, 120670, 39000],
    "touchpoints": [7757, 30089403, 11565158, 5891958, 13690717439204, 48247, 39871],
    "conversions": [684, 234270, 1009921, 498830, 1206762973759, 5591715],
    "campaigns": [37, 218, 757, 201, 353, 64744099200, 45738950400, 549100],
    "ad_spend": [8030, 14126645808000, 45260, 51830, 26819913, 42241200, 581688, 691768, 58704929],
    "leads": [2000, 2001000, 3518564054400, 17428, 10693, 17741, 15351, 11807, 5947, 475, 7239, 3327823180800,
              716470100, 38893],
    "reviews": [327, 53628, 264199, 580007433600, 1249, 22805, 1851],
    "experiments": [2, 23, 38, 122, 18, 3561148800, 3565209600, 14],
    "experiment_assignments": [1877, 21182, 1401948, 14405, 3344707555200, 83, 487074],
    "email_sends": [2808, 3943836, 2152440, 16848, 4964336416236, 103917, 545, 97, 23],
    "demo_truth": [1500, 1125750, 21009, 209200, 296],
    "campaign_launches": [2, 20, 34, 20, 10, 23, 0, 66, 3545661600, 30, 60, 370, 0, 3545143200, 8],
    "campaign_members": [850, 8500, 654142, 5950],
    "demo_campaign_truth": [2, 20, 3, 221],
}
BEFORE_2000_SEED_3 = {  # exactly BLOCK customers: still the single generator
    "customers": [2000, 2001000, 52942, 8392, 11657, 30000, 12512, 4000, 3510957398400, 13964, 603, 1693],
    "consent": [6000, 6003000, 24000, 3028, 10533812572800, 64152],
    "orders": [8180, 33460290, 8296551, 14415181804800, 94968078, 20466, 53537, 3568623, 26236],
    "events": [15792, 124701528, 15998757, 27943225501596, 164513, 53078],
    "touchpoints": [10345, 53514685, 20696457, 10309833, 18264617334969, 64353, 53159],
    "conversions": [891, 397386, 1778673, 886768, 1573581916871, 7333171],
    "campaigns": [37, 218, 757, 201, 353, 64744099200, 45738950400, 558800],
    "ad_spend": [8030, 14126645808000, 45260, 51830, 36795977, 57700225, 787681, 931508, 79092869],
    "leads": [2000, 2001000, 3517604496000, 17233, 10906, 17801, 15463, 11871, 6003, 462, 7227, 3346611724800,
              760442300, 38893],
    "reviews": [430, 92665, 429345, 762541776000, 1617, 28999, 2407],
    "experiments": [2, 23, 38, 122, 18, 3561148800, 3565209600, 14],
    "experiment_assignments": [2515, 28399, 2541104, 19020, 4481498361600, 164, 1081522],
    "email_sends": [3559, 6335020, 3617867, 21354, 6292599703053, 132343, 777, 160, 30],
    "demo_truth": [2000, 2001000, 27762, 273000, 365],
    "campaign_launches": [2, 20, 34, 20, 10, 23, 0, 66, 3545661600, 30, 60, 485, 0, 3545143200, 8],
    "campaign_members": [1116, 11160, 1119926, 7812],
    "demo_campaign_truth": [2, 20, 3, 221],
}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(build, "BLOCK", 2000)


def fingerprint(con) -> dict[str, list[int]]:
    """Per table: the row count and a sum per column (see the baseline's comment)."""
    out = {}
    for table in (t.name for t in TABLES if t.name in CANONICAL + PLANTED):
        parts = ["count(*)"]
        for column, kind in con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                        "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall():
            q = f'"{column}"'
            if kind in ("DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
                parts.append(f"coalesce(sum(round({q} * 100)::HUGEINT), 0)")
            elif kind in ("BIGINT", "INTEGER", "SMALLINT", "HUGEINT"):
                parts.append(f"coalesce(sum({q}::HUGEINT), 0)")
            elif kind == "DATE" or kind.startswith("TIMESTAMP"):
                parts.append(f"coalesce(sum(epoch({q})::HUGEINT), 0)")
            elif kind == "BOOLEAN":
                parts.append(f"count(*) FILTER (WHERE {q})")
            elif kind == "VARCHAR":
                parts.append(f"coalesce(sum(length({q}))::HUGEINT, 0)")
        out[table] = [int(x) for x in con.execute(f'SELECT {", ".join(parts)} FROM "{table}"').fetchone()]
    return out


def digest(con) -> str:
    """Every row of every canonical and planted table, hashed."""
    h = hashlib.sha256()
    for table in sorted(CANONICAL + PLANTED):
        width = len(con.execute(f'DESCRIBE "{table}"').fetchall())
        h.update(repr(con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()).encode())
        h.update(str(width).encode())
    return h.hexdigest()


def world(tmp_path, name: str, customers: int, seed: int):
    con = connect(tmp_path / f"{name}.duckdb")
    demo.generate(con, customers=customers, seed=seed)
    return con


@pytest.mark.parametrize(("customers", "seed", "baseline"), [(1500, 5, BEFORE_1500_SEED_5),
                                                              (2000, 3, BEFORE_2000_SEED_3)])
def test_worlds_up_to_a_block_are_unchanged(tmp_path, customers, seed, baseline):
    con = world(tmp_path, "small", customers, seed)
    assert fingerprint(con) == baseline
    con.close()


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "BLOCK", 2000)
        con = world(tmp_path_factory.mktemp("blocks"), "blocked", 5000, 11)
    yield con
    con.close()


def test_row_ids_are_unique_and_contiguous_across_blocks(blocked):
    for table, key in ROW_IDS.items():
        n, distinct, low, high = blocked.execute(
            f'SELECT count(*), count(DISTINCT "{key}"), min("{key}"), max("{key}") FROM "{table}"').fetchone()
        assert (distinct, low, high) == (n, 1, n), table
    assert blocked.execute("SELECT count(*) FROM customers").fetchone()[0] == 5000
    # three blocks of 1,667, 1,666 and 1,667 customers: the last one (3,334..5,000) has rows in every table
    for table in ("orders", "events", "touchpoints", "email_sends", "reviews", "consent", "demo_truth"):
        assert blocked.execute(f'SELECT count(*) FROM "{table}" WHERE customer_id > 3334').fetchone()[0] > 0, table


def test_foreign_keys_hold(blocked):
    for table in CUSTOMER_TABLES:
        orphans = blocked.execute(f'SELECT count(*) FROM "{table}" x WHERE NOT EXISTS '
                                  "(SELECT 1 FROM customers c WHERE c.customer_id = x.customer_id)").fetchone()[0]
        assert orphans == 0, table
    checks = {
        "conversion without its journey's touches": """SELECT count(*) FROM conversions v WHERE NOT EXISTS
            (SELECT 1 FROM touchpoints t WHERE t.journey_id = v.journey_id AND t.customer_id = v.customer_id)""",
        "journey of two customers": """SELECT count(*) FROM (SELECT journey_id FROM touchpoints GROUP BY 1
            HAVING count(DISTINCT customer_id) > 1)""",
        "touch or send of an unknown campaign": """SELECT count(*) FROM (SELECT campaign_id FROM touchpoints
            UNION ALL SELECT campaign_id FROM email_sends) x
            WHERE campaign_id NOT IN (SELECT campaign_id FROM campaigns)""",
        "send to a customer without opt-in": """SELECT count(*) FROM email_sends JOIN customers USING (customer_id)
            WHERE marketing_opt_in IS DISTINCT FROM true""",
        "assignment to an unknown experiment": """SELECT count(*) FROM experiment_assignments
            WHERE experiment_id NOT IN (SELECT experiment_id FROM experiments)""",
    }
    for what, sql in checks.items():
        assert blocked.execute(sql).fetchone()[0] == 0, what


def test_row_counts_scale_like_the_single_generator(blocked, tmp_path):
    single = world(tmp_path, "single", 2000, 11)
    n_blocked, n_single = 5000, 2000
    for table in ("orders", "events", "touchpoints", "conversions", "email_sends", "reviews"):
        per_blocked = blocked.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] / n_blocked
        per_single = single.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] / n_single
        assert per_blocked == pytest.approx(per_single, rel=0.2), table
    assert blocked.execute("SELECT count(*) FROM consent").fetchone()[0] == 3 * n_blocked
    assert blocked.execute("SELECT count(*) FROM demo_truth").fetchone()[0] == n_blocked
    assert blocked.execute("SELECT max(journey_id) FROM touchpoints").fetchone()[0] <= 2 * n_blocked
    assert blocked.execute("SELECT count(*) FROM leads").fetchone()[0] == 2000
    # population-wide parts once: 26 newsletters + 11 media campaigns, 730 days × 11 campaigns of spend
    assert blocked.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 37
    assert blocked.execute("SELECT count(*) FROM ad_spend").fetchone()[0] == 730 * 11
    assert blocked.execute("SELECT count(DISTINCT campaign_id) FROM email_sends").fetchone()[0] == 26
    planted = dict(blocked.execute("SELECT review_id, text FROM reviews WHERE review_id IN (101, 126, 151, 176)"
                                   ).fetchall())
    assert planted == HOSTILE_REVIEWS  # once, in the first block
    assert blocked.execute("SELECT count(*) FROM campaign_members").fetchone()[0] > 0
    single.close()


def test_same_seed_same_blocked_world_other_seed_differs(blocked, tmp_path):
    again = world(tmp_path, "again", 5000, 11)
    other = world(tmp_path, "other", 5000, 12)
    assert digest(again) == digest(blocked)
    assert digest(other) != digest(blocked)
    again.close()
    other.close()


def test_no_staging_tables_are_left(blocked):
    names = [r[0] for r in blocked.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    assert not [name for name in names if name.startswith(build.STAGING)]


def test_a_build_cut_short_leaves_the_old_world(tmp_path, monkeypatch):
    con = world(tmp_path, "cut", 1500, 5)
    before = fingerprint(con)
    calls = []

    def failing_journeys(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full (simulated) in the second block")
        return journeys(*args)

    journeys = build.journeys
    monkeypatch.setattr(build, "journeys", failing_journeys)
    with pytest.raises(RuntimeError, match="second block"):
        demo.generate(con, customers=5000, seed=11)
    assert fingerprint(con) == before
    names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    assert not [name for name in names if name.startswith(build.STAGING)]
    monkeypatch.setattr(build, "journeys", journeys)
    demo.generate(con, customers=5000, seed=11)  # and the next build goes through
    assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 5000
    con.close()


def test_a_plain_in_memory_duckdb_takes_a_blocked_world():
    """The Spark backend builds the demo in a plain DuckDB connection (backends/spark_load.py) and copies it."""
    import duckdb

    from tools.warehouse.connection import migrate

    con = duckdb.connect(":memory:")
    migrate(con)
    counts = demo.generate(con, customers=5000, seed=11)
    assert counts["customers"] == 5000 and counts["consent"] == 15000
    assert con.execute("SELECT count(DISTINCT order_id) = count(*) FROM orders").fetchone()[0]
    con.close()
