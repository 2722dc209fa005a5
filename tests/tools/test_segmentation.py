import json
from collections import Counter
from datetime import date

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from tests.conftest import cli_json, run_cli
from tools.analytics.customers.clustering import nearest_centre, sample_silhouettes, silhouette_samples
from tools.analytics.customers.runs import resolve_as_of
from tools.analytics.customers.segmentation import (
    CLUSTER_ON,
    SegmentParams,
    _behaviour,
    _cluster,
    segment_customers,
)
from tools.registry import ToolError
from tools.warehouse import connect

AS_OF = date(2026, 3, 31)

# The RFM definition of docs (tools/analytics/customers/segmentation.py), written independently: a score is
# 1 + floor(5 × the share of customers with a strictly worse value), FM = ceil((F + M) / 2), names from the
# (R, FM) grid.
INDEPENDENT_RFM = """
WITH base AS (SELECT customer_id, max(order_date) AS last_order, count(*) AS freq, sum(revenue) AS mon
              FROM orders WHERE order_date <= DATE '{as_of}' GROUP BY customer_id),
n AS (SELECT count(*) AS n FROM base),
rc AS (SELECT last_order, sum(count(*)) OVER (ORDER BY last_order) - count(*) AS worse FROM base GROUP BY 1),
fc AS (SELECT freq, sum(count(*)) OVER (ORDER BY freq) - count(*) AS worse FROM base GROUP BY 1),
mc AS (SELECT mon, sum(count(*)) OVER (ORDER BY mon) - count(*) AS worse FROM base GROUP BY 1),
s AS (SELECT b.customer_id, 1 + floor(5 * rc.worse / n.n) AS r,
        floor((3 + floor(5 * fc.worse / n.n) + floor(5 * mc.worse / n.n)) / 2) AS fm
      FROM base b JOIN rc USING (last_order) JOIN fc USING (freq) JOIN mc USING (mon) CROSS JOIN n)
SELECT customer_id, CASE
  WHEN r = 5 AND fm >= 4 OR r = 4 AND fm = 5 THEN 'Champions'
  WHEN r IN (3, 4) AND fm >= 4 THEN 'Loyal'
  WHEN r >= 4 AND fm IN (2, 3) THEN 'Potential Loyalists'
  WHEN r = 5 THEN 'New'
  WHEN r = 4 THEN 'Promising'
  WHEN r = 3 AND fm = 3 THEN 'Need Attention'
  WHEN r = 3 THEN 'About to Sleep'
  WHEN fm = 5 THEN 'Can''t Lose Them'
  WHEN fm >= 3 THEN 'At Risk'
  WHEN r = 2 THEN 'Hibernating'
  ELSE 'Lost' END AS segment
FROM s"""


def test_rfm_counts_equal_an_independent_sql_computation(demo_copy):
    out = cli_json("tool", "segment_customers", "--args", json.dumps({"method": "rfm", "as_of": str(AS_OF)}),
                   home=demo_copy)
    con = connect(demo_copy / "warehouse.duckdb", read_only=True)
    expected = dict(con.execute(f"SELECT segment, count(*) FROM ({INDEPENDENT_RFM.format(as_of=AS_OF)}) "
                                "GROUP BY 1").fetchall())
    assert len(expected) == 11
    assert {r["segment_name"]: r["customers"] for r in out["data"]} == expected
    mismatched = con.execute(f"""SELECT count(*) FROM ({INDEPENDENT_RFM.format(as_of=AS_OF)}) e
        FULL JOIN (SELECT * FROM customer_segments WHERE run_id = ?) c USING (customer_id)
        WHERE e.segment IS DISTINCT FROM c.segment_name""", [out["metrics"]["run_id"]]).fetchone()[0]
    assert mismatched == 0
    revenue = con.execute("SELECT sum(revenue) FROM orders WHERE order_date <= ?", [AS_OF]).fetchone()[0]
    assert sum(r["revenue"] for r in out["data"]) == pytest.approx(revenue)
    assert out["chart"]["mark"]["type"] == "bar" and "Champions" in out["summary"]
    con.close()


def test_behavioural_segments_recover_the_planted_ones(demo_rw):
    res = segment_customers(demo_rw, SegmentParams(method="behavioral"))
    m = res.metrics
    assert m["k"] == 5 and m["k_chosen_by"].startswith("silhouette") and set(m["silhouette"]) == set(map(str, range(3, 9)))
    pairs = demo_rw.execute("""SELECT t.planted_segment, s.segment_id, s.segment_name FROM demo_truth t
        JOIN customer_segments s ON s.customer_id = t.customer_id AND s.run_id = ?""", [m["run_id"]]).fetchall()
    assert len(pairs) == m["customers"] == 50_000
    ari = adjusted_rand_score([pair[0] for pair in pairs], [pair[1] for pair in pairs])
    assert ari >= 0.8, ari
    names = [r["segment_name"] for r in res.data]
    assert len(set(names)) == 5 and not any("cluster" in n.lower() for n in names)
    # each planted segment lands mostly in a segment whose name says what sets it apart
    words = {"New explorers": "New", "Bargain hunters": "argain", "Lapsed": "Lapsed",
             "Occasional big-ticket": "big-ticket", "Loyal high spenders": "high spenders"}
    for planted, word in words.items():
        name = Counter(pair[2] for pair in pairs if pair[0] == planted).most_common(1)[0][0]
        assert word in name, (planted, name)
    top = res.data[0]
    assert {"customers", "share", "revenue_share", "mean_avg_order_value", "distinguishing"} <= set(top)
    assert sum(r["share"] for r in res.data) == pytest.approx(1.0)


