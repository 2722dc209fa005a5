import json

import numpy as np
import pytest

from tests.conftest import cli_json, run_cli, shared_path
from tools.analytics.budget.tool import BudgetParams, Scenario, allocate_budget
from tools.registry import ToolError
from tools.warehouse import WarehouseError, connect
from tools.warehouse.demo import SATURATED_CHANNEL

MMM = {"table": "mmm", "date_column": "date_week", "outcome_column": "y", "spend_columns": ["x1", "x2"],
       "control_columns": ["event_1", "event_2", "t"]}


@pytest.fixture(scope="module")
def mmm(tmp_path_factory):
    src = shared_path("datasets/mmm/mmm_example.csv")
    home = tmp_path_factory.mktemp("mmm_home")
    run_cli("load", "mmm", str(src), home=home, check=True)
    args = {**MMM, "scenarios": [{"shift_from": "x1", "shift_to": "x2", "fraction": 0.2}]}
    return home, cli_json("tool", "allocate_budget", "--args", json.dumps(args), home=home)


def test_mmm_example_ranks_x1_first_with_the_true_share(mmm):
    _, out = mmm
    rows = {r["channel"]: r for r in out["data"]}
    assert out["data"][0]["channel"] == "x1"
    assert abs(rows["x1"]["share_of_media"] - 0.807) <= 0.10
    assert rows["x1"]["contribution"] == pytest.approx(274_848, rel=0.15)
    assert rows["x2"]["contribution"] == pytest.approx(65_906, rel=0.15)
    for r in rows.values():
        assert r["contribution_low"] <= r["contribution"] <= r["contribution_high"]
        assert r["marginal_roi_low"] <= r["marginal_roi"] <= r["marginal_roi_high"]
    assert rows["x1"]["adstock_alpha"] == pytest.approx(0.4) and rows["x2"]["adstock_alpha"] == pytest.approx(0.2)
    assert out["metrics"]["quality_ok"] and out["metrics"]["r2"] > 0.9
    scenario = out["metrics"]["scenarios"][0]
    assert scenario["band"][0] <= scenario["gain"] <= scenario["band"][1]
    assert "x1 80" in out["summary"] or "x1 7" in out["summary"] or "x1 8" in out["summary"]


def test_demo_saturated_channel_is_identified(demo_con):
    res = allocate_budget(demo_con, BudgetParams(outcome="conversions", bootstrap=30))
    rows = {r["channel"]: r for r in res.data}
    assert res.metrics["saturated"] == [SATURATED_CHANNEL]
    assert rows[SATURATED_CHANNEL]["saturation"] >= 0.95
    assert min(rows, key=lambda c: rows[c]["marginal_roi"] / rows[c]["roi"]) == SATURATED_CHANNEL
    assert min(rows, key=lambda c: rows[c]["saturation"]) == "search"  # the least saturated channel
    assert SATURATED_CHANNEL in res.summary and "Saturated" in res.summary


