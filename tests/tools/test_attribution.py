import itertools
import json
import math

import pytest
from pydantic import ValidationError

from evals.reference import (
    channel_attribution_heuristics,
    compare_attribution,
    compare_credit,
    dense_removal_effects,
    read_paths,
)
from tests.conftest import cli_json, run_cli, shared_path
from tools.analytics.attribution.tool import AttributionParams, attribute_conversions
from tools.registry import ToolError
from tools.warehouse import WarehouseError, connect


@pytest.fixture(scope="module")
def paths_home(tmp_path_factory):
    """A fresh home with ChannelAttribution's demo paths loaded through `northstar load`."""
    src = shared_path("datasets/attribution/paths.csv")
    home = tmp_path_factory.mktemp("attr_home")
    run_cli("load", "paths", str(src), home=home, check=True)
    return home


@pytest.fixture(scope="module")
def all_models(paths_home):
    return cli_json("tool", "attribute_conversions", "--args", json.dumps({"paths_table": "paths"}), home=paths_home)


def _read_paths():
    return read_paths(shared_path("datasets/attribution/paths.csv"))


def test_heuristics_equal_channelattribution_reference(all_models):
    reference = channel_attribution_heuristics(
        shared_path("datasets/attribution/reference_heuristic_ChannelAttribution-2.2.5.csv"))
    assert all_models["metrics"]["conversions"] == 19785 and all_models["metrics"]["channels"] == 12
    assert all(len(credit) == 12 for models in reference.values() for credit in models.values())
    assert compare_attribution(all_models["metrics"], reference, tol=1e-6) == []


def test_markov_removal_effects_equal_dense_absorbing_chain(all_models, paths_home):
    paths = _read_paths()
    expected = dense_removal_effects(paths, 1)
    got = all_models["metrics"]["removal_effects"]
    assert set(got) == set(expected)
    assert compare_credit(got, expected, 1e-6, label="removal") == []
    markov = all_models["metrics"]["by_model"]["markov"]
    total = sum(expected.values())
    for ch, re in expected.items():
        assert markov[ch] == pytest.approx(re / total * 19785, abs=1e-6)
    con = connect(paths_home / "warehouse.duckdb", read_only=True)
    try:
        res = attribute_conversions(con, AttributionParams(paths_table="paths", model="markov", markov_order=2))
    finally:
        con.close()
    expected2 = dense_removal_effects(paths, 2)
    assert compare_credit(res.metrics["removal_effects"], expected2, 1e-6, label="removal order 2") == []


def _tiny(con, rows, name="tiny"):
    con.execute(f"CREATE TABLE {name} (path VARCHAR, total_conversions BIGINT, total_conversion_value DOUBLE, "
                "total_null BIGINT)")
    con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?)", rows)


def test_shapley_is_exact_and_rules_match_hand_computation(tmp_path):
    rows = [("a > b", 3, 30.0, 7), ("b", 1, 10.0, 9), ("a", 2, 20.0, 8), ("c > a > c", 4, 40.0, 6),
            ("b > c", 0, 0.0, 10), ("c", 1, 10.0, 4)]
    con = connect(tmp_path / "w.duckdb")
    _tiny(con, rows)
    res = attribute_conversions(con, AttributionParams(paths_table="tiny", half_life=1.0))
    by = res.metrics["by_model"]
    sets = [(frozenset(p.split(" > ")), c, c + n) for p, c, _, n in rows]

    def worth(coalition):
        conv = sum(c for s, c, _ in sets if s <= coalition)
        count = sum(t for s, _, t in sets if s <= coalition)
        return conv / count if count else 0.0

    players = ["a", "b", "c"]
    phi = {p: 0.0 for p in players}
    for perm in itertools.permutations(players):
        have = frozenset()
        for p in perm:
            phi[p] += (worth(have | {p}) - worth(have)) / math.factorial(3)
            have = have | {p}
    total = sum(phi.values())
    for p in players:
        assert by["shapley"][p] == pytest.approx(phi[p] / total * 11, abs=1e-9)
    # position-based: "c > a > c" gives c 0.8, a 0.2; two touches 50/50; one touch 100 %
    assert by["position_based"]["a"] == pytest.approx(1.5 + 2 + 0.8, abs=1e-9)
    # time decay, half-life 1 touch: "c > a > c" weights 1/4, 1/2, 1 → c 5/7, a 2/7
    assert by["time_decay"]["c"] == pytest.approx(4 * 5 / 7 + 1, abs=1e-9)
    assert by["linear"]["c"] == pytest.approx(4 * 2 / 3 + 1, abs=1e-9)  # repeats count, as in ChannelAttribution
    con.close()


