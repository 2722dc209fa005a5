"""score_churn: who is about to stop buying, how sure we are, and why.

Warehouse mode: churn = no order in the `horizon_days` after a cutoff. Behaviour features are computed in SQL
from data up to each cutoff only (churn_data.py). The model is chosen and fitted on the snapshot at
`as_of − horizon` (labels observed up to `as_of`), checked out of time (a model from `as_of − 2 × horizon`
predicting that snapshot), and scores every customer active at `as_of`. Above SAMPLE_ABOVE active customers the two
earlier snapshots are computed for a seeded sample of customers only (drawn in the engine, sampling.py) and the
customers scored are streamed from the engine in batches (scoring.py). Table mode trains on a labelled customer
table a user loaded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.churn_data import (  # noqa: F401  (churn_features: the tests' entry point)
    Snapshot,
    active_counts,
    churn_features,
    churn_labels,
    features_sql,
    snapshot,
)
from tools.analytics.customers.classifier import (
    RELIABLE_AUC,
    Fitted,
    Quality,
    band,
    fit_best,
    fit_split,
    importance,
    is_reliable,
    model_metrics,
    quality,
    reasons,
    sample_rows,
)
from tools.analytics.customers.features import table_matrix
from tools.analytics.customers.runs import fingerprint, make_run_id, need, resolve_as_of, resolved, save_run
from tools.analytics.customers.sampling import fraction_for, sample_condition
from tools.analytics.customers.scoring import BATCH_ROWS, Streamed, score_stream
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register

MIN_CUSTOMERS = 200
SAMPLE_ABOVE = 500_000
"""Above this many customers active at `as_of`, the training and check snapshots are computed for a seeded sample
of customers only and the scored ones are streamed in batches; up to it, everything is computed in memory."""
FIT_SAMPLE = 200_000
"""Target size of that sample at the training cutoff (the holdout is measured on up to HOLDOUT_CAP of it)."""
REASONS_CAP = 50_000
"""Per-customer reasons are computed for at most this many of the riskiest customers (the others get none)."""
HOLDOUT_CAP = 200_000
"""The out-of-time check is measured on at most this many customers (a seeded, stratified sample)."""
GROUPS = {  # feature → driver (features that measure the same behaviour are judged together)
    "recency_days": "recency", "tenure_days": "tenure", "orders": "purchase frequency",
    "orders_90d": "purchase frequency", "orders_365d": "purchase frequency", "aov": "order value",
    "revenue_365d": "spend", "discount_share": "discount use",
    "sessions_90d": "web/app activity", "days_since_session": "web/app activity",
    "support_tickets_180d": "support tickets", "support_tickets": "support tickets",
    "email_open_rate_180d": "e-mail engagement", "email_open_rate": "e-mail engagement",
    "email_open_trend": "e-mail engagement", "unsubscribed": "e-mail engagement",
    "negative_reviews": "negative reviews", "loyalty_member": "loyalty membership"}


class ChurnParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    """Warehouse mode: score customers as of this day; only data up to it is used (default: last day with data)."""
    horizon_days: int = Field(90, ge=14, le=365)
    """Warehouse mode: churn = no order within this many days after a cutoff."""
    active_days: int = Field(365, ge=30, le=1095)
    """Warehouse mode: customers with an order in this many days before a cutoff are active (and scored)."""
    table: str | None = None
    """Table mode: a loaded, labelled customer table (one row per customer) instead of the warehouse."""
    id_column: str = "customer_id"
    """Table mode: the customer id column."""
    label_column: str = "churn"
    """Table mode: the churn label column (yes/no, true/false or 1/0)."""
    feature_columns: list[str] | None = None
    """Table mode: the columns to learn from (default: all other columns except free-text ids)."""
    high_risk: float = Field(0.5, gt=0, lt=1)
    """Probability from which a customer is high risk."""
    medium_risk: float = Field(0.25, gt=0, lt=1)
    """Probability from which a customer is medium risk."""
    limit: int = Field(25, ge=1, le=200)
    """Rows returned: the most at-risk customers (by value at risk in warehouse mode)."""
    seed: int = 0
    """Seed for folds, samples and gradient boosting (same seed, same result)."""


class ChurnResult(ToolResult):
    pass


@dataclass
class Trained:
    """A churn model, its out-of-sample check, and the customers it scores."""

    fitted: Fitted
    holdout: Quality
    holdout_X: np.ndarray
    """The rows the holdout quality was measured on (drivers are measured on them too)."""
    holdout_y: np.ndarray
    ids: np.ndarray
    """The customers to score, and their features (None when they were scored as they streamed: `streamed`)."""
    X: np.ndarray | None
    value: np.ndarray | None
    """Trailing-year revenue of each scored customer (warehouse mode; None in table mode)."""
    setup: dict
    """How the model was trained and checked, reported in the metrics."""
    streamed: Streamed | None = None


def _warehouse(con: duckdb.DuckDBPyConnection, params: ChurnParams) -> Trained:
    """Fit at `as_of − horizon` (labels observed by `as_of`), check out of time from `as_of − 2 × horizon`."""
    need(con, "orders", ["customer_id", "order_date", "revenue", "discount"])
    need(con, "customers", ["customer_id", "signup_date", "loyalty_member"])
    for table in ("events", "email_sends", "reviews"):
        need(con, table)
    as_of = resolve_as_of(con, params.as_of)
    horizon = timedelta(days=params.horizon_days)
    cutoffs = [as_of, as_of - horizon, as_of - 2 * horizon]
    counts = active_counts(con, cutoffs, params.active_days)
    if min(counts) < MIN_CUSTOMERS:
        raise ToolError(f"Too few active customers to fit a churn model: {counts[2]:,} at {cutoffs[2]}, "
                        f"{counts[1]:,} at {cutoffs[1]}, {counts[0]:,} at {as_of} (need "
                        f"{MIN_CUSTOMERS}). Use a later as_of, a shorter horizon_days or a longer active_days.")
    if counts[0] > SAMPLE_ABOVE:
        return _sampled(con, params, cutoffs, counts)
    scored = snapshot(con, as_of, params.active_days)
    train = snapshot(con, cutoffs[1], params.active_days)
    early = snapshot(con, cutoffs[2], params.active_days)
    trained = _fit(con, params, cutoffs, train, early)
    trained.ids, trained.X, trained.value = scored.ids, scored.X, scored.X[:, scored.names.index("revenue_365d")]
    trained.setup["train_population"] = int(train.ids.size)
    return trained


def _fit(con: duckdb.DuckDBPyConnection, params: ChurnParams, cutoffs: list[date], train: Snapshot,
         early: Snapshot) -> Trained:
    """The model on the training snapshot, its out-of-time check from the early one."""
    as_of, train_cutoff, early_cutoff = cutoffs
    y_train = churn_labels(con, train.ids, train_cutoff, params.horizon_days)
    y_early = churn_labels(con, early.ids, early_cutoff, params.horizon_days)
    names = train.names
    groups = [GROUPS.get(n, n) for n in names]
    fitted = fit_best(train.X, y_train, names, params.seed, groups)
    check = fit_split(fitted.kind, early.X, y_early, names, groups, params.seed)
    hold = sample_rows(y_train, HOLDOUT_CAP, params.seed)
    setup = {"as_of": as_of, "train_cutoff": train_cutoff, "train_rows": int(train.ids.size),
             "holdout": f"customers active on {train_cutoff}, predicted out of time by a model fitted at "
                        f"{early_cutoff}",
             "churn_rate_train": float(y_train.mean())}
    return Trained(fitted, quality(y_train[hold], check.predict(train.X[hold])), train.X[hold], y_train[hold],
                   np.empty(0, dtype=np.int64), None, None, setup)


def _sampled(con: duckdb.DuckDBPyConnection, params: ChurnParams, cutoffs: list[date], counts: list[int]) -> Trained:
    """Above SAMPLE_ABOVE: the training and check snapshots of a seeded sample of customers (a temporary table of
    their ids in the engine), every customer active at `as_of` scored as the engine streams them."""
    fraction = fraction_for(FIT_SAMPLE, counts[1])
    sample = f"_churn_sample_{uuid.uuid4().hex[:12]}"
    con.execute(f"CREATE TEMP TABLE {sample} AS SELECT customer_id FROM customers "
                f"WHERE {sample_condition('customer_id', params.seed, fraction)}")
    try:
        train = snapshot(con, cutoffs[1], params.active_days, sample)
        early = snapshot(con, cutoffs[2], params.active_days, sample)
        if min(train.ids.size, early.ids.size) < MIN_CUSTOMERS:
            raise ToolError(f"The seeded sample holds too few active customers ({train.ids.size:,} and "
                            f"{early.ids.size:,}; {MIN_CUSTOMERS} needed).")
        trained = _fit(con, params, cutoffs, train, early)
        reader = con.sql(features_sql(cutoffs[0], params.active_days, flag=sample)).to_arrow_reader(BATCH_ROWS)
        streamed = score_stream(reader, train.names, trained.fitted, "revenue_365d", params.medium_risk, REASONS_CAP)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {sample}")
    trained.ids, trained.value, trained.streamed = streamed.ids, streamed.value, streamed
    trained.setup.update(train_population=counts[1], sample={
        "seed": params.seed, "fraction": fraction, "train_customers": int(train.ids.size),
        "train_population": counts[1], "check_customers": int(early.ids.size), "check_population": counts[2]})
    return trained


def _table(con: duckdb.DuckDBPyConnection, params: ChurnParams) -> Trained:
    """Fit on a stratified random 80 % of a labelled table, check on the other 20 %, score every row."""
    table = params.table
    need(con, table, [params.id_column, params.label_column] + list(params.feature_columns or []))
    matrix = table_matrix(con, table, params.id_column, params.label_column, params.feature_columns,
                          positive=("yes", "true", "1", "churn", "churned", "y", "t"))
    ids, y, X = matrix.ids, matrix.labels, matrix.X
    if ids.size < MIN_CUSTOMERS:
        raise ToolError(f"Too few customers in {table} to fit a churn model: {ids.size} (need {MIN_CUSTOMERS}).")
    rng = np.random.default_rng(params.seed)
    hold = np.zeros(ids.size, dtype=bool)
    for cls in (0, 1):  # stratified 20 % holdout
        idx = np.flatnonzero(y == cls)
        hold[rng.choice(idx, round(0.2 * idx.size), replace=False)] = True
    fitted = fit_best(X[~hold], y[~hold], matrix.names, params.seed)
    setup = {"holdout": "a stratified random 20 % of the table", "train_rows": int((~hold).sum()),
             "train_population": int((~hold).sum()), "churn_rate_train": float(y[~hold].mean()),
             "notes": matrix.notes}
    return Trained(fitted, quality(y[hold], fitted.predict(X[hold])), X[hold], y[hold], ids, X, None, setup)


@dataclass
class Scores:
    """Every scored customer's probability, band, reasons and value at risk, and what the model rests on."""

    run_id: str
    prob: np.ndarray
    bands: np.ndarray
    why: np.ndarray
    """Top reasons (None outside the REASONS_CAP riskiest non-low customers)."""
    at_risk: np.ndarray
    """Probability × trailing-year revenue (warehouse mode), else the probability."""
    drivers: list[dict]
    reliable: bool


