"""The sampled paths of predict_clv and score_churn on Spark: the same seeded sample is drawn by the engine (md5 in
Spark SQL), the same models are fitted and everyone is scored in batches streamed from Spark, with the results of
DuckDB's run (fitted models within 1e-6, tests/tools/spark_world.py). Thresholds are lowered on the 2,000-customer
parity world instead of building a large one."""

from __future__ import annotations

import pytest

from tests.tools.spark_world import FITTED_REL, rows, run_both, same, world
from tools.analytics.customers import churn, clv, clv_scoring, scoring

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with world(tmp_path_factory.mktemp("sampled_parity"), "the sampled customer models on Spark") as made:
        yield made


def test_predict_clv_sampled_is_the_same_on_spark(pair, monkeypatch):
    monkeypatch.setattr(clv, "SAMPLE_ABOVE", 500)
    monkeypatch.setattr(clv, "FIT_SAMPLE", 700)
    monkeypatch.setattr(clv_scoring, "BATCH_ROWS", 600)
    left, right = run_both(pair, "predict_clv", {"horizon_days": 180})
    assert left.metrics["fit_sampled"] and 500 < left.metrics["fit_customers"] < 900
    for part in ("summary", "data", "metrics", "warnings"):
        same(getattr(left, part), getattr(right, part), f"predict_clv.{part}", FITTED_REL)
    duck, spark, _ = pair
    sql = "SELECT count(*), sum(clv) FROM clv_scores WHERE run_id = ?"
    (n_duck, total_duck), = rows(duck, sql, [left.metrics["run_id"]])
    (n_spark, total_spark), = rows(spark, sql, [right.metrics["run_id"]])
    assert n_duck == n_spark == left.metrics["customers"]
    same(total_duck, total_spark, "saved clv", FITTED_REL)


def test_score_churn_sampled_is_the_same_on_spark(pair, monkeypatch):
    monkeypatch.setattr(churn, "SAMPLE_ABOVE", 300)
    monkeypatch.setattr(churn, "FIT_SAMPLE", 900)
    monkeypatch.setattr(scoring, "BATCH_ROWS", 500)
    left, right = run_both(pair, "score_churn", {})
    assert "sample" in left.metrics and left.metrics["sample"]["train_customers"] < left.metrics["train_population"]
    for part in ("summary", "data", "metrics", "warnings"):
        same(getattr(left, part), getattr(right, part), f"score_churn.{part}", FITTED_REL)