def test_only_data_up_to_as_of_is_used_and_runs_repeat(demo_rw):
    params = SegmentParams(method="behavioral", as_of=AS_OF, seed=3)
    first = segment_customers(demo_rw, params)
    assert segment_customers(demo_rw, params).model_dump() == first.model_dump()
    demo_rw.execute("DELETE FROM orders WHERE order_date > ?", [AS_OF])
    demo_rw.execute("DELETE FROM events WHERE event_time >= ?", [date(2026, 4, 1)])
    demo_rw.execute("DELETE FROM email_sends WHERE sent_at >= ?", [date(2026, 4, 1)])
    assert segment_customers(demo_rw, params).model_dump() == first.model_dump()
    k4 = segment_customers(demo_rw, SegmentParams(method="behavioral", as_of=AS_OF, k=4, algorithm="kmeans"))
    assert k4.metrics["k"] == 4 and len(k4.data) == 4 and "k = 4 given" in k4.summary


def test_bad_arguments_give_clear_errors(demo_con, demo_copy, tmp_path):
    with pytest.raises(ToolError, match="after the last day"):
        segment_customers(demo_con, SegmentParams(as_of="2026-10-01"))
    con = connect(tmp_path / "w.duckdb")
    con.execute("INSERT INTO customers (customer_id, signup_date) SELECT range, DATE '2025-01-01' FROM range(20)")
    con.execute("INSERT INTO orders (order_id, customer_id, order_date, revenue) "
                "SELECT range, range % 20, DATE '2025-01-01' + range::INT, 10 FROM range(60)")
    for method in ("rfm", "behavioral"):
        with pytest.raises(ToolError, match="Too few customers with orders"):
            segment_customers(con, SegmentParams(method=method))
    con.close()
    proc = run_cli("tool", "segment_customers", "--args", '{"method": "kmeans"}', home=demo_copy)
    assert proc.returncode == 2 and "method" in proc.stderr and "Traceback" not in proc.stderr


def test_silhouette_equals_scikit_learns():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1500, 6))
    X[:300] += 2.5
    cases = {"random": rng.integers(0, 4, 1500), "split": (X[:, 0] > 1).astype(int) * 7,  # labels need not be 0..k
             "singletons": np.r_[np.zeros(1497, int), 1, 2, 2]}
    got = sample_silhouettes(X, [np.arange(1500)], {name: lambda rows, lab=lab: lab[rows] for name, lab in cases.items()})
    for name, labels in cases.items():
        assert got[name] == pytest.approx(silhouette_score(X, labels), abs=1e-12), name
    assert sample_silhouettes(X, [np.arange(1500)], {"one": lambda rows: np.zeros(len(rows))})["one"] == -1.0
    # several samples: the plain mean of each sample's silhouette; the samples are disjoint and sorted
    samples = silhouette_samples(1500, np.random.default_rng(0))
    assert len(samples) == 1 and samples[0].tolist() == list(range(1500))
    samples = silhouette_samples(40_000, np.random.default_rng(0))
    assert len(samples) == 8 and len(np.unique(np.concatenate(samples))) == 32_000
    assert all((np.diff(rows) > 0).all() for rows in samples)
    labels = rng.integers(0, 3, 40_000)
    Y = rng.normal(size=(40_000, 3))
    mean = sample_silhouettes(Y, samples[:2], {0: lambda rows: labels[rows]})[0]
    assert mean == pytest.approx(np.mean([silhouette_score(Y[r], labels[r]) for r in samples[:2]]), abs=1e-12)


def test_nearest_centre_is_the_brute_force_argmin_across_chunks():
    rng = np.random.default_rng(2)
    X, centres = rng.normal(size=(10_001, 5)), rng.normal(size=(7, 5))
    brute = ((X[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (nearest_centre(X, centres, chunk=1000) == brute).all()
    assert (nearest_centre(X, centres) == brute).all()
    assert (nearest_centre(np.zeros((3, 2)), np.zeros((2, 2))) == 0).all()  # ties: the lower index


def test_default_segments_are_as_compact_as_kmeans_and_closer_to_the_planted_ones(demo_con):
    """The default keeps the mixture's centres (nearer the planted segments than k-means') but joins each customer
    to the nearest centre, so its silhouette is k-means' (bench/compare_segments.py measures the same at 1M)."""
    behaviour = _behaviour(demo_con, resolve_as_of(demo_con, None))
    use = [j for j, c in enumerate(behaviour.names) if c in CLUSTER_ON and behaviour.spread[j] > 1e-9]
    X = behaviour.Z[:, use]
    truth = dict(demo_con.execute("SELECT customer_id, planted_segment FROM demo_truth").fetchall())
    planted = [truth[int(i)] for i in behaviour.ids]
    pick = np.sort(np.random.default_rng(123).choice(len(X), 10_000, replace=False))
    quality = {}
    for algorithm in ("gmm", "gmm_posterior", "kmeans"):
        labels, scores = _cluster(X, SegmentParams(method="behavioral", algorithm=algorithm))
        assert labels.max() + 1 == 5 and max(scores, key=scores.get) == 5
        quality[algorithm] = (silhouette_score(X[pick], labels[pick]), adjusted_rand_score(planted, labels))
    (sil, ari), (sil_post, ari_post), (sil_km, ari_km) = quality["gmm"], quality["gmm_posterior"], quality["kmeans"]
    assert sil >= sil_km - 0.01 and sil_post < sil - 0.005, quality
    assert ari_post > ari > ari_km + 0.01 and ari >= 0.8, quality
