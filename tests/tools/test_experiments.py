import json
import math

import numpy as np
import pytest
from scipy import stats

from tests.conftest import cli_json, run_cli, shared_path
from tools.analytics.experiments.plan import PlanParams, plan_experiment
from tools.analytics.experiments.readout import ExperimentParams, analyze_experiment
from tools.registry import ToolError
from tools.warehouse import connect

HILLSTROM = {"visit": (0.182757, 0.151400, 0.106167), "conversion": (0.012531, 0.008837, 0.005726),
             "spend": (1.4226, 1.0772, 0.6528)}
ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")


@pytest.fixture(scope="module")
def hillstrom(tmp_path_factory):
    src = shared_path("datasets/experiments/hillstrom.csv")
    home = tmp_path_factory.mktemp("hill_home")
    run_cli("load", "hillstrom", str(src), home=home, check=True)
    args = {"table": "hillstrom", "variant_column": "segment", "control": "No E-Mail",
            "metrics": ["visit", "conversion", "spend"], "segment_by": "channel"}
    return home, cli_json("tool", "analyze_experiment", "--args", json.dumps(args), home=home)


def test_hillstrom_rates_and_lifts_reproduce_the_reference(hillstrom):
    home, out = hillstrom
    rows = {(r["metric"], r["arm"]): r for r in out["data"]}
    for metric, values in HILLSTROM.items():
        digits = 6 if metric != "spend" else 4
        for arm, expected in zip(ARMS, values, strict=True):
            assert round(rows[(metric, arm)]["mean"], digits) == expected
    mens = rows[("visit", "Mens E-Mail")]
    assert round(100 * mens["lift"], 2) == 7.66 and mens["significant"] and mens["p_adjusted"] < 1e-50
    assert out["metrics"]["verdict"] == "winner" and out["metrics"]["winner"] == "Mens E-Mail"
    assert not out["metrics"]["srm"] and out["metrics"]["metric_types"] == {
        "visit": "rate", "conversion": "rate", "spend": "mean"}
    assert "+7.66 pp" in out["summary"] and "Mens E-Mail beats No E-Mail" in out["summary"]
    assert {s["segment"] for s in out["metrics"]["segments"]} == {"Web", "Phone", "Multichannel"}
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    spend = {a: np.array(v) for a, v in con.execute(
        "SELECT segment, list(spend) FROM hillstrom GROUP BY 1").fetchall()}
    visit = dict(con.execute("SELECT segment, sum(visit) FROM hillstrom GROUP BY 1").fetchall())
    n = dict(con.execute("SELECT segment, count(*) FROM hillstrom GROUP BY 1").fetchall())
    con.close()
    welch = stats.ttest_ind(spend["Womens E-Mail"], spend["No E-Mail"], equal_var=False).pvalue
    assert rows[("spend", "Womens E-Mail")]["p_value"] == pytest.approx(welch, rel=1e-9)
    from statsmodels.stats.proportion import proportions_ztest

    z = proportions_ztest([visit["Womens E-Mail"], visit["No E-Mail"]], [n["Womens E-Mail"], n["No E-Mail"]])[1]
    assert rows[("visit", "Womens E-Mail")]["p_value"] == pytest.approx(z, rel=1e-9)
    boot = rows[("spend", "Mens E-Mail")]
    se = math.sqrt(spend["Mens E-Mail"].var(ddof=1) / spend["Mens E-Mail"].size
                   + spend["No E-Mail"].var(ddof=1) / spend["No E-Mail"].size)
    assert boot["ci_low"] < boot["lift"] < boot["ci_high"]
    assert boot["ci_high"] - boot["ci_low"] == pytest.approx(2 * stats.norm.ppf(0.9875) * se, rel=0.15)


