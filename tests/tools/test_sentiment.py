import json
import time

import numpy as np
import pytest

from tests.conftest import cli_json, run_cli, shared_path
from tools.analytics.sentiment import (
    SentimentParams,
    analyze_sentiment,
    aspect_sentences,
    frequent_phrases,
    labels,
    score_texts,
)
from tools.warehouse.demo import SPIKE_WEEK

# vaderSentiment 3.3.2 on its own corpora (../shared/datasets/SOURCES.md): class = sign of the mean rating
REFERENCES = {"tweets": ("tweets_GroundTruth.txt", 0.872, 0.948),
              "amazon": ("amazonReviewSnippets_GroundTruth.txt", 0.590, 0.626)}


def _load(home, table: str, path) -> None:
    """`northstar load` as a user would (tab-separated, no header; the Amazon file has bare quotes in text)."""
    run_cli("load", table, str(path), "--no-header", "--columns", "id,rating,text", home=home, check=True)


@pytest.mark.shared
@pytest.mark.parametrize("corpus", sorted(REFERENCES))
def test_vader_reference_on_its_own_corpora(corpus, tmp_path):
    file, ref_r, ref_f1 = REFERENCES[corpus]
    path = shared_path(f"datasets/sentiment/{file}")
    home = tmp_path / "home"
    table = f"vader_{corpus}"
    _load(home, table, path)
    out = cli_json("tool", "analyze_sentiment", "--args",
                   json.dumps({"table": table, "id_column": "id", "rating_column": "rating"}), home=home)
    agreement = out["metrics"]["agreement"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert out["metrics"]["texts"] == agreement["n"] == len(lines)
    assert agreement["pearson_r"] == pytest.approx(ref_r, abs=0.005)
    assert agreement["weighted_f1"] == pytest.approx(ref_f1, abs=0.005)
    # the saved scores reproduce the same figures independently of the tool's own metrics
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    comp, rating, label = map(np.array, zip(*con.execute(
        f"SELECT s.compound, t.rating, s.label FROM review_scores s JOIN {table} t ON s.row_key = t.id::VARCHAR "
        "WHERE s.run_id = ?", [out["metrics"]["run_id"]]).fetchall(), strict=True))
    assert len(comp) == len(lines)
    assert np.corrcoef(comp, rating)[0, 1] == pytest.approx(ref_r, abs=0.005)
    assert (label == labels(comp)).all()
    from sklearn.metrics import f1_score

    pred = np.where(comp >= 0.05, 1, np.where(comp <= -0.05, -1, 0))
    assert f1_score(np.sign(rating), pred, average="weighted") == pytest.approx(ref_f1, abs=0.005)


def test_demo_spike_is_found_with_delivery_worst(demo_con):
    t0 = time.perf_counter()
    res = analyze_sentiment(demo_con, SentimentParams())
    took = time.perf_counter() - t0
    spikes = res.metrics["spikes"]
    assert [s["week"] for s in spikes] == [SPIKE_WEEK.isoformat()]
    assert spikes[0]["worst_aspect"]["aspect"] == "delivery"
    assert spikes[0]["negative_share"] > spikes[0]["baseline"] + 0.2
    assert "2026-08-03" in res.summary and "delivery" in res.summary
    assert res.metrics["texts"] == demo_con.execute("SELECT count(*) FROM reviews").fetchone()[0]
    assert res.metrics["unique_texts"] < res.metrics["texts"] / 10  # de-duplicated before scoring
    assert res.chart["mark"]["type"] == "line" and len(res.data) > 100
    assert any("not saved" in w for w in res.warnings)  # read-only connection: told, not crashed
    assert took < 20, f"sentiment on the demo took {took:.1f} s"
    # the week's aspect table agrees: delivery is the worst aspect inside the spike week
    week = analyze_sentiment(demo_con, SentimentParams(start=SPIKE_WEEK, end=SPIKE_WEEK.replace(day=9)))
    assert week.metrics["aspects"][0]["aspect"] == "delivery"
    assert any("ship" in p["phrase"] or "late" in p["phrase"] or "lost" in p["phrase"]
               for p in week.metrics["negative_phrases"])


def test_scores_are_saved_and_reruns_replace_them(demo_rw):
    p = SentimentParams(start=SPIKE_WEEK, end=SPIKE_WEEK.replace(day=30), granularity="month")
    first = analyze_sentiment(demo_rw, p)
    again = analyze_sentiment(demo_rw, p)
    run = first.metrics["run_id"]
    assert run and run == again.metrics["run_id"]
    n, bad = demo_rw.execute("""SELECT count(*), count_if(label <> CASE WHEN compound >= 0.05 THEN 'positive'
        WHEN compound <= -0.05 THEN 'negative' ELSE 'neutral' END) FROM review_scores WHERE run_id = ?""",
                             [run]).fetchone()
    assert n == first.metrics["texts"] and bad == 0
    joined = demo_rw.execute("""SELECT count(*) FROM review_scores s JOIN reviews r
        ON s.row_key = r.review_id::VARCHAR WHERE run_id = ? AND r.review_date BETWEEN ? AND ?""",
                             [run, p.start, p.end]).fetchone()[0]
    assert joined == n


def test_pool_gives_the_same_scores_as_serial():
    texts = [f"Delivery was late, order {i}." if i % 2 else f"Great quality, item {i}!" for i in range(400)]
    serial = score_texts(texts, threshold=10**9)
    pooled = score_texts(texts, workers=2, threshold=0)
    np.testing.assert_array_equal(serial, pooled)


def test_aspect_sentences_are_scored_on_their_own():
    idx, names, scores = aspect_sentences(["Delivery was late and the box was damaged. The quality is excellent.",
                                           "Nothing to say."])
    by = dict(zip(names, scores, strict=True))
    assert set(idx) == {0} and set(by) >= {"delivery", "quality"}
    assert by["delivery"] < -0.05 < 0.05 < by["quality"]


def test_frequent_phrases_prefer_complaints_over_common_openers():
    texts = ["Ordered last month. Delivery was late.", "Ordered last month. Lovely quality.",
             "Ordered last month. Great price."]
    out = frequent_phrases(texts, [50, 100, 100], [True, False, False], 3)
    assert out and out[0]["phrase"] == "delivery was late"
    assert all("ordered last" not in p["phrase"] for p in out)


def test_table_mode_errors_are_explained(demo_rw):
    from tools.registry import ToolError
    from tools.warehouse import WarehouseError

    with pytest.raises(WarehouseError, match="Did you mean reviews"):
        analyze_sentiment(demo_rw, SentimentParams(table="reviewz"))
    with pytest.raises(WarehouseError, match="no column 'body'"):
        analyze_sentiment(demo_rw, SentimentParams(text_column="body"))
    with pytest.raises(ToolError, match="system table"):
        analyze_sentiment(demo_rw, SentimentParams(table="audit_log", text_column="detail"))
    demo_rw.execute("CREATE TABLE survey AS SELECT * FROM (VALUES ('the app keeps crashing, awful'), "
                    "('love it'), ('love it')) t(comment)")
    res = analyze_sentiment(demo_rw, SentimentParams(table="survey", text_column="comment"))
    assert res.metrics["texts"] == 3 and res.metrics["unique_texts"] == 2
    assert res.metrics["distribution"] == {"positive": 2, "neutral": 0, "negative": 1}
    assert any("No date column" in w for w in res.warnings)
    assert res.metrics["aspects"][0]["aspect"] == "app"
