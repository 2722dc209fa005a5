import json
import re
from collections import Counter

import numpy as np
import pytest

from tests.conftest import SHARED, cli_json, run_cli, shared_path
from tools.analytics import sentiment
from tools.analytics.sentiment import (
    SentimentParams,
    analyze_sentiment,
    aspect_sentences,
    frequent_phrases,
    labels,
    score_texts,
)
from tools.analytics.sentiment_text import STOP, split_sentences, to_re2
from tools.warehouse.demo import SPIKE_WEEK

SHARED_SENTIMENT = SHARED / "datasets" / "sentiment"

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
    res = analyze_sentiment(demo_con, SentimentParams())
    spikes = res.metrics["spikes"]
    assert [s["week"] for s in spikes] == [SPIKE_WEEK.isoformat()]
    assert spikes[0]["worst_aspect"]["aspect"] == "delivery"
    assert spikes[0]["negative_share"] > spikes[0]["baseline"] + 0.2
    assert "2026-08-03" in res.summary and "delivery" in res.summary
    assert res.metrics["texts"] == demo_con.execute("SELECT count(*) FROM reviews").fetchone()[0]
    assert res.metrics["unique_texts"] < res.metrics["texts"] / 10  # de-duplicated before scoring
    assert res.chart["mark"]["type"] == "line" and len(res.data) > 100
    assert any("not saved" in w for w in res.warnings)  # read-only connection: told, not crashed
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


# --- the batch versions (tools/analytics/sentiment_text.py) against the per-text Python they replaced ---------

REF_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
REF_WORD = re.compile(r"[a-z][a-z']*")


def _ref_aspect_sentences(texts, known=None):
    """analyze_sentiment's first aspect_sentences, verbatim: every sentence against every aspect pattern."""
    lex = sentiment._aspects()
    idx, names, sents = [], [], []
    for i, text in enumerate(texts):
        for sent in filter(None, (s.strip() for s in REF_SENTENCES.split(text))):
            for name, pattern in lex.items():
                if pattern.search(sent):
                    idx.append(i)
                    names.append(name)
                    sents.append(sent)
    known = known or {}
    uniq = sorted(set(sents) - set(known))
    scores = {**known, **dict(zip(uniq, score_texts(uniq), strict=True))}
    return np.array(idx, dtype=np.int64), names, np.array([scores[s] for s in sents], dtype=float)


def _ref_grams(text):
    words = REF_WORD.findall(text.lower())
    return {" ".join(words[j:j + k]) for k in (2, 3) for j in range(len(words) - k + 1)
            if words[j] not in STOP and words[j + k - 1] not in STOP}


def _ref_frequent_phrases(texts, counts, negative, top):
    """analyze_sentiment's first frequent_phrases, verbatim: n-gram sets and Counters per text."""
    neg, total, where = Counter(), Counter(), {}
    for i, (text, n, is_neg) in enumerate(zip(texts, counts, negative, strict=True)):
        for g in _ref_grams(text):
            total[g] += n
            if is_neg:
                neg[g] += n
                where[g] = where.get(g, 0) ^ hash((i, 0x9E3779B9))
    base = sum(n for n, b in zip(counts, negative, strict=True) if b) / max(sum(counts), 1)
    out, seen = [], set()
    for g, c in sorted(neg.items(), key=lambda kv: (-kv[1], -kv[0].count(" "), kv[0])):
        if c < 2 or c / total[g] < min(2 * base, 0.9) or (c, where[g]) in seen:
            continue
        seen.add((c, where[g]))
        out.append({"phrase": g, "negative_texts": c, "negative_rate": round(c / total[g], 3)})
        if len(out) == top:
            break
    return out


# pieces chosen to hit every edge of the splitting, matching and word rules: sentence ends, every kind of
# whitespace, apostrophes, non-ASCII letters next to aspect words (Python's \b is Unicode, RE2's ASCII), case
# folds outside ASCII (K Kelvin sign, long s, dotless i), lone surrogates, NUL, aspect words inside words
PIECES = ["Delivery was late", "the box was damaged", "great value for money", "PRICE is a rip-off",
          "it took 12 days to arrive", "it took too many weeks to", "the app keeps crashing", "log in failed",
          "customer service was rude", "quality is excellent", "fits well", "fit\u00e9", "\u00e9deliver",
          "\u212aheap", "pr\u0131ce", "\u017fhipping", "co\u017ft", "\u0130ndeed the page", "'quoted' words",
          "''", "'a'b", "don't", "ain't it", "rock'n'roll", "\x00", "\x00deliver", "\t", "\v", "\x1c", "\u00a0",
          "\u2028", "\r\n", "\n\n", "!", "?!", "...", " . ", "\ud800", "\U0001f600", "caf\u00e9 fabric",
          "the the the", "no no", "not bad", "a support agent", "SEARCH BAR", "Took 3 days to", "deal\u00e9",
          "price.", "shipping!", "broken?", "returns", "return\u00e9", "Stra\u00dfe", "\u00c9LAN"]