def test_demo_truth_search_and_email_beat_display(demo_con):
    period = {"start": "2024-10-01", "end": "2026-09-30"}
    first = attribute_conversions(demo_con, AttributionParams(model="markov", **period))
    re1 = first.metrics["removal_effects"]
    assert max(re1, key=re1.get) == "search" and re1["search"] > re1["display"]
    for order in (2, 3):  # higher orders remember an early e-mail touch; order 1 forgets it
        res = attribute_conversions(demo_con, AttributionParams(model="markov", markov_order=order, **period))
        re = res.metrics["removal_effects"]
        assert re["search"] > re["display"] and re["email"] > re["display"]
    shap = attribute_conversions(demo_con, AttributionParams(model="shapley", **period)).metrics["by_model"]["shapley"]
    ranked = sorted(shap, key=shap.get, reverse=True)
    assert ranked[:2] == ["search", "email"] and ranked[-1] == "display"
    assert abs(shap["display"]) < 0.02 * sum(shap.values())


def test_warehouse_journeys_and_campaign_level(demo_con):
    res = attribute_conversions(demo_con, AttributionParams(start="2026-07-01", end="2026-09-30",
                                                            level="campaign", model="linear", lookback_days=14))
    converted = demo_con.execute("SELECT count(*) FROM conversions WHERE conversion_time >= '2026-07-01' "
                                 "AND conversion_time < '2026-10-01'").fetchone()[0]
    credited = sum(res.metrics["by_model"]["linear"].values())
    assert credited == pytest.approx(res.metrics["conversions"])
    assert 0.9 * converted <= res.metrics["conversions"] <= converted
    assert {"campaign", "conversions", "share"} <= set(res.data[0])
    assert res.metrics["journeys"] > res.metrics["converting_paths"]  # non-converting journeys are included


def test_unknown_separator_empty_period_and_bad_table_are_explained(tmp_path, demo_con):
    home = tmp_path / "home"
    con = connect(home / "warehouse.duckdb")
    con.execute("CREATE TABLE pipes AS SELECT * FROM (VALUES ('a|b|c', 1, 2), ('b|c', 0, 3), ('c', 2, 1)) "
                "v(path, total_conversions, total_null)")
    con.close()
    proc = run_cli("tool", "attribute_conversions", "--args", '{"paths_table": "pipes"}', home=home)
    assert proc.returncode == 1 and "separator='|'" in proc.stderr and "Traceback" not in proc.stderr
    con = connect(home / "warehouse.duckdb", read_only=True)
    try:
        ok = attribute_conversions(con, AttributionParams(paths_table="pipes", separator="|"))
        assert ok.metrics["channels"] == 3 and not any("separator" in w for w in ok.warnings)
        with pytest.raises(WarehouseError, match="does not exist"):
            attribute_conversions(con, AttributionParams(paths_table="nope"))
    finally:
        con.close()
    with pytest.raises(ToolError, match="No journeys"):
        attribute_conversions(demo_con, AttributionParams(start="2030-01-01", end="2030-01-31"))
    with pytest.raises(ValidationError):
        AttributionParams(model="magic")


def test_no_conversions_is_an_error_not_nan(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    _tiny(con, [("a > b", 0, 0.0, 5), ("b", 0, 0.0, 3)])
    with pytest.raises(ToolError, match="No conversions"):
        attribute_conversions(con, AttributionParams(paths_table="tiny"))
    con.close()