def _score(trained: Trained, params: ChurnParams) -> Scores:
    fitted, ids, X, streamed = trained.fitted, trained.ids, trained.X, trained.streamed
    drivers = importance(fitted, trained.holdout_X, trained.holdout_y, params.seed)
    prob = fitted.predict(X) if streamed is None else streamed.prob
    bands = band(prob, params.high_risk, params.medium_risk, ("high", "medium", "low"))
    risky = np.argsort(-prob, kind="stable")[: min(int((bands != "low").sum()), REASONS_CAP)]
    why = np.full(ids.size, None, dtype=object)
    if streamed is None:
        why[risky] = reasons(fitted, X[risky], drivers, np.median(X, axis=0))
    else:  # the stream kept the features of the same rows, in the same order
        why[risky] = reasons(fitted, streamed.top_X[: risky.size], drivers, streamed.typical)
    run_id = make_run_id("churn", params, trained.setup.get("as_of"), fingerprint(ids, prob, why[risky]))
    at_risk = prob * trained.value if trained.value is not None else prob
    return Scores(run_id, prob, bands, why, at_risk, drivers, is_reliable(fitted, trained.holdout))


def _save(con: duckdb.DuckDBPyConnection, params: ChurnParams, trained: Trained, scores: Scores) -> str | None:
    """Save the scores to churn_scores; a warning when they cannot be saved."""
    if not np.issubdtype(np.asarray(trained.ids).dtype, np.integer):
        return (f"churn_scores keys customers by integer id; the ids of {params.table} are text, so the scores were "
                "returned but not saved.")
    return save_run(con, "churn_scores", scores.run_id, {
        "customer_id": trained.ids.astype(np.int64), "probability": scores.prob, "risk_band": scores.bands,
        "top_reasons": scores.why})