def _generated(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    glue = [" ", ". ", "! ", "? ", "\n", ", ", "", ".\n", " \u00a0", "\t"]
    return ["".join(PIECES[i] + glue[g] for i, g in zip(rng.integers(0, len(PIECES), k),
                                                        rng.integers(0, len(glue), k), strict=True))
            for k in rng.integers(0, 9, n)]


def _texts_for_equivalence(n: int = 3000) -> list[str]:
    texts = _generated(n, 3) + ["", " ", "\n", "a.b. c", "x" * 500 + ". Delivery."]
    for name in ("tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt"):
        path = SHARED_SENTIMENT / name
        if path.exists():
            texts += [line.split("\t", 2)[2] for line in path.read_text(encoding="utf-8").splitlines()[:1500]]
    return texts


def _assert_same_aspects(texts):
    known = dict(zip(texts[::3], np.linspace(-1, 1, len(texts[::3])), strict=True))
    for args in ((texts,), (texts, known)):
        want, got = _ref_aspect_sentences(*args), aspect_sentences(*args)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == want[1]
        np.testing.assert_array_equal(got[2], want[2])
    return want


def test_split_sentences_equal_per_text_split():
    with_nul = _texts_for_equivalence()
    for texts in (with_nul, [t.replace("\x00", "") for t in with_nul]):  # per text; then one call for all
        want = [(i, s) for i, t in enumerate(texts) for s in map(str.strip, REF_SENTENCES.split(t)) if s]
        sents, text_of = split_sentences(texts)
        assert list(zip(text_of.tolist(), sents, strict=True)) == want
    assert len(split_sentences([])[0]) == len(split_sentences([""])[0]) == 0


def test_aspect_sentences_equal_the_per_sentence_search():
    texts = _texts_for_equivalence()
    want = _assert_same_aspects(texts)
    assert len(set(want[1])) == 5 and len(want[0]) > 500  # every aspect found, on many sentences
    assert all(to_re2(p) for p in sentiment._aspects().values())  # the shipped lexicon runs in RE2


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
def test_aspect_patterns_re2_cannot_mimic_fall_back_to_python(tmp_path, monkeypatch):
    """Look-arounds, back-references, scoped flags, non-ASCII literals, POSIX-looking sets (a set of
    characters to Python, a class to RE2), \\s (RE2's lacks \\v), anchors: same result as Python's re."""
    lexicon = tmp_path / "aspects.yaml"
    lexicon.write_text('behind: ["(?<=the )box", "late(?! delivery)"]\nbackref: ["(\\\\w)\\\\1"]\n'
                       'scoped: ["(?-i:PRICE)", "(?s:took.{0,3}days)"]\nunicode: ["caf\u00e9", "\u00e9lan", "\u0131"]\n'
                       'posix: ["[[:alpha:]]x", "a{2,}", "\\\\s\\\\s"]\nanchors: ["^great", "value$", "\\\\Bay", "ok\\\\Z"]\n'
                       'lazy: ["d.+?y", "[^a-z ]{2}"]\n', encoding="utf-8")
    monkeypatch.setattr(sentiment, "ASPECTS_FILE", lexicon)
    translated = {name: to_re2(p) for name, p in sentiment._aspects().items()}
    assert translated["behind"] is None and translated["backref"] is None and translated["scoped"] is None
    assert translated["unicode"] is None and translated["posix"] and translated["anchors"]
    want = _assert_same_aspects(_texts_for_equivalence(1500) + ["great value", "aay ok", "x\vy  z", ":x"])
    assert {"behind", "posix", "anchors", "lazy", "unicode"} <= set(want[1])


@pytest.mark.parametrize("seed", [0, 1])
def test_frequent_phrases_equal_the_per_text_counters(seed):
    texts = _texts_for_equivalence()
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 6, len(texts)).tolist()
    negative = (rng.random(len(texts)) < 0.3).tolist()
    for top in (1, 10, 50):
        want = _ref_frequent_phrases(texts, counts, negative, top)
        assert frequent_phrases(texts, counts, negative, top) == want
        assert len(want) == top  # enough phrases that ties, skips and the top cut are all exercised
    assert frequent_phrases(texts, counts, [False] * len(texts), 5) == []
    assert frequent_phrases(["awful app crash", "fine"], [1, 2], [True, False], 5) == []  # nothing twice
    assert frequent_phrases([], [], [], 5) == _ref_frequent_phrases([], [], [], 5) == []


def test_frequent_phrases_skip_a_phrase_found_in_the_same_texts():
    texts = ["the parcel never came back", "the parcel never came back at all", "lovely parcel", "lovely"]
    args = (texts, [3, 2, 5, 5], [True, True, False, False], 10)
    got = frequent_phrases(*args)
    assert got == _ref_frequent_phrases(*args)
    # "parcel never came", "never came", … occur in exactly the texts of "never came back": skipped
    assert [p["phrase"] for p in got] == ["never came back", "back at all"]
    assert got[0]["negative_texts"] == 5 and got[0]["negative_rate"] == 1.0
