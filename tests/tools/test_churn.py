from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import shared_path
from tools.analytics.customers.churn import ChurnParams, churn_features, churn_labels, score_churn
from tools.registry import ToolError
from tools.warehouse import connect
from tools.warehouse.loader import load_file

TELCO = {"table": "telco", "id_column": "customerid", "label_column": "churn"}


@pytest.fixture(scope="module")
def telco(tmp_path_factory):
    """IBM Telco loaded as a user table (types inferred; TotalCharges has 11 blanks), plus a label-shuffled copy."""
    con = connect(tmp_path_factory.mktemp("telco") / "warehouse.duckdb")
    load_file(con, "telco", shared_path("datasets/churn/telco_customer_churn.csv"))
    labels = con.execute("SELECT churn FROM telco ORDER BY customerid").fetchnumpy()["churn"]
    con.register("_shuffled", pa.table({"rn": np.arange(labels.size) + 1,
                                        "churn": np.random.default_rng(3).permutation(np.asarray(labels))}))
    con.execute("""CREATE TABLE telco_shuffled AS SELECT t.* EXCLUDE (churn), s.churn FROM
        (SELECT *, row_number() OVER (ORDER BY customerid) AS rn FROM telco) t JOIN _shuffled s USING (rn)""")
    con.execute("ALTER TABLE telco_shuffled DROP COLUMN rn")
    con.unregister("_shuffled")
    yield con
    con.close()


def test_telco_table_mode_reaches_published_auc(telco):
    res = score_churn(telco, ChurnParams(**TELCO))
    m = res.metrics
    assert m["cv_auc"] >= 0.84  # published logistic regression: 0.842 ± 0.012 (10-fold CV)
    assert m["holdout_auc"] >= 0.82 and m["reliable"] is True
    assert set(m["cv"]) == {"logistic_regression", "gradient_boosting"}
    assert m["model"] == max(m["cv"], key=lambda k: m["cv"][k]["auc"])
    assert m["scored"] == 7043 and m["top_decile_lift"] > 2
    assert any("totalcharges: 11 blank" in n for n in m["notes"])  # blanks handled, and said so
    top = [d["driver"] for d in m["drivers"][:4]]
    assert "contract" in top and ("tenure" in top or "totalcharges" in top)
    cal = m["calibration"]
    assert abs(sum(r["n"] * (r["mean_predicted"] - r["observed_rate"]) for r in cal) / sum(r["n"] for r in cal)) < 0.05
    assert any("not saved" in w for w in res.warnings)  # text ids do not fit churn_scores' integer key
    assert "CV AUC 0.8" in res.summary and "reliable enough" in res.summary
    again = score_churn(telco, ChurnParams(**TELCO))
    assert again.model_dump() == res.model_dump()


def test_shuffled_labels_are_flagged_unreliable(telco):
    res = score_churn(telco, ChurnParams(**{**TELCO, "table": "telco_shuffled"}))
    assert res.metrics["reliable"] is False and res.metrics["cv_auc"] < 0.6
    assert "NOT better than chance" in res.summary and any("do not act" in w for w in res.warnings)


def test_demo_churn_finds_the_planted_drivers(demo_rw):
    res = score_churn(demo_rw, ChurnParams(limit=10))
    m = res.metrics
    assert m["cv_auc"] >= 0.75 and m["holdout_auc"] >= 0.75 and m["reliable"]
    drivers = [d["driver"] for d in m["drivers"]]
    assert {"support tickets", "e-mail engagement"} <= set(drivers[:6]), drivers  # planted (docs/demo-data.md)
    discount = next(d for d in m["drivers"] if d["driver"] == "discount use")
    assert discount["importance"] > 0 and "raises" in discount["direction"]  # planted; order value shares it
    saved = demo_rw.execute("""SELECT count(*), count(*) FILTER (WHERE risk_band = 'high'),
            count(top_reasons) FILTER (WHERE risk_band = 'high'), min(probability), max(probability)
        FROM churn_scores WHERE run_id = ?""", [m["run_id"]]).fetchone()
    assert saved[0] == m["scored"] and saved[1] == m["high_risk"] and saved[2] > 0.9 * saved[1]
    assert 0 <= saved[3] <= saved[4] <= 1
    active = demo_rw.execute("""SELECT count(DISTINCT customer_id) FROM orders
        WHERE order_date > DATE '2026-09-30' - 365""").fetchone()[0]
    assert m["scored"] == active
    values = [r["value_at_risk"] for r in res.data]
    assert len(values) == 10 and values == sorted(values, reverse=True)
    assert res.chart and "Top drivers" in res.summary


def test_features_use_no_data_after_the_cutoff(demo_rw):
    """No leakage: deleting everything after the cutoff changes neither features nor labels up to it."""
    cutoff, horizon = date(2026, 5, 31), 60
    before = churn_features(demo_rw, cutoff, 365)
    labels = churn_labels(demo_rw, before["customer_id"], cutoff, horizon)
    end = cutoff + timedelta(days=horizon)
    demo_rw.execute("DELETE FROM orders WHERE order_date > ?", [end])
    demo_rw.execute("UPDATE orders SET revenue = revenue * 10 WHERE order_date > ?", [cutoff])
    for table, col in (("events", "event_time"), ("email_sends", "sent_at"), ("reviews", "review_date")):
        demo_rw.execute(f"DELETE FROM {table} WHERE {col} >= ?", [cutoff + timedelta(days=1)])
    after = churn_features(demo_rw, cutoff, 365)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    np.testing.assert_array_equal(labels, churn_labels(demo_rw, after["customer_id"], cutoff, horizon))
    demo_rw.execute("DELETE FROM orders WHERE order_date > ?", [cutoff])
    assert churn_labels(demo_rw, after["customer_id"], cutoff, horizon).all()  # labels live after the cutoff


def test_bad_arguments_give_clear_errors(telco, demo_con):
    telco.execute("CREATE OR REPLACE TABLE small AS SELECT * FROM telco ORDER BY customerid LIMIT 50")
    telco.execute("CREATE OR REPLACE TABLE three AS SELECT *, ['a', 'b', 'c'][1 + rowid % 3] AS label FROM telco")
    cases = [
        (telco, {**TELCO, "table": "telcoo"}, "Table 'telcoo' does not exist. Did you mean telco"),
        (telco, {**TELCO, "label_column": "churned"}, "has no column 'churned'"),
        (telco, {**TELCO, "table": "small"}, "Too few customers"),
        (telco, {**TELCO, "table": "three", "label_column": "label"}, "exactly two values"),
        (telco, {**TELCO, "feature_columns": ["tenure", "bogus"]}, "no column 'bogus'"),
        (demo_con, {"as_of": "2027-01-01"}, "after the last day"),
        (demo_con, {"as_of": "2024-12-31"}, "Too few active customers"),
        (demo_con, {"high_risk": 0.2, "medium_risk": 0.3}, "medium_risk must be below"),
    ]
    for con, args, message in cases:
        with pytest.raises(ToolError, match=message):
            score_churn(con, ChurnParams(**args))