def test_demo_planted_lift_found_and_null_not_called_a_win(demo_con):
    lift = analyze_experiment(demo_con, ExperimentParams(experiment_id="EXP-FREESHIP"))
    row = next(r for r in lift.data if r["metric"] == "converted" and r["arm"] == "free_shipping")
    assert row["significant"] and row["ci_low"] <= 0.012 <= row["ci_high"]
    assert lift.metrics["verdict"] == "winner" and lift.metrics["winner"] == "free_shipping"
    null = analyze_experiment(demo_con, ExperimentParams(experiment_id="EXP-SUBJECT", segment_by="loyalty_member"))
    assert null.metrics["verdict"] == "no_significant_difference" and null.metrics["winner"] is None
    assert not any(r.get("significant") for r in null.data if r["metric"] == "converted")
    assert "Verdict: no arm beats control" in null.summary and "do not call a winner" in null.summary
    assert not any(f"Verdict: {arm} beats" in null.summary for arm in ("emoji", "question"))
    again = analyze_experiment(demo_con, ExperimentParams(experiment_id="EXP-SUBJECT", segment_by="loyalty_member"))
    assert again.data == null.data  # the bootstrap has a fixed seed
    assert null.metrics["segments"] and null.warnings


def _table(con, name, arms, p, seed=1):
    rng = np.random.default_rng(seed)
    variant = np.repeat(arms, [int(n) for n in p])
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM (SELECT unnest(?) AS arm, unnest(?) AS converted, "
                "unnest(?) AS note)", [variant.tolist(), (rng.random(variant.size) < 0.1).astype(int).tolist(),
                                       ["x"] * variant.size])


def test_srm_one_arm_bad_control_and_text_metric(tmp_path):
    home = tmp_path / "home"
    con = connect(home / "warehouse.duckdb")
    con.execute("CREATE TABLE one_arm AS SELECT 'control' AS variant, i % 2 AS converted FROM range(50) t(i)")
    con.close()
    proc = run_cli("tool", "analyze_experiment", "--args",
                   '{"table": "one_arm", "metrics": ["converted"]}', home=home)
    assert proc.returncode == 1 and "only one arm" in proc.stderr and "Traceback" not in proc.stderr
    con = connect(home / "warehouse.duckdb")
    _table(con, "srm", ["control", "treatment"], [6000, 4000])
    res = analyze_experiment(con, ExperimentParams(table="srm", variant_column="arm", metrics=["converted"]))
    assert res.metrics["srm"] and res.metrics["verdict"] == "unreliable" and "sample ratio mismatch" in res.summary
    ok = analyze_experiment(con, ExperimentParams(table="srm", variant_column="arm", metrics=["converted"],
                                                  expected_split={"control": 0.6, "treatment": 0.4}))
    assert not ok.metrics["srm"]
    with pytest.raises(ToolError, match="Control arm 'ctrl' not found"):
        analyze_experiment(con, ExperimentParams(table="srm", variant_column="arm", control="ctrl",
                                                 metrics=["converted"]))
    with pytest.raises(ToolError, match="must be numeric"):
        analyze_experiment(con, ExperimentParams(table="srm", variant_column="arm", metrics=["note"]))
    with pytest.raises(ToolError, match="Unknown experiment"):
        analyze_experiment(con, ExperimentParams(experiment_id="EXP-NOPE"))
    con.close()


@pytest.mark.parametrize("base, rel, ratio, arms", [(0.04, 0.2, 1, 2), (0.1, 0.05, 2, 2), (0.3, 0.1, 1, 3),
                                                    (0.02, 0.5, 0.5, 2)])
def test_plan_proportions_match_statsmodels(base, rel, ratio, arms):
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    res = plan_experiment(None, PlanParams(baseline=base, relative_mde=rel, ratio=ratio, arms=arms,
                                           daily_traffic=1500))
    alpha = 0.05 / (arms - 1)
    h = proportion_effectsize(base * (1 + rel), base)
    n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=0.8, ratio=ratio)
    assert res.metrics["n_control_exact"] == pytest.approx(n, rel=1e-6)
    assert res.metrics["sample_size_control"] == math.ceil(n)
    assert NormalIndPower().power(h, res.metrics["n_control_exact"], alpha, ratio=ratio) == pytest.approx(0.8, abs=1e-6)
    assert res.metrics["duration_days"] == math.ceil(res.metrics["total_sample_size"] / 1500)


