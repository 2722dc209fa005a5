"""The customer models above their sampling thresholds (issue 17 / 19): fits on seeded samples drawn in the engine,
the sample's size stated, everyone scored in batches. The thresholds are lowered on the 50k demo world instead
of building a world of a million customers."""

import hashlib
from datetime import date, timedelta

import numpy as np
import pytest
import sqlglot

from tools.analytics.customers import churn, clv, clv_scoring, scoring
from tools.analytics.customers.churn import ChurnParams, churn_features, score_churn
from tools.analytics.customers.churn_data import active_counts
from tools.analytics.customers.clv import ClvParams, _history, predict_clv
from tools.analytics.customers.clv_models import conditional_expected_purchases, expected_order_value, p_alive
from tools.analytics.customers.leads import LeadParams, score_leads
from tools.analytics.customers.sampling import SPACE, fraction_for, sample_condition

ORDERS = "SELECT customer_id AS cid, order_date AS d, revenue AS v FROM orders"


def python_sample(ids, seed: int, fraction: float) -> set:
    """The sample's definition computed outside any engine: md5 of '<seed>:<id>', first 8 hex digits < cut."""
    cut = f"{int(np.ceil(fraction * SPACE)):08x}"
    return {i for i in ids if hashlib.md5(f"{seed}:{i}".encode()).hexdigest()[:8] < cut}


def test_the_sample_is_md5_of_seed_and_id_so_every_engine_draws_the_same(demo_con):
    ids = [int(i) for i in demo_con.execute("SELECT customer_id FROM customers").fetchnumpy()["customer_id"]]
    for seed, fraction in ((0, 0.1), (7, 0.25), (7, 0.1)):
        cond = sample_condition("customer_id", seed, fraction)
        drawn = set(demo_con.execute(f"SELECT customer_id FROM customers WHERE {cond}").fetchnumpy()["customer_id"]
                    .tolist())
        assert drawn == python_sample(ids, seed, fraction)
        assert abs(len(drawn) - fraction * len(ids)) < 4 * np.sqrt(fraction * len(ids))  # Bernoulli(fraction)
    assert python_sample(ids, 0, 0.1) != python_sample(ids, 1, 0.1)
    assert python_sample(ids, 7, 0.1) <= python_sample(ids, 7, 0.25)  # nested: a larger fraction keeps the smaller
    assert sample_condition("cid", 3, 1.0) == "TRUE" and fraction_for(10, 5) == 1.0
    for dialect, md5 in (("spark", "MD5("), ("snowflake", "MD5("), ("bigquery", "TO_HEX(MD5(")):
        written = sqlglot.transpile(f"SELECT cid FROM h WHERE {sample_condition('cid', 3, 0.2)}", read="duckdb",
                                    write=dialect)[0]
        assert md5 in written and "'33333334'" in written, written


@pytest.fixture
def clv_sampled(monkeypatch):
    """predict_clv samples above 5,000 customers (a target of 8,000) and scores in batches of 7,000."""
    monkeypatch.setattr(clv, "SAMPLE_ABOVE", 5_000)
    monkeypatch.setattr(clv, "FIT_SAMPLE", 8_000)
    monkeypatch.setattr(clv_scoring, "BATCH_ROWS", 7_000)