def _rows(trained: Trained, scores: Scores, limit: int) -> list[dict]:
    """The `limit` customers with the most at risk (value at risk in warehouse mode, else probability)."""
    ids, value, prob = trained.ids, trained.value, scores.prob
    return [{"customer_id": ids[i], "probability": round(float(prob[i]), 4), "risk_band": scores.bands[i],
             **({"revenue_365d": round(float(value[i]), 2), "value_at_risk": round(float(scores.at_risk[i]), 2)}
                if value is not None else {}), "top_reasons": scores.why[i]}
            for i in np.argsort(-scores.at_risk, kind="stable")[:limit]]


def _metrics(trained: Trained, scores: Scores) -> dict:
    bands = scores.bands
    metrics = {"run_id": scores.run_id, **trained.setup, **model_metrics(trained.fitted, trained.holdout),
               "scored": int(trained.ids.size), "high_risk": int((bands == "high").sum()),
               "medium_risk": int((bands == "medium").sum()), "mean_probability": float(scores.prob.mean()),
               "drivers": scores.drivers[:10]}
    if trained.value is not None:
        metrics["value_at_risk"] = float(scores.at_risk.sum())
        metrics["value_at_risk_high"] = float(scores.at_risk[bands == "high"].sum())
    return metrics


def _summary(params: ChurnParams, trained: Trained, scores: Scores, metrics: dict) -> str:
    hold, fitted, setup, n = trained.holdout, trained.fitted, trained.setup, trained.ids.size
    where = f"as of {setup['as_of']}" if params.table is None else f"in {params.table}"
    population = setup["train_population"]
    what = f"customers active on {setup['train_cutoff']}" if params.table is None else "training rows"
    trained_on = (f"all {fitted.rows:,} {what}" if fitted.rows >= population else
                  f"a seeded sample of {fitted.rows:,} of the {population:,} {what}"
                  + (f" (drawn from {setup['sample']['train_customers']:,} sampled in the engine)"
                     if "sample" in setup else ""))
    held = f"{trained.holdout_y.size:,} " if params.table is None else ""
    model = (f"{fitted.kind.replace('_', ' ')} trained on {trained_on}, CV AUC {metrics['cv_auc']:.3f}, holdout AUC "
             f"{hold.auc:.3f} on {held}{setup['holdout']}")
    counts = (f"{metrics['high_risk']:,} high risk (probability ≥ {pct(params.high_risk, 0)}), "
              f"{metrics['medium_risk']:,} medium; mean probability {pct(float(scores.prob.mean()))}"
              + (f", value at risk {money(metrics['value_at_risk'])} (trailing-year revenue × probability)"
                 if trained.value is not None else ""))
    if scores.reliable:
        top_drivers = [d["driver"] for d in scores.drivers[:3]]
        return (f"Churn risk for {n:,} customers {where}: {counts}. Model: {model}, top-decile lift "
                f"{hold.top_decile_lift:.2f}; reliable enough to act on. Top drivers: {', '.join(top_drivers)}.")
    return (f"The churn model for {n:,} customers {where} is NOT better than chance by a clear margin "
            f"({model}; {RELIABLE_AUC} needed): do not act on these scores, and its drivers mean nothing "
            f"either. For reference only: {counts}.")