def test_optimal_split_respects_budget_limits_and_equalises_returns(demo_con):
    params = BudgetParams(total_budget=250_000, max_change=0.5, min_spend={"email": 7_000},
                          max_spend={"search": 120_000},
                          scenarios=[Scenario(shift_from="search", shift_to="social", fraction=0.2),
                                     Scenario(changes={"display": -0.3, "affiliate": 0.2})], bootstrap=30)
    res = allocate_budget(demo_con, params)
    rows = {r["channel"]: r for r in res.data}
    recommended = res.metrics["recommendation"]
    assert sum(recommended.values()) == pytest.approx(250_000, rel=1e-9)
    for ch, r in rows.items():
        assert r["current_budget"] * 0.5 - 1e-6 <= recommended[ch] <= r["current_budget"] * 1.5 + 1e-6
    assert recommended["email"] >= 7_000 - 1e-6 and recommended["search"] <= 120_000 + 1e-6
    assert res.metrics["predicted_gain"] > 0
    interior = [r for ch, r in rows.items()
                if r["current_budget"] * 0.5 + 1 < recommended[ch] < r["current_budget"] * 1.5 - 1
                and ch not in ("email", "search")]
    assert interior, "expected at least one channel inside its limits"
    level = interior[0]["marginal_roi_at_recommended"]
    for r in rows.values():  # water-filling: equal marginal returns inside the limits, higher at a cap
        cap = min(r["current_budget"] * 1.5, 120_000 if r["channel"] == "search" else 1e18)
        floor = max(r["current_budget"] * 0.5, 7_000 if r["channel"] == "email" else 0)
        at_cap, at_floor = recommended[r["channel"]] >= cap - 1, recommended[r["channel"]] <= floor + 1
        if at_cap:
            assert r["marginal_roi_at_recommended"] >= level * (1 - 1e-6)
        elif at_floor:
            assert r["marginal_roi_at_recommended"] <= level * (1 + 1e-6)
        else:
            assert r["marginal_roi_at_recommended"] == pytest.approx(level, rel=1e-6)
    band = res.metrics["predicted_gain_band"]
    assert band[0] <= res.metrics["predicted_gain"] <= band[1]
    shift = res.metrics["scenarios"][0]
    assert sum(shift["allocation"].values()) == pytest.approx(sum(r["current_budget"] for r in rows.values()))
    assert shift["allocation"]["social"] == pytest.approx(rows["social"]["current_budget"]
                                                          + 0.2 * rows["search"]["current_budget"])
    assert "move 20% of search into social" in res.summary


def test_quality_gate_refuses_to_recommend_on_a_poor_fit(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    rng = np.random.default_rng(11)
    n = 150
    con.execute("CREATE TABLE noise AS SELECT DATE '2023-01-02' + 7 * i::INTEGER AS week, unnest(?) AS sales, "
                "unnest(?) AS tv, unnest(?) AS radio, unnest(?) AS print FROM range(?) t(i)",
                [rng.normal(1000, 100, n).tolist(), rng.uniform(0, 10, n).tolist(), rng.uniform(0, 5, n).tolist(),
                 [0.0] * n, n])
    res = allocate_budget(con, BudgetParams(table="noise", date_column="week", outcome_column="sales",
                                            spend_columns=["tv", "radio", "print"], bootstrap=20))
    assert not res.metrics["quality_ok"] and res.metrics["recommendation"] is None
    assert "not reliable enough to recommend a reallocation" in res.summary
    assert all(r["recommended_budget"] == pytest.approx(r["current_budget"]) for r in res.data)
    assert any("print has no spend" in w for w in res.warnings)  # a channel with no spend is left out
    assert {r["channel"] for r in res.data} == {"tv", "radio"}
    assert all(np.isfinite(r["roi"]) for r in res.data)
    with pytest.raises(ToolError, match="spend_columns"):
        allocate_budget(con, BudgetParams(table="noise", date_column="week", outcome_column="sales"))
    con.close()


def test_bad_requests_are_explained(demo_con, mmm):
    with pytest.raises(ToolError, match="Unknown channel"):
        allocate_budget(demo_con, BudgetParams(channels=["tiktok"]))
    with pytest.raises(ToolError, match="No ad spend"):
        allocate_budget(demo_con, BudgetParams(start="2030-01-01", end="2030-06-30"))
    with pytest.raises(ToolError, match="limits cannot hold"):
        allocate_budget(demo_con, BudgetParams(total_budget=1_000_000, max_change=0.1, bootstrap=20))
    with pytest.raises(ToolError, match="unknown channel"):
        allocate_budget(demo_con, BudgetParams(scenarios=[Scenario(shift_from="tv", shift_to="search")],
                                               bootstrap=20))
    home, _ = mmm
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        with pytest.raises(WarehouseError, match="no column 'x9'"):
            allocate_budget(con, BudgetParams(**{**MMM, "spend_columns": ["x1", "x9"]}))
    finally:
        con.close()