@pytest.mark.parametrize("std, mde, ratio", [(120, 5, 1), (10, 8, 1), (10, 30, 0.5), (100, 0.5, 1)])
def test_plan_means_match_statsmodels(std, mde, ratio):
    from statsmodels.stats.power import TTestIndPower

    res = plan_experiment(None, PlanParams(metric="mean", baseline=50, std=std, mde=mde, ratio=ratio))
    n = TTestIndPower().solve_power(effect_size=mde / std, alpha=0.05, power=0.8, ratio=ratio)
    assert res.metrics["n_control_exact"] == pytest.approx(n, rel=1e-6)
    assert res.metrics["sample_size_control"] == math.ceil(n)


def test_plan_mde_and_power_for_given_n():
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    prop = plan_experiment(None, PlanParams(baseline=0.04, sample_size_per_arm=5000))
    h = NormalIndPower().solve_power(nobs1=5000, alpha=0.05, power=0.8, ratio=1)
    assert prop.metrics["effect_size"] == pytest.approx(h, rel=1e-4)
    p2 = 0.04 + prop.metrics["mde"]
    assert 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(0.04)) == pytest.approx(prop.metrics["effect_size"])
    for n in (10, 800, 100_000):
        mean = plan_experiment(None, PlanParams(metric="mean", baseline=50, std=120, sample_size_per_arm=n))
        assert TTestIndPower().power(mean.metrics["effect_size"], n, 0.05) == pytest.approx(0.8, abs=1e-6)
        assert mean.metrics["mde"] == pytest.approx(mean.metrics["effect_size"] * 120)
    power = plan_experiment(None, PlanParams(baseline=0.04, sample_size_per_arm=5000, mde=0.01))
    from statsmodels.stats.proportion import proportion_effectsize

    assert power.metrics["achieved_power"] == pytest.approx(
        NormalIndPower().power(proportion_effectsize(0.05, 0.04), 5000, 0.05), abs=1e-9)


def test_plan_defaults_baseline_from_latest_experiment(demo_con):
    res = plan_experiment(demo_con, PlanParams(daily_traffic=2000))
    control = demo_con.execute("SELECT avg(converted::INT) FROM experiment_assignments WHERE "
                               "experiment_id = 'EXP-SUBJECT' AND variant = 'control'").fetchone()[0]
    assert res.metrics["baseline"] == pytest.approx(control) and "EXP-SUBJECT" in res.warnings[0]


def test_a_basket_size_test_reads_its_baseline_spread_and_traffic_from_the_orders(demo_con):
    """"How many weeks to detect a 5 % lift in basket size?" gives no baseline, spread or traffic: the last 90 days of
    orders do, and the note says so; what the user gives wins."""
    res = plan_experiment(demo_con, PlanParams(metric="mean", relative_mde=0.05))
    mean, std, n = demo_con.execute("""SELECT avg(revenue), stddev_samp(revenue), count(*) FROM orders
        WHERE order_date > (SELECT max(order_date) FROM orders) - 90""").fetchone()
    assert res.metrics["baseline"] == pytest.approx(mean) and res.metrics["std"] == pytest.approx(std)
    assert res.metrics["duration_days"] == math.ceil(res.metrics["total_sample_size"] / (n / 90))
    assert "order values" in res.warnings[0]
    given = plan_experiment(demo_con, PlanParams(metric="mean", baseline=50, std=10, mde=1, daily_traffic=100))
    assert (given.metrics["baseline"], given.metrics["std"]) == (50, 10)


def test_plan_needs_enough_inputs():
    with pytest.raises(ToolError, match="std"):
        plan_experiment(None, PlanParams(metric="mean", baseline=50, mde=5))
    default = plan_experiment(None, PlanParams(baseline=0.04))  # no effect given: a +10 % relative lift, said so
    assert any("+10 % relative lift" in w for w in default.warnings)
    with pytest.raises(ToolError, match="not both"):
        plan_experiment(None, PlanParams(baseline=0.04, mde=0.01, relative_mde=0.1))
    with pytest.raises(ToolError, match="100 %"):
        plan_experiment(None, PlanParams(baseline=0.9, mde=0.2))