def test_clv_above_the_threshold_fits_a_stated_sample_and_scores_everyone(demo_rw, clv_sampled):
    params = ClvParams(horizon_days=180, margin=0.3, discount_rate=0.1, limit=5)
    res = predict_clv(demo_rw, params)
    m = res.metrics
    history = _history(demo_rw, ORDERS, m["as_of"])
    n = history["cid"].size
    sample = python_sample(history["cid"].tolist(), 0, 8_000 / n)
    assert m["customers"] == n and m["fit_sampled"] and m["fit_customers"] == len(sample)
    assert f"seeded sample of {len(sample):,} of the {n:,} customers (seed 0" in res.summary
    saved = demo_rw.execute("SELECT customer_id, expected_purchases, p_alive, expected_order_value, clv "
                            "FROM clv_scores WHERE run_id = ? ORDER BY customer_id::BIGINT", [m["run_id"]]).fetchnumpy()
    assert saved["customer_id"].size == n  # everyone, across 8 batches
    np.testing.assert_array_equal(saved["customer_id"].astype(np.int64), history["cid"])
    # each batch scored with the sample's parameters exactly as the in-memory formulas score everyone
    bgnbd = [m["bgnbd"][k] for k in ("r", "alpha", "a", "b")]
    gamma_gamma = [m["gamma_gamma"][k] for k in ("p", "q", "v")]
    x, t_x, T, zbar = (history[k].astype(float) for k in ("x", "t_x", "T", "zbar"))
    np.testing.assert_allclose(saved["p_alive"], p_alive(bgnbd, x, t_x, T), rtol=1e-12)
    np.testing.assert_allclose(saved["expected_purchases"], conditional_expected_purchases(bgnbd, 180 / 7, x, t_x, T),
                               rtol=1e-12)
    np.testing.assert_allclose(saved["expected_order_value"], expected_order_value(gamma_gamma, x, zbar), rtol=1e-12)
    assert m["clv_total"] == pytest.approx(saved["clv"].sum(), rel=1e-12)
    assert m["expected_purchases_total"] == pytest.approx(saved["expected_purchases"].sum(), rel=1e-12)
    top = np.argsort(-saved["clv"], kind="stable")[:5]
    assert [r["customer_id"] for r in res.data] == saved["customer_id"][top].tolist()
    assert sum(r["clv"] for r in res.chart["data"]["values"]) == pytest.approx(m["clv_total"], rel=1e-6)
    # the sample against the fit on everyone (the in-memory path, same world)
    clv.SAMPLE_ABOVE = 10 ** 9
    full = predict_clv(demo_rw, params).metrics
    assert not full["fit_sampled"] and full["fit_customers"] == n
    for model, tolerance in (("bgnbd", 0.15), ("gamma_gamma", 0.35)):
        for name, value in full[model].items():
            assert m[model][name] == pytest.approx(value, rel=tolerance), (model, name)
    assert m["clv_total"] == pytest.approx(full["clv_total"], rel=0.03)
    assert m["expected_purchases_total"] == pytest.approx(full["expected_purchases_total"], rel=0.03)
    assert m["log_likelihood"] <= full["log_likelihood"] + 1e-6  # everyone's likelihood peaks at the full fit
    assert m["frequency_value_correlation"] == pytest.approx(full["frequency_value_correlation"], abs=1e-9)
    assert m["top_decile_share"] == pytest.approx(full["top_decile_share"], abs=0.01)


def test_clv_sample_is_deterministic_per_seed_and_leaves_nothing_behind(demo_rw, clv_sampled):
    first = predict_clv(demo_rw, ClvParams(limit=3))
    again = predict_clv(demo_rw, ClvParams(limit=3))
    assert again.model_dump() == first.model_dump()  # same seed: same sample, same scores, same run id
    other = predict_clv(demo_rw, ClvParams(limit=3, seed=5)).metrics
    assert other["fit_customers"] != first.metrics["fit_customers"] and other["bgnbd"] != first.metrics["bgnbd"]
    runs = demo_rw.execute("SELECT run_id, count(*) FROM clv_scores GROUP BY 1").fetchall()
    assert {r: c for r, c in runs} == {first.metrics["run_id"]: first.metrics["customers"],
                                        other["run_id"]: other["customers"]}
    assert not demo_rw.execute("SELECT * FROM duckdb_tables() WHERE temporary").fetchall()


def test_clv_sampled_on_a_read_only_warehouse_says_it_saved_nothing(demo_con, clv_sampled):
    res = predict_clv(demo_con, ClvParams(limit=3))
    assert res.metrics["fit_sampled"] and any("read-only" in w for w in res.warnings)


@pytest.fixture
def churn_sampled(monkeypatch):
    """score_churn samples above 1,000 active customers (a target of 9,000) and scores in batches of 5,000."""
    monkeypatch.setattr(churn, "SAMPLE_ABOVE", 1_000)
    monkeypatch.setattr(churn, "FIT_SAMPLE", 9_000)
    monkeypatch.setattr(scoring, "BATCH_ROWS", 5_000)


def test_sampled_snapshot_has_the_same_features_as_the_full_one(demo_rw):
    cutoff = churn.resolve_as_of(demo_rw, None) - timedelta(days=90)
    full = churn_features(demo_rw, cutoff, 365)
    demo_rw.execute(f"CREATE TEMP TABLE s AS SELECT customer_id FROM customers "
                    f"WHERE {sample_condition('customer_id', 3, 0.2)}")
    part = churn_features(demo_rw, cutoff, 365, "s")
    keep = np.isin(full["customer_id"], part["customer_id"])
    assert 0.15 < keep.mean() < 0.25
    for key in full:  # the prior open rate stays the population's: features do not depend on who else is sampled
        np.testing.assert_array_equal(np.asarray(full[key])[keep], np.asarray(part[key]), err_msg=key)
    assert active_counts(demo_rw, [cutoff], 365) == [full["customer_id"].size]


