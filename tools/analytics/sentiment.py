"""analyze_sentiment: VADER over reviews or any text column: distribution, trend, aspects, negative themes, spikes."""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics import vader
from tools.analytics.sentiment_text import aspect_hits, frequent_phrases, split_sentences
from tools.common import pct
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import columns_of, protected_refusal, quote, resolve_params

__all__ = ["analyze_sentiment", "aspect_sentences", "frequent_phrases", "labels", "score_texts"]

ASPECTS_FILE = Path(__file__).resolve().parent / "data" / "aspects.yaml"
POOL_THRESHOLD = 1_000_000  # unique texts; below it a process pool costs more than it saves
CHUNK = vader.BATCH


class SentimentParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    table: str = "reviews"
    """Table holding the texts (reviews, or a loaded user table)."""
    text_column: str = "text"
    """Column with the text to score."""
    date_column: str | None = None
    """Date of each text, for the trend and spikes (default: review_date for reviews)."""
    id_column: str | None = None
    """Key of each text, saved with its score (default: review_id for reviews, else the row number)."""
    rating_column: str | None = None
    """Human rating to compare the scores with (Pearson r, 3-class weighted F1)."""
    rating_neutral: float = 0.0
    """Rating that counts as neutral when comparing (0 for −4..4 scales, 3 for 1–5 stars)."""
    start: date | None = None
    """First day (default: all data)."""
    end: date | None = None
    """Last day (default: all data)."""
    granularity: Literal["week", "month"] = "week"
    """Periods of the trend."""
    top_phrases: int = Field(10, ge=1, le=50)
    """How many frequent phrases of negative texts to return."""
    save: bool = True
    """Save each text's compound score and label to review_scores."""


class SentimentResult(ToolResult):
    pass


def _score_chunk(texts: list[str]) -> np.ndarray:
    return vader.polarity_scores(texts).compound


