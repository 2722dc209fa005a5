import hashlib
from datetime import timedelta

import numpy as np

from tools.warehouse import connect, demo
from tools.warehouse.schema import CANONICAL


def test_every_canonical_table_is_filled(demo_con):
    for table in CANONICAL:
        assert demo_con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] > 0, table


def _digest(con) -> str:
    h = hashlib.sha256()
    for table in CANONICAL:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        rows = con.execute(f'SELECT * FROM "{table}" ORDER BY {", ".join(map(str, range(1, len(cols) + 1)))}').fetchall()
        h.update(repr(rows).encode())
    return h.hexdigest()


def test_same_seed_same_warehouse_other_seed_differs(tmp_path):
    digests = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        con = connect(tmp_path / f"{name}.duckdb")
        demo.generate(con, customers=2000, seed=seed)
        digests.append(_digest(con))
        con.close()
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_planted_anomaly_day(demo_con):
    rows = demo_con.execute(
        "SELECT date, sum(conversions) FROM ad_spend WHERE channel = ? AND date BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
        [demo.ANOMALY_CHANNEL, demo.ANOMALY_DAY - timedelta(days=14), demo.ANOMALY_DAY + timedelta(days=14)]).fetchall()
    values = {d: v for d, v in rows}
    others = np.array([v for d, v in rows if d != demo.ANOMALY_DAY])
    assert values[demo.ANOMALY_DAY] < 0.4 * np.median(others)


def test_planted_sentiment_spike_week(demo_con):
    weekly = demo_con.execute("""SELECT date_trunc('week', review_date)::DATE w, count(*) n,
        avg((rating <= 2)::INT) neg FROM reviews GROUP BY 1 ORDER BY 1""").fetchall()
    by_week = {w: (n, neg) for w, n, neg in weekly}
    n, neg = by_week[demo.SPIKE_WEEK]
    assert neg > 0.45 and n > 1.8 * np.median([x[0] for x in by_week.values()])
    assert neg == max(x[1] for w, x in by_week.items() if x[0] > 50)


def test_planted_experiment_lift_and_consent(demo_con):
    rates = dict(demo_con.execute("SELECT variant, avg(converted::INT) FROM experiment_assignments "
                                  "WHERE experiment_id = 'EXP-FREESHIP' GROUP BY 1").fetchall())
    assert rates["free_shipping"] > rates["control"]
    not_opted = demo_con.execute("""SELECT count(*) FROM email_sends s JOIN customers c USING (customer_id)
        WHERE c.marketing_opt_in IS DISTINCT FROM true""").fetchone()[0]
    assert not_opted == 0


def test_segments_have_distinct_behaviour(demo_con):
    rows = demo_con.execute("""SELECT planted_segment, avg(revenue) aov, avg((discount > 0)::INT) disc
        FROM orders JOIN demo_truth USING (customer_id) GROUP BY 1""").fetchall()
    aov = {r[0]: r[1] for r in rows}
    disc = {r[0]: r[2] for r in rows}
    assert aov["Occasional big-ticket"] > 2 * aov["Loyal high spenders"] > 4 * aov["Bargain hunters"]
    assert disc["Bargain hunters"] > 0.7


def test_too_few_customers_is_refused(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    try:
        demo.generate(con, customers=10)
    except ValueError as exc:
        assert "at least 1000" in str(exc)
    else:
        raise AssertionError("expected ValueError")