@register(example=ChurnParams(horizon_days=90, limit=10),
          key_metrics=("scored", "high_risk", "value_at_risk_high", "value_at_risk", "top_decile_lift", "holdout_auc"),
          concepts={"churn": ["churn", "churning", "churned", "churners", "attrition", "attrite", "defect",
                              "defection", "lapse", "lapsing", "stop buying", "stop ordering", "leave", "leaving",
                              "lose", "losing", "walk away", "at risk", "at-risk", "retention risk", "go quiet",
                              "gone quiet", "drift away"],
                    "churn_model": ["churn model", "auc", "drivers", "features matter", "value at risk"]},
          synonyms={"limit": ["top", "most"]},
          requests=["Who is about to churn?", "Which customers are likely to churn next quarter?",
                    "score churn risk for all active customers", "Which high-value customers are at risk of leaving?",
                    "What drives churn?", "churn probability per customer as of June 30",
                    "Show me the customers most likely to stop buying", "how much revenue is at risk from churn?",
                    "Train a churn model on the telco table", "Is our churn model reliable?",
                    "flag buyers whose ordering has gone quiet and may not come back"])
def score_churn(con: duckdb.DuckDBPyConnection, params: ChurnParams) -> ChurnResult:
    """Score each customer's risk of churning within the horizon after `as_of`, with model quality and drivers."""
    if params.medium_risk >= params.high_risk:
        raise ToolError("medium_risk must be below high_risk.")
    if params.table is not None:  # the table and columns as the user typed them (Telco's `customerID`)
        params = resolved(con, params, columns=("id_column", "label_column", "feature_columns"))
    trained = _warehouse(con, params) if params.table is None else _table(con, params)
    scores = _score(trained, params)
    warnings = []
    if not scores.reliable:
        cv_auc = trained.fitted.cv[trained.fitted.kind]["auc"]
        warnings.append(f"The model is not reliable (CV AUC {cv_auc:.2f}, holdout AUC {trained.holdout.auc or 0:.2f}; "
                        f"needs {RELIABLE_AUC} or more): do not act on these scores.")
    note = _save(con, params, trained, scores)
    if note:
        warnings.append(note)
    metrics = _metrics(trained, scores)
    chart = charts.bar([{"driver": d["driver"], "importance": round(d["importance"], 4)} for d in scores.drivers[:8]],
                       "driver", "importance", "What drives churn (drop in AUC when shuffled)")
    return ChurnResult(summary=_summary(params, trained, scores, metrics), data=_rows(trained, scores, params.limit),
                       metrics=metrics, chart=chart, warnings=warnings)