def score_texts(texts: list[str], workers: int | None = None, threshold: int = POOL_THRESHOLD) -> np.ndarray:
    """VADER compound scores of (already de-duplicated) texts: vaderSentiment's, computed by tools.analytics.vader
    over token arrays; across processes above threshold."""
    if len(texts) < max(threshold, 1) or (workers or os.cpu_count() or 1) < 2:
        return _score_chunk(texts)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    workers = workers or min(os.cpu_count() or 2, 8)
    size = max(1, min(CHUNK, -(-len(texts) // workers)))
    batches = [texts[i:i + size] for i in range(0, len(texts), size)]
    # fork: the children only run VADER (numpy and Arrow kernels), never DuckDB or ONNX, and start in milliseconds
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method)) as pool:
        return np.concatenate(list(pool.map(_score_chunk, batches)))


def labels(compound: np.ndarray) -> np.ndarray:
    """positive (≥ 0.05), negative (≤ −0.05), neutral otherwise: VADER's standard thresholds."""
    return np.where(compound >= 0.05, "positive", np.where(compound <= -0.05, "negative", "neutral"))


def _aspects() -> dict[str, re.Pattern]:
    raw = yaml.safe_load(ASPECTS_FILE.read_text(encoding="utf-8"))
    return {name: re.compile(r"\b(?:" + "|".join(pats) + ")", re.I) for name, pats in raw.items()}


def aspect_sentences(texts: list[str], known: dict[str, float] | None = None
                     ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(text index, aspect, compound of the sentence on its own) for every sentence that mentions an aspect, in
    the order of texts, sentences, aspects; `known` holds scores already computed (a one-sentence text is its
    own sentence). Splitting and matching run over all sentences at once (tools/analytics/sentiment_text.py)."""
    lex = _aspects()
    sentences, text_of = split_sentences(texts)
    hit, aspect = aspect_hits(sentences, list(lex.values()))
    keys = list(lex)
    names = [keys[a] for a in aspect.tolist()]
    sents = [sentences[i] for i in hit.tolist()]
    known = known or {}
    uniq = sorted(set(sents).difference(known))
    scores = {**known, **dict(zip(uniq, score_texts(uniq), strict=True))}
    return text_of[hit].astype(np.int64), names, np.array([scores[s] for s in sents], dtype=float)


def _resolved(con, p: SentimentParams) -> SentimentParams:
    """The table and columns as the user typed them (any case), spelled as in the warehouse; never a system table."""
    if why := protected_refusal(p.table, "read"):
        raise ToolError(f"{why} Sentiment runs on reviews or your own tables.")
    return resolve_params(con, p, columns=("text_column", "date_column", "id_column", "rating_column"))


def _source(con, p: SentimentParams) -> tuple[str, list, str | None]:
    cols = columns_of(con, p.table)
    is_reviews = p.table == "reviews"
    date_col = p.date_column or ("review_date" if is_reviews else None)
    id_col = p.id_column or ("review_id" if is_reviews else None)
    key = f"{quote(id_col)}::VARCHAR" if id_col else "(row_number() OVER ())::VARCHAR"
    day = f"TRY_CAST({quote(date_col)} AS DATE)" if date_col else "NULL::DATE"
    rating = f"TRY_CAST({quote(p.rating_column)} AS DOUBLE)" if p.rating_column else "NULL::DOUBLE"
    where, args = [f"{quote(p.text_column)} IS NOT NULL"], []
    if (p.start or p.end) and not date_col:
        raise ToolError(f"{p.table} has no date column to filter on; pass date_column (columns: {', '.join(cols)}).")
    if p.start:
        where.append(f"{day} >= ?")
        args.append(p.start)
    if p.end:
        where.append(f"{day} <= ?")
        args.append(p.end)
    sql = (f"SELECT {key} AS row_key, {quote(p.text_column)}::VARCHAR AS text, {day} AS day, {rating} AS rating "
           f"FROM {quote(p.table)} WHERE {' AND '.join(where)}")
    return sql, args, date_col


@register(example=SentimentParams(start=date(2026, 6, 1), end=date(2026, 9, 30)),
          key_metrics=("texts", "negative_share", "mean_compound"),
          concepts={"sentiment": ["sentiment", "mood", "feel", "feeling", "feelings", "happy", "unhappy", "angry",
                                  "satisfied", "dissatisfied", "opinion", "opinions", "perception"],
                    "reviews": ["review", "reviews", "ratings", "star rating", "stars", "feedback", "comments",
                                "posts", "mentions", "voice of the customer", "voc"],
                    "complaints": ["complain", "complaining", "complaint", "complaints", "grumble", "negative",
                                   "praise", "positive"]},
          synonyms={"top_phrases": ["phrases", "top phrases", "themes"],
                    "month": ["monthly", "per month", "each month", "by month"],
                    "week": ["weekly", "per week", "by week"]},
          requests=["What are customers saying about us?", "sentiment of reviews last quarter",
                    "Why did negative reviews spike in August?", "Which aspects do customers complain about most?",
                    "How is review sentiment trending month by month?", "Are delivery complaints going up?",
                    "What are the most common phrases in negative reviews?",
                    "Run sentiment analysis on the survey comments table",
                    "How do people feel about our prices and quality?", "voice of the customer report",
                    "what do buyers praise most in their reviews?", "are shoppers angrier than they were in spring?"])
def analyze_sentiment(con: duckdb.DuckDBPyConnection, p: SentimentParams) -> SentimentResult:
    """Score reviews or other customer texts with VADER: distribution, trend, aspects, negative themes and spikes."""
    p = _resolved(con, p)
    src, args, date_col = _source(con, p)
    uniq = con.execute(f"SELECT text, count(*) FROM ({src}) GROUP BY text ORDER BY text", args).fetchall()
    if not uniq:
        raise ToolError(f"No texts in {p.table}.{p.text_column} for this period.")
    texts = [u[0] for u in uniq]
    compound = score_texts(texts)
    a_idx, a_names, a_scores = aspect_sentences(texts, dict(zip(texts, compound, strict=True)))
    con.register("_sent_scores", pa.table({"text": texts, "compound": compound, "label": labels(compound)}))
    con.register("_sent_aspects", pa.table({"text": pa.array([texts[i] for i in a_idx], pa.string()),
                                            "aspect": pa.array(a_names, pa.string()), "compound": a_scores}))
    rows_sql = f"SELECT s.*, c.compound, c.label FROM ({src}) s JOIN _sent_scores c USING (text)"
    warnings: list[str] = []
    try:
        dist = dict(con.execute(f"SELECT label, count(*) FROM ({rows_sql}) GROUP BY 1", args).fetchall())
        n = sum(dist.values())
        mean = con.execute(f"SELECT avg(compound) FROM ({rows_sql})", args).fetchone()[0]
        metrics: dict = {"texts": n, "unique_texts": len(texts), "mean_compound": round(mean, 4),
                         "distribution": {k: dist.get(k, 0) for k in ("positive", "neutral", "negative")},
                         "negative_share": dist.get("negative", 0) / n}
        aspect_sql = (f"SELECT a.aspect, count(*) AS mentions, avg(a.compound) AS mean_compound, "
                      f"avg((a.compound <= -0.05)::INT) AS negative_share FROM ({src}) s "
                      f"JOIN _sent_aspects a USING (text)")
        metrics["aspects"] = _records(con, aspect_sql + " GROUP BY 1 ORDER BY mean_compound", args)
        phr = con.execute(f"SELECT text, count(*), any_value(label) = 'negative' FROM ({rows_sql}) GROUP BY 1",
                          args).fetchall()
        metrics["negative_phrases"] = frequent_phrases(*map(list, zip(*phr, strict=True)), p.top_phrases)
        if p.rating_column:
            metrics["agreement"] = _agreement(con, rows_sql, args, p.rating_neutral)
        trend, chart = [], None
        if date_col:
            trend = _trend(con, rows_sql, args, p.granularity)
            spikes = _spikes(con, rows_sql, args)
            for s in spikes:
                s["worst_aspect"] = next(iter(_records(con, aspect_sql + " WHERE date_trunc('week', s.day) = ? "
                                                       "GROUP BY 1 HAVING count(*) >= 5 ORDER BY mean_compound "
                                                       "LIMIT 1", [*args, s["week"]])), None)
            metrics["spikes"] = spikes
            chart = charts.line([{"period": str(r["period"]), "negative_share": round(r["negative_share"], 4),
                                  "texts": r["texts"]} for r in trend], "period", "negative_share",
                                f"Share of negative texts by {p.granularity}, {p.table}")
        else:
            warnings.append("No date column: no trend and no spike detection (pass date_column).")
        if p.save:
            metrics["run_id"] = _save(con, p, rows_sql, args, warnings)
    finally:
        con.execute("SELECT 1").fetchall()  # DuckDB 2: finish any half-fetched result before unregistering
        con.unregister("_sent_scores")
        con.unregister("_sent_aspects")
    return SentimentResult(summary=_summary(p, metrics), data=trend or metrics["aspects"], metrics=metrics,
                           chart=chart, warnings=warnings)


def _records(con, sql: str, args: list) -> list[dict]:
    cur = con.execute(sql, args)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _trend(con, rows_sql: str, args: list, granularity: str) -> list[dict]:
    return _records(con, f"""SELECT date_trunc('{granularity}', day)::DATE AS period, count(*) AS texts,
        avg(compound) AS mean_compound, count_if(label = 'positive') AS positive,
        count_if(label = 'neutral') AS neutral, count_if(label = 'negative') AS negative,
        count_if(label = 'negative') / count(*) AS negative_share
        FROM ({rows_sql}) WHERE day IS NOT NULL GROUP BY 1 ORDER BY 1""", args)


def _spikes(con, rows_sql: str, args: list) -> list[dict]:
    """Weeks whose negative share jumps ≥ 3 standard deviations and ≥ 10 points above the previous 8 weeks."""
    return _records(con, f"""WITH w AS (
          SELECT date_trunc('week', day)::DATE AS week, count(*) AS texts,
                 count_if(label = 'negative') / count(*) AS negative_share
          FROM ({rows_sql}) WHERE day IS NOT NULL GROUP BY 1),
        b AS (SELECT *, avg(negative_share) OVER prev AS baseline, stddev_samp(negative_share) OVER prev AS sd,
                     median(texts) OVER () AS typical, count(*) OVER prev AS history FROM w
              WINDOW prev AS (ORDER BY week ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING))
        SELECT week, texts, negative_share, baseline, (negative_share - baseline) / nullif(sd, 0) AS z
        FROM b WHERE history >= 4 AND texts >= greatest(10, typical / 2)
          AND negative_share - baseline >= greatest(0.10, 3 * coalesce(sd, 0)) ORDER BY week""", args)


def _agreement(con, rows_sql: str, args: list, neutral: float) -> dict:
    compound, rating = con.execute(f"SELECT compound, rating FROM ({rows_sql}) WHERE rating IS NOT NULL",
                                   args).fetchnumpy().values()
    compound, rating = np.asarray(compound, float), np.asarray(rating, float)
    if rating.size < 3:
        return {"n": int(rating.size)}
    truth = np.sign(rating - neutral)
    pred = np.where(compound >= 0.05, 1, np.where(compound <= -0.05, -1, 0))
    classes = np.array([-1, 0, 1])
    tp = np.array([np.sum((pred == c) & (truth == c)) for c in classes], dtype=float)
    precision = tp / np.maximum([np.sum(pred == c) for c in classes], 1)
    recall = tp / np.maximum([np.sum(truth == c) for c in classes], 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    support = np.array([np.sum(truth == c) for c in classes])  # weighted F1, as sklearn's average="weighted"
    return {"n": int(rating.size), "pearson_r": round(float(np.corrcoef(compound, rating)[0, 1]), 4),
            "weighted_f1": round(float(np.average(f1, weights=support)), 4),
            "accuracy": round(float(np.mean(pred == truth)), 4)}


def _save(con, p: SentimentParams, rows_sql: str, args: list, warnings: list[str]) -> str | None:
    """Write compound and label per text to review_scores under a run id derived from the parameters."""
    run_id = "sent-" + hashlib.sha1(p.model_dump_json(exclude={"save", "top_phrases"}).encode()).hexdigest()[:12]
    dupes = con.execute(f"SELECT count(*) - count(DISTINCT row_key) FROM ({rows_sql})", args).fetchone()[0]
    if dupes:
        warnings.append(f"{dupes} duplicate keys in {p.id_column or 'the id column'}: scores not saved.")
        return None
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM review_scores WHERE run_id = ? AND source_table = ?", [run_id, p.table])
        con.execute(f"INSERT INTO review_scores SELECT ?, ?, row_key, compound, label FROM ({rows_sql})",
                    [run_id, p.table, *args])
        con.execute("COMMIT")
    except duckdb.Error as exc:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        warnings.append(f"Scores not saved to review_scores ({str(exc).splitlines()[0]}).")
        return None
    return run_id


def _summary(p: SentimentParams, m: dict) -> str:
    d = m["distribution"]
    s = (f"{m['texts']:,} texts from {p.table}: {pct(d['positive'] / m['texts'])} positive, "
         f"{pct(d['neutral'] / m['texts'])} neutral, {pct(d['negative'] / m['texts'])} negative "
         f"(mean compound {m['mean_compound']:+.3f}).")
    if m["aspects"]:
        worst = m["aspects"][0]
        s += (f" Worst aspect: {worst['aspect']} (mean {worst['mean_compound']:+.3f}, "
              f"{pct(worst['negative_share'])} negative, {worst['mentions']:,} mentions).")
    for sp in m.get("spikes", [])[:3]:
        s += (f" Spike: week of {sp['week']}: {pct(sp['negative_share'])} negative vs {pct(sp['baseline'])} "
              f"baseline ({sp['texts']} texts)")
        s += f", worst aspect {sp['worst_aspect']['aspect']}." if sp.get("worst_aspect") else "."
    if m["negative_phrases"]:
        s += " Frequent in negative texts: " + ", ".join(f"\"{x['phrase']}\"" for x in m["negative_phrases"][:5]) + "."
    if "agreement" in m and "pearson_r" in m["agreement"]:
        a = m["agreement"]
        s += f" Agreement with {p.rating_column}: r {a['pearson_r']:.3f}, weighted F1 {a['weighted_f1']:.3f}."
    return s