def test_churn_above_the_threshold_streams_everyone_and_states_its_sample(demo_rw, churn_sampled):
    res = score_churn(demo_rw, ChurnParams(limit=10))
    m = res.metrics
    as_of, train_cutoff = date.fromisoformat(str(m["as_of"])), date.fromisoformat(str(m["train_cutoff"]))
    active, train_population = active_counts(demo_rw, [as_of, train_cutoff], 365)
    assert m["scored"] == active and m["train_population"] == train_population
    sample = m["sample"]
    assert sample["train_population"] == train_population and m["train_rows"] == sample["train_customers"]
    assert abs(sample["train_customers"] - 9_000) < 400 and m["fit_rows"] <= sample["train_customers"]
    assert (f"trained on a seeded sample of {m['fit_rows']:,} of the {train_population:,} customers active on "
            f"{m['train_cutoff']} (drawn from {sample['train_customers']:,} sampled in the engine)") in res.summary
    saved = demo_rw.execute("""SELECT count(*), count(*) FILTER (WHERE risk_band = 'high'), count(top_reasons)
        FROM churn_scores WHERE run_id = ?""", [m["run_id"]]).fetchone()
    assert saved[0] == active and saved[1] == m["high_risk"] and saved[2] > 0.9 * (m["high_risk"] + m["medium_risk"])
    assert res.data[0]["top_reasons"] and m["reliable"]
    again = score_churn(demo_rw, ChurnParams(limit=10))
    assert again.model_dump() == res.model_dump()
    assert not demo_rw.execute("SELECT * FROM duckdb_tables() WHERE temporary").fetchall()
    # against the in-memory path on the same world: the same customers, a model of the same quality
    churn.SAMPLE_ABOVE = 10 ** 9
    full = score_churn(demo_rw, ChurnParams(limit=10)).metrics
    assert full["scored"] == m["scored"] and "sample" not in full
    assert m["holdout_auc"] == pytest.approx(full["holdout_auc"], abs=0.02)
    assert m["mean_probability"] == pytest.approx(full["mean_probability"], abs=0.02)
    assert m["high_risk"] == pytest.approx(full["high_risk"], rel=0.05)


def test_streamed_scores_equal_in_memory_scores(demo_con):
    """score_stream on the engine's batches gives the probabilities, values and reason rows of the whole matrix."""
    as_of = churn.resolve_as_of(demo_con, None)
    snap = churn.snapshot(demo_con, as_of, 365)
    y = churn.churn_labels(demo_con, snap.ids, as_of - timedelta(days=90), 90)
    fitted = churn.fit_best(snap.X, y, snap.names, 0, kinds=("gradient_boosting",), folds=2)
    scoring.BATCH_ROWS, saved_rows = 3_000, scoring.BATCH_ROWS
    try:
        reader = demo_con.sql(churn.features_sql(as_of, 365)).to_arrow_reader(1_000)
        streamed = scoring.score_stream(reader, snap.names, fitted, "revenue_365d", 0.25, 2_000)
    finally:
        scoring.BATCH_ROWS = saved_rows
    prob = fitted.predict(snap.X)
    np.testing.assert_array_equal(streamed.ids, snap.ids)
    np.testing.assert_array_equal(streamed.prob, prob)
    np.testing.assert_array_equal(streamed.value, snap.X[:, snap.names.index("revenue_365d")])
    risky = np.argsort(-prob, kind="stable")[: min(int((prob >= 0.25).sum()), 2_000)]
    np.testing.assert_array_equal(streamed.top_X, snap.X[risky])


def test_lead_scores_state_their_training_sample(demo_con):
    m = score_leads(demo_con, LeadParams(limit=3)).metrics
    assert 0 < m["fit_rows"] <= min(50_000, m["closed_leads"])


def test_a_run_saved_in_batches_is_all_or_nothing(tmp_path):
    from tools.analytics.customers.runs import saving_run
    from tools.warehouse import connect

    con = connect(tmp_path / "w.duckdb")

    def batch(ids):
        return {"customer_id": [str(i) for i in ids], "expected_purchases": [1.0] * len(ids),
                "p_alive": [0.5] * len(ids), "expected_order_value": [10.0] * len(ids), "clv": [5.0] * len(ids)}

    def saved():
        return (con.execute("SELECT count(*) FROM clv_scores WHERE run_id = 'clv-x'").fetchone()[0],
                con.execute("SELECT count(*) FROM saved_runs WHERE run_id = 'clv-x'").fetchone()[0])

    with pytest.raises(RuntimeError), saving_run(con, "clv_scores", "clv-x", 4) as saver:
        saver.write(batch([1, 2]))
        raise RuntimeError("the scoring failed between two batches")
    assert saved() == (0, 0)  # rolled back: no half run, no record of it
    con.execute("INSERT INTO clv_scores SELECT 'clv-x', '9', 1, 0.5, 10, 5")  # a partial run left by other means
    with saving_run(con, "clv_scores", "clv-x", 4) as saver:
        saver.write(batch([1, 2]))
        saver.write(batch([3, 4]))
    assert saved() == (4, 1) and saver.note is None
    with saving_run(con, "clv_scores", "clv-x", 4) as saver:  # the same run again: nothing rewritten
        assert saver.con is None
    assert saved() == (4, 1)
    con.close()
