import json

import numpy as np
import pytest

from tests.conftest import cli_json, run_cli, shared_path
from tools.analytics.customers.clv import ClvParams, _history, _source, predict_clv
from tools.analytics.customers.clv_models import (
    bgnbd_ll,
    conditional_expected_purchases,
    expected_purchases,
    fit_bgnbd,
    gamma_gamma_ll,
    p_alive,
)
from tools.registry import ToolError
from tools.warehouse import connect

CDNOW_ARGS = {"table": "cdnow", "customer_column": "customer_id", "date_column": "order_date",
              "value_column": "dollars", "date_format": "%Y%m%d", "as_of": "1997-09-30", "horizon_days": 273}


@pytest.fixture(scope="module")
def cdnow_home(tmp_path_factory):
    """A fresh home with CDNOW's transactions loaded as a user table through the real CLI."""
    home = tmp_path_factory.mktemp("cdnow_home")
    run_cli("load", "cdnow", str(shared_path("datasets/clv/CDNOW_sample.txt")), "--no-header",
            "--columns", "customer_id,sample_id,order_date,cds,dollars", home=home, check=True)
    return home


def test_cdnow_reproduces_published_bgnbd_and_gamma_gamma(cdnow_home):
    out = cli_json("tool", "predict_clv", "--args", json.dumps(CDNOW_ARGS), home=cdnow_home)
    m = out["metrics"]
    for name, ref in {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}.items():
        assert m["bgnbd"][name] == pytest.approx(ref, rel=0.005), name
    assert m["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    for name, ref in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert m["gamma_gamma"][name] == pytest.approx(ref, rel=0.01), name
    assert (m["customers"], m["repeat_customers"], m["gamma_gamma_customers"]) == (2357, 946, 946)
    params = [m["bgnbd"][k] for k in ("r", "alpha", "a", "b")]
    published = [0.0532, 0.1506, 1.0437, 1.8576]
    assert expected_purchases(params, [1, 3, 32, 78]) == pytest.approx(published, abs=6e-4)
    assert float(conditional_expected_purchases(params, 39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=1e-3)
    assert "r 0.2426" in out["summary"] and "2,357 customers" in out["summary"]
    con = connect(cdnow_home / "warehouse.duckdb", read_only=True)
    n, lo, hi = con.execute("SELECT count(*), min(p_alive), max(p_alive) FROM clv_scores WHERE run_id = ?",
                            [m["run_id"]]).fetchone()
    assert n == 2357 and 0 < lo <= hi <= 1
    top = out["data"][0]
    stored = con.execute("SELECT clv FROM clv_scores WHERE run_id = ? AND customer_id = ?",
                         [m["run_id"], top["customer_id"]]).fetchone()[0]
    assert stored == pytest.approx(top["clv"], abs=0.01)
    con.close()


def test_cdnow_summary_follows_from_the_transactions(cdnow_home):
    import pandas as pd

    con = connect(cdnow_home / "warehouse.duckdb", read_only=True)
    params = ClvParams(**{**CDNOW_ARGS, "customer_column": "sample_id"})
    s = pd.DataFrame(_history(con, _source(con, params)[0], params.as_of))
    con.close()
    s["ID"] = s["cid"].astype(int)
    ref = pd.read_csv(shared_path("datasets/clv/cdnow_customers_summary_with_transactions.csv")).merge(s, on="ID")
    assert len(ref) == 2357
    assert (ref["x_x"] == ref["x_y"]).all()
    for a, b in (("t_x_x", "t_x_y"), ("T_x", "T_y"), ("zbar_x", "zbar_y")):
        assert np.abs(ref[a] - ref[b]).max() <= 0.0051, a  # the file rounds to 2 decimals


def test_analytic_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.poisson(1.5, 300).astype(float)
    T = rng.uniform(20, 40, 300)
    t_x = np.where(x > 0, T * rng.uniform(0.1, 1, 300), 0.0)
    m = rng.gamma(5, 4, 300)
    for fn, params, args in ((bgnbd_ll, np.array([0.3, 4.0, 0.8, 2.5]), (x, t_x, T)),
                             (gamma_gamma_ll, np.array([6.0, 3.5, 15.0]), (np.maximum(x, 1), m))):
        _, grad = fn(params, *args, grad=True)
        for i in range(params.size):
            step = np.zeros_like(params)
            step[i] = 1e-6
            numeric = (fn(params * np.exp(step), *args) - fn(params * np.exp(-step), *args)) / 2e-6
            assert grad[i] == pytest.approx(numeric, rel=1e-4, abs=1e-4)


def test_bgnbd_recovers_parameters_of_simulated_customers():
    """Simulate BG/NBD buyers from known parameters (vectorised) and recover them."""
    rng = np.random.default_rng(7)
    n, true = 20_000, np.array([0.5, 6.0, 0.7, 3.0])
    lam = rng.gamma(true[0], 1 / true[1], n)
    drop = rng.beta(true[2], true[3], n)
    T = rng.uniform(30, 52, n)
    gaps = rng.exponential(1, (n, 150)) / lam[:, None]
    times = np.cumsum(gaps, axis=1)
    alive_for = rng.geometric(drop)  # repeat purchases made before dropping out
    x = np.minimum((times <= T[:, None]).sum(axis=1), alive_for)
    t_x = np.where(x > 0, times[np.arange(n), np.maximum(x - 1, 0)], 0.0)
    fitted, ll = fit_bgnbd(x.astype(float), t_x, T)
    assert ll >= bgnbd_ll(true, x.astype(float), t_x, T)
    assert fitted == pytest.approx(true, rel=0.2)
    alive = p_alive(fitted, x, t_x, T)
    assert ((alive >= 0) & (alive <= 1)).all() and alive[x == 0].min() == 1.0


def test_demo_warehouse_scores_every_buyer_and_is_deterministic(demo_rw):
    params = ClvParams(horizon_days=180, margin=0.3, discount_rate=0.1, limit=5)
    first = predict_clv(demo_rw, params)
    m = first.metrics
    buyers = demo_rw.execute("SELECT count(DISTINCT customer_id) FROM orders").fetchone()[0]
    assert m["customers"] == buyers
    assert demo_rw.execute("SELECT count(*) FROM clv_scores WHERE run_id = ?", [m["run_id"]]).fetchone()[0] == buyers
    assert 0 < m["mean_p_alive"] < 1 and m["clv_total"] > 0 and len(first.data) == 5
    assert first.chart["mark"]["type"] == "bar" and "margin 30 %" in first.summary
    again = predict_clv(demo_rw, params)
    assert again.model_dump() == first.model_dump()  # same seed, same data → same result and run id
    undiscounted = predict_clv(demo_rw, params.model_copy(update={"discount_rate": 0.0}))
    assert undiscounted.metrics["clv_total"] > m["clv_total"]


def test_among_reports_a_churn_runs_high_risk_customers_with_the_same_scores(demo_rw):
    """"Which of those are worth the most?" after a churn run: the same fit and saved scores, reported for the
    run's high-risk customers only (their totals, share and top rows); an unknown population is a clear error."""
    demo_rw.execute("""INSERT INTO churn_scores SELECT 'churn-t', customer_id, 0.9,
        CASE WHEN customer_id % 3 = 0 THEN 'high' ELSE 'low' END, NULL FROM customers""")
    everyone = predict_clv(demo_rw, ClvParams(limit=5))
    among = predict_clv(demo_rw, ClvParams(limit=5, among="churn-t"))
    m = among.metrics
    assert m["run_id"] == everyone.metrics["run_id"] and m["clv_total"] == everyone.metrics["clv_total"]
    n, total, best = demo_rw.execute("""SELECT count(*), sum(clv), max(clv) FROM clv_scores WHERE run_id = ?
        AND customer_id::BIGINT % 3 = 0""", [m["run_id"]]).fetchone()
    assert (m["among_customers"], m["among_clv_total"]) == (n, pytest.approx(total))
    assert m["among_share_of_clv"] == pytest.approx(total / m["clv_total"]) and "high-risk" in among.summary
    assert all(int(r["customer_id"]) % 3 == 0 for r in among.data) and among.data[0]["clv"] == round(best, 2)
    with pytest.raises(ToolError, match="neither a churn run nor a saved audience"):
        predict_clv(demo_rw, ClvParams(among="nobody"))


@pytest.mark.parametrize("args, message", [
    ({"table": "nope"}, "does not exist"),
    ({"table": "tiny", "customer_column": "cust"}, "no column 'cust'"),
    ({"table": "tiny", "value_column": "amount", "date_column": "day"}, "not dates"),
    ({"table": "tiny", "value_column": "amount", "date_column": "day", "date_format": "%Y%m%d"},
     "Too few customers"),
    ({"table": "tiny", "value_column": "amount", "date_column": "day", "date_format": "%Y%m%d",
      "as_of": "2031-01-01"}, "after the last day"),
    ({"as_of": "2031-01-01"}, "after the last day"),
])
def test_bad_arguments_give_clear_errors(tmp_path, demo_con, args, message):
    con = connect(tmp_path / "w.duckdb")
    con.execute("CREATE TABLE tiny AS SELECT range % 7 AS customer_id, 20240101 + range % 20 AS day, "
                "10.0 AS amount FROM range(30)")
    target = demo_con if args == {"as_of": "2031-01-01"} else con
    with pytest.raises(ToolError, match=message):
        predict_clv(target, ClvParams(**args))
    con.close()


def test_cli_error_is_a_message_not_a_traceback(cdnow_home):
    proc = run_cli("tool", "predict_clv", "--args", json.dumps({**CDNOW_ARGS, "value_column": "dolars"}),
                   home=cdnow_home)
    assert proc.returncode == 1 and "Did you mean dollars" in proc.stderr and "Traceback" not in proc.stderr
