"""score_churn: who is about to stop buying, how sure we are, and why.

Warehouse mode: churn = no order in the `horizon_days` after a cutoff. Behaviour features are computed in SQL
from data up to each cutoff only. The model is chosen and fitted on the snapshot at `as_of − horizon` (labels
observed up to `as_of`), checked out of time (a model from `as_of − 2 × horizon` predicting that snapshot), and
scores every customer active at `as_of`. Table mode trains on a labelled customer table a user loaded.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.scoring import (
    RELIABLE_AUC,
    band,
    fingerprint,
    fit_best,
    fit_split,
    importance,
    make_run_id,
    need,
    quality,
    reasons,
    resolve_as_of,
    sample_rows,
    save_run,
    table_matrix,
)
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register

MIN_CUSTOMERS = 200
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


def churn_features(con: duckdb.DuckDBPyConnection, cutoff: date, active_days: int) -> dict[str, np.ndarray]:
    """Features per customer active at `cutoff`, from data on or before `cutoff` only (SQL)."""
    c = f"DATE '{cutoff.isoformat()}'"
    end = f"TIMESTAMP '{(cutoff + timedelta(days=1)).isoformat()}'"
    return con.execute(f"""
        WITH o AS (SELECT customer_id, max(order_date) AS last_order, count(*) AS orders,
                     count(*) FILTER (WHERE order_date > {c} - 90) AS orders_90d,
                     count(*) FILTER (WHERE order_date > {c} - 365) AS orders_365d,
                     sum(revenue::DECIMAL(38, 6))::DOUBLE AS revenue,
                     coalesce(sum(revenue::DECIMAL(38, 6)) FILTER (WHERE order_date > {c} - 365), 0)
                       AS revenue_365d, avg((coalesce(discount, 0) > 0)::INT) AS discount_share
                   FROM orders WHERE order_date <= {c} GROUP BY customer_id
                   HAVING max(order_date) > {c} - {int(active_days)}),
        ev AS (SELECT customer_id,
                 count(*) FILTER (WHERE event_type IN ('page_view', 'app_session') AND event_time > {c} - 90)
                   AS sessions_90d,
                 max(event_time) FILTER (WHERE event_type IN ('page_view', 'app_session')) AS last_session,
                 count(*) FILTER (WHERE event_type = 'support_ticket' AND event_time > {c} - 180) AS tickets_180d,
                 count(*) FILTER (WHERE event_type = 'support_ticket') AS tickets
               FROM events WHERE event_time < {end} AND event_type IN ('page_view', 'app_session', 'support_ticket')
               GROUP BY customer_id),
        em AS (SELECT customer_id, count(*) FILTER (WHERE sent_at > {c} - 180) AS sends_180d,
                 count(*) FILTER (WHERE sent_at > {c} - 180 AND opened) AS opens_180d,
                 count(*) AS sends, count(*) FILTER (WHERE opened) AS opens,
                 bool_or(coalesce(unsubscribed, false)) AS unsub
               FROM email_sends WHERE sent_at < {end} GROUP BY customer_id),
        rate AS (SELECT coalesce(sum(opens) / nullif(sum(sends), 0), 0) AS m FROM em),
        rv AS (SELECT customer_id, count(*) AS negative FROM reviews
               WHERE review_date <= {c} AND rating <= 2 AND customer_id IS NOT NULL GROUP BY customer_id)
        SELECT o.customer_id, date_diff('day', o.last_order, {c}) AS recency_days,
          date_diff('day', cu.signup_date, {c}) AS tenure_days, o.orders, o.orders_90d, o.orders_365d,
          o.revenue / o.orders AS aov, o.revenue_365d, o.discount_share,
          coalesce(ev.sessions_90d, 0) AS sessions_90d,
          coalesce(date_diff('day', ev.last_session::DATE, {c}), date_diff('day', cu.signup_date, {c}))
            AS days_since_session,
          coalesce(ev.tickets_180d, 0) AS support_tickets_180d, coalesce(ev.tickets, 0) AS support_tickets,
          (coalesce(em.opens_180d, 0) + 2 * rate.m) / (coalesce(em.sends_180d, 0) + 2) AS email_open_rate_180d,
          (coalesce(em.opens, 0) + 2 * rate.m) / (coalesce(em.sends, 0) + 2) AS email_open_rate,
          (coalesce(em.opens_180d, 0) + 2 * rate.m) / (coalesce(em.sends_180d, 0) + 2)
            - (coalesce(em.opens, 0) + 2 * rate.m) / (coalesce(em.sends, 0) + 2) AS email_open_trend,
          coalesce(em.unsub, false)::INT AS unsubscribed, coalesce(rv.negative, 0) AS negative_reviews,
          coalesce(cu.loyalty_member, false)::INT AS loyalty_member
        FROM o JOIN customers cu ON cu.customer_id = o.customer_id AND cu.signup_date <= {c}
        LEFT JOIN ev ON ev.customer_id = o.customer_id LEFT JOIN em ON em.customer_id = o.customer_id
        LEFT JOIN rv ON rv.customer_id = o.customer_id CROSS JOIN rate
        ORDER BY o.customer_id""").fetchnumpy()


def churn_labels(con: duckdb.DuckDBPyConnection, ids: np.ndarray, cutoff: date, horizon: int) -> np.ndarray:
    """1 when the customer placed no order in (cutoff, cutoff + horizon], in the order of `ids`."""
    bought = con.execute("""SELECT DISTINCT customer_id FROM orders
        WHERE order_date > ? AND order_date <= ?""", [cutoff, cutoff + timedelta(days=horizon)]).fetchnumpy()
    return (~np.isin(ids, bought["customer_id"])).astype(int)


def _matrix(feats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = [k for k in feats if k != "customer_id"]
    X = np.column_stack([np.asarray(feats[k], dtype=float) for k in names])
    return np.asarray(feats["customer_id"]), np.nan_to_num(X), names


def _warehouse(con, p: ChurnParams):
    need(con, "orders", ["customer_id", "order_date", "revenue", "discount"])
    need(con, "customers", ["customer_id", "signup_date", "loyalty_member"])
    for t in ("events", "email_sends", "reviews"):
        need(con, t)
    as_of = resolve_as_of(con, p.as_of)
    h = timedelta(days=p.horizon_days)
    ids_s, X_s, names = _matrix(churn_features(con, as_of, p.active_days))
    ids_b, X_b, _ = _matrix(churn_features(con, as_of - h, p.active_days))
    ids_a, X_a, _ = _matrix(churn_features(con, as_of - 2 * h, p.active_days))
    if min(ids_a.size, ids_b.size, ids_s.size) < MIN_CUSTOMERS:
        raise ToolError(f"Too few active customers to fit a churn model: {ids_a.size:,} at {as_of - 2 * h}, "
                        f"{ids_b.size:,} at {as_of - h}, {ids_s.size:,} at {as_of} (need {MIN_CUSTOMERS}). "
                        "Use a later as_of, a shorter horizon_days or a longer active_days.")
    y_b = churn_labels(con, ids_b, as_of - h, p.horizon_days)
    y_a = churn_labels(con, ids_a, as_of - 2 * h, p.horizon_days)
    groups = [GROUPS.get(n, n) for n in names]
    fitted = fit_best(X_b, y_b, names, p.seed, groups)
    check = fit_split(fitted.kind, X_a, y_a, names, groups, p.seed)
    h_idx = sample_rows(y_b, HOLDOUT_CAP, p.seed)
    hold = quality(y_b[h_idx], check.predict(X_b[h_idx]))
    value = X_s[:, names.index("revenue_365d")]
    setup = {"as_of": as_of, "train_cutoff": as_of - h, "train_rows": int(ids_b.size),
             "holdout": f"customers active on {as_of - h}, predicted out of time by a model fitted at {as_of - 2 * h}",
             "churn_rate_train": float(y_b.mean())}
    return fitted, hold, (X_b[h_idx], y_b[h_idx]), ids_s, X_s, value, setup


def _table(con, p: ChurnParams):
    table = p.table
    need(con, table, [p.id_column, p.label_column] + list(p.feature_columns or []))
    ids, y, X, names, notes = table_matrix(con, table, p.id_column, p.label_column, p.feature_columns,
                                           positive=("yes", "true", "1", "churn", "churned", "y", "t"))
    if ids.size < MIN_CUSTOMERS:
        raise ToolError(f"Too few customers in {table} to fit a churn model: {ids.size} (need {MIN_CUSTOMERS}).")
    rng = np.random.default_rng(p.seed)
    hold_mask = np.zeros(ids.size, dtype=bool)
    for cls in (0, 1):  # stratified 20 % holdout
        idx = np.flatnonzero(y == cls)
        hold_mask[rng.choice(idx, round(0.2 * idx.size), replace=False)] = True
    fitted = fit_best(X[~hold_mask], y[~hold_mask], names, p.seed)
    hold = quality(y[hold_mask], fitted.predict(X[hold_mask]))
    setup = {"holdout": "a stratified random 20 % of the table", "train_rows": int((~hold_mask).sum()),
             "churn_rate_train": float(y[~hold_mask].mean()), "notes": notes}
    return fitted, hold, (X[hold_mask], y[hold_mask]), ids, X, None, setup


@register(example=ChurnParams(horizon_days=90, limit=10),
          key_metrics=("scored", "high_risk", "value_at_risk_high", "value_at_risk", "top_decile_lift", "holdout_auc"),
          requests=["Who is about to churn?", "Which customers are likely to churn next quarter?",
                    "score churn risk for all active customers", "Which high-value customers are at risk of leaving?",
                    "What drives churn?", "churn probability per customer as of June 30",
                    "Show me the customers most likely to stop buying", "how much revenue is at risk from churn?",
                    "Train a churn model on the telco table", "Is our churn model reliable?"])
def score_churn(con: duckdb.DuckDBPyConnection, p: ChurnParams) -> ChurnResult:
    """Score each customer's risk of churning within the horizon after `as_of`, with model quality and drivers."""
    if p.medium_risk >= p.high_risk:
        raise ToolError("medium_risk must be below high_risk.")
    warehouse = p.table is None
    fitted, hold, (X_h, y_h), ids, X, value, setup = _warehouse(con, p) if warehouse else _table(con, p)
    cv_auc = fitted.cv[fitted.kind]["auc"]
    reliable = cv_auc >= RELIABLE_AUC and (hold["auc"] or 0) >= RELIABLE_AUC
    drivers = importance(fitted, X_h, y_h, p.seed)
    prob = fitted.predict(X)
    bands = band(prob, p.high_risk, p.medium_risk, ("high", "medium", "low"))
    risky = np.argsort(-prob, kind="stable")[: min(int((bands != "low").sum()), REASONS_CAP)]
    why = np.full(ids.size, None, dtype=object)
    why[risky] = reasons(fitted, X[risky], drivers, np.median(X, axis=0))
    run_id = make_run_id("churn", p, setup.get("as_of"), fingerprint(ids, prob, why[risky]))
    warnings = []
    if not reliable:
        warnings.append(f"The model is not reliable (CV AUC {cv_auc:.2f}, holdout AUC {hold['auc'] or 0:.2f}; "
                        f"needs {RELIABLE_AUC} or more): do not act on these scores.")
    int_ids = np.issubdtype(np.asarray(ids).dtype, np.integer)
    if int_ids:
        note = save_run(con, "churn_scores", run_id, {"customer_id": ids.astype(np.int64), "probability": prob,
                                                      "risk_band": bands, "top_reasons": why})
    else:
        note = (f"churn_scores keys customers by integer id; the ids of {p.table} are text, so the scores were "
                "returned but not saved.")
    if note:
        warnings.append(note)
    at_risk = prob * value if value is not None else prob
    order = np.argsort(-at_risk, kind="stable")[: p.limit]
    rows = [{"customer_id": ids[i], "probability": round(float(prob[i]), 4), "risk_band": bands[i],
             **({"revenue_365d": round(float(value[i]), 2), "value_at_risk": round(float(at_risk[i]), 2)}
                if value is not None else {}), "top_reasons": why[i]} for i in order]
    n_high = int((bands == "high").sum())
    top_drivers = [d["driver"] for d in drivers[:3]]
    metrics = {"run_id": run_id, **setup, "model": fitted.kind, "cv_auc": cv_auc,
               "cv_auc_std": fitted.cv[fitted.kind]["auc_std"], "cv": fitted.cv, "holdout_auc": hold["auc"],
               "pr_auc": hold["pr_auc"], "brier": hold["brier"], "top_decile_lift": hold["top_decile_lift"],
               "calibration": hold["calibration"], "reliable": reliable, "scored": int(ids.size),
               "high_risk": n_high, "medium_risk": int((bands == "medium").sum()),
               "mean_probability": float(prob.mean()), "drivers": drivers[:10]}
    if value is not None:
        metrics["value_at_risk"] = float(at_risk.sum())
        metrics["value_at_risk_high"] = float(at_risk[bands == "high"].sum())
    where = f"as of {setup['as_of']}" if warehouse else f"in {p.table}"
    model = f"{fitted.kind.replace('_', ' ')}, CV AUC {cv_auc:.3f}, holdout AUC {hold['auc']:.3f} on {setup['holdout']}"
    counts = (f"{n_high:,} high risk (probability ≥ {pct(p.high_risk, 0)}), {metrics['medium_risk']:,} medium; mean "
              f"probability {pct(float(prob.mean()))}"
              + (f", value at risk {money(metrics['value_at_risk'])} (trailing-year revenue × probability)"
                 if value is not None else ""))
    if reliable:
        summary = (f"Churn risk for {ids.size:,} customers {where}: {counts}. Model: {model}, top-decile lift "
                   f"{hold['top_decile_lift']:.2f}; reliable enough to act on. Top drivers: {', '.join(top_drivers)}.")
    else:
        summary = (f"The churn model for {ids.size:,} customers {where} is NOT better than chance by a clear margin "
                   f"({model}; {RELIABLE_AUC} needed): do not act on these scores, and its drivers mean nothing "
                   f"either. For reference only: {counts}.")
    chart = charts.bar([{"driver": d["driver"], "importance": round(d["importance"], 4)} for d in drivers[:8]],
                       "driver", "importance", "What drives churn (drop in AUC when shuffled)")
    return ChurnResult(summary=summary, data=rows, metrics=metrics, chart=chart, warnings=warnings)

