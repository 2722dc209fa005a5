"""score_leads: which open leads will close, how sure we are, why, and who should work them.

The model learns from leads closed (won or lost) by `as_of` and scores the leads still open at `as_of`.
Routing rules (each one a parameter):
  1. band by calibrated win probability: hot ≥ `hot_threshold`, warm ≥ `warm_threshold`, else cold;
  2. queue: hot leads from companies in `enterprise_sizes` → `enterprise_queue`; other hot leads →
     `hot_queue`; warm → `warm_queue`; cold → `cold_queue`.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.scoring import (
    RELIABLE_AUC,
    band,
    fingerprint,
    fit_best,
    importance,
    make_run_id,
    need,
    quality,
    reasons,
    resolve_as_of,
    save_run,
    table_matrix,
)
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register

FEATURES = ["source", "company_size", "industry", "seniority", "pages_viewed", "emails_opened", "demo_requested"]
MIN_CLOSED = 100


class LeadParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    """Learn from leads closed by this day and score those open on it (default: the last day with data)."""
    hot_threshold: float = Field(0.5, gt=0, lt=1)
    """Win probability from which a lead is hot."""
    warm_threshold: float = Field(0.25, gt=0, lt=1)
    """Win probability from which a lead is warm (below: cold)."""
    enterprise_sizes: list[str] = Field(default_factory=lambda: ["201-1000", "1000+"])
    """Company sizes whose hot leads go to the enterprise queue."""
    enterprise_queue: str = "enterprise_ae"
    """Queue for hot leads from enterprise-size companies."""
    hot_queue: str = "account_exec"
    """Queue for other hot leads."""
    warm_queue: str = "sdr"
    """Queue for warm leads (sales development follow-up)."""
    cold_queue: str = "nurture"
    """Queue for cold leads (marketing nurture)."""
    limit: int = Field(25, ge=1, le=200)
    """Rows returned: the open leads most likely to close."""
    seed: int = 0
    """Seed for folds and gradient boosting (same seed, same result)."""


class LeadResult(ToolResult):
    pass


@register(example=LeadParams(limit=10),
          key_metrics=("open_leads", "expected_pipeline_value", "win_rate", "top_decile_lift", "holdout_auc"),
          requests=["Which open leads are most likely to close?", "score our open leads",
                    "lead scoring: who should sales call first?", "route the open leads to the right sales queue",
                    "Which leads are hot right now?", "What makes a lead convert?",
                    "conversion propensity of the B2B pipeline", "prioritise the pipeline for the SDR team",
                    "How good is our lead scoring model?"])
def score_leads(con: duckdb.DuckDBPyConnection, p: LeadParams) -> LeadResult:
    """Score open leads' chance to close, with model quality, drivers and a routing queue per lead."""
    if p.warm_threshold >= p.hot_threshold:
        raise ToolError("warm_threshold must be below hot_threshold.")
    need(con, "leads", ["lead_id", "created_date", "status", "closed_date", "deal_value"] + FEATURES)
    last = con.execute("SELECT greatest(max(created_date), max(closed_date)) FROM leads").fetchall()[0][0]
    as_of = resolve_as_of(con, p.as_of, last, "the leads")
    ids, _, X, names, notes = table_matrix(con, "leads", "lead_id", None, FEATURES)
    meta = con.execute("""SELECT lead_id, created_date <= ? AS created, status,
            coalesce(closed_date, created_date) AS closed_on, coalesce(status IN ('won', 'lost')
              AND coalesce(closed_date, created_date) <= ?, false) AS closed, company_size, deal_value
        FROM leads ORDER BY lead_id""", [as_of, as_of]).fetchnumpy()
    closed = np.asarray(meta["closed"], dtype=bool) & np.asarray(meta["created"], dtype=bool)
    is_open = np.asarray(meta["created"], dtype=bool) & ~closed
    y_all = (np.asarray(meta["status"]).astype(str) == "won").astype(int)
    n_closed, n_won = int(closed.sum()), int(y_all[closed].sum())
    if n_closed < MIN_CLOSED or min(n_won, n_closed - n_won) < 20:
        raise ToolError(f"Too few closed leads to learn from by {as_of}: {n_closed} closed, {n_won} won (need "
                        f"{MIN_CLOSED} closed with at least 20 won and 20 lost).")
    if not is_open.any():
        raise ToolError(f"No leads are open on {as_of}; nothing to score.")
    # holdout: the most recently closed 20 % (a pipeline is judged on leads it has not seen yet)
    cl = np.flatnonzero(closed)
    cl = cl[np.lexsort((np.asarray(meta["lead_id"])[cl], np.asarray(meta["closed_on"])[cl]))]
    cut = int(0.8 * cl.size)
    train, hold_idx = cl[:cut], cl[cut:]
    fitted = fit_best(X[train], y_all[train], names, p.seed)
    hold = quality(y_all[hold_idx], fitted.predict(X[hold_idx]))
    cv_auc = fitted.cv[fitted.kind]["auc"]
    reliable = cv_auc >= RELIABLE_AUC and (hold["auc"] or 0) >= RELIABLE_AUC
    drivers = importance(fitted, X[hold_idx], y_all[hold_idx], p.seed)

    op = np.flatnonzero(is_open)
    prob = fitted.predict(X[op])
    bands = band(prob, p.hot_threshold, p.warm_threshold, ("hot", "warm", "cold"))
    size = np.asarray(meta["company_size"]).astype(str)[op]
    enterprise = np.isin(size, p.enterprise_sizes)
    queue = np.where(bands == "hot", np.where(enterprise, p.enterprise_queue, p.hot_queue),
                     np.where(bands == "warm", p.warm_queue, p.cold_queue)).astype(object)
    why = reasons(fitted, X[op], drivers, np.median(X, axis=0))
    won_values = np.asarray(meta["deal_value"], dtype=float)[closed & (y_all == 1)]
    avg_deal = float(np.nanmean(won_values)) if won_values.size else 0.0
    run_id = make_run_id("leads", p, as_of, fingerprint(ids[op], prob, queue))
    warnings = list(notes)
    note = save_run(con, "lead_scores", run_id, {"lead_id": ids[op].astype(np.int64), "probability": prob,
                                                 "band": bands, "queue": queue})
    if note:
        warnings.append(note)
    if not reliable:
        warnings.append(f"The model is not reliable (CV AUC {cv_auc:.2f}, holdout AUC {hold['auc'] or 0:.2f}; needs "
                        f"{RELIABLE_AUC} or more): do not route on these scores.")
    order = np.argsort(-prob, kind="stable")[: p.limit]
    rows = [{"lead_id": int(ids[op][i]), "probability": round(float(prob[i]), 4), "band": bands[i],
             "queue": queue[i], "company_size": str(size[i]), "expected_value": round(float(prob[i]) * avg_deal, 2),
             "top_reasons": why[i]} for i in order]
    queues = {q: int((queue == q).sum()) for q in dict.fromkeys([p.enterprise_queue, p.hot_queue, p.warm_queue,
                                                                 p.cold_queue])}
    counts = {b: int((bands == b).sum()) for b in ("hot", "warm", "cold")}
    pipeline = float(prob.sum() * avg_deal)
    metrics = {"run_id": run_id, "as_of": as_of, "model": fitted.kind, "cv_auc": cv_auc,
               "cv_auc_std": fitted.cv[fitted.kind]["auc_std"], "cv": fitted.cv, "holdout_auc": hold["auc"],
               "pr_auc": hold["pr_auc"], "brier": hold["brier"], "top_decile_lift": hold["top_decile_lift"],
               "calibration": hold["calibration"], "reliable": reliable, "closed_leads": n_closed,
               "win_rate": n_won / n_closed, "open_leads": int(op.size), "bands": counts, "queues": queues,
               "average_won_deal": avg_deal, "expected_pipeline_value": pipeline, "drivers": drivers[:10],
               "routing": {"hot_threshold": p.hot_threshold, "warm_threshold": p.warm_threshold,
                           "enterprise_sizes": p.enterprise_sizes}}
    routing = ", ".join(f"{q} {n}" for q, n in queues.items())
    model = (f"{fitted.kind.replace('_', ' ')} trained on {n_closed:,} closed leads (win rate {pct(n_won / n_closed)}), "
             f"CV AUC {cv_auc:.3f}, holdout AUC {hold['auc']:.3f} on the latest-closed 20 %")
    tally = (f"{counts['hot']} hot (≥ {pct(p.hot_threshold, 0)}), {counts['warm']} warm, {counts['cold']} cold; expected "
             f"pipeline value {money(pipeline)} (win probability × average won deal {money(avg_deal)})")
    if reliable:
        summary = (f"{op.size:,} open leads scored as of {as_of}: {tally}. Suggested queues: {routing}. Model: "
                   f"{model}; reliable enough to act on. Top drivers: "
                   + ", ".join(d["driver"] for d in drivers[:3]) + ".")
    else:
        summary = (f"The lead model is NOT better than chance by a clear margin ({model}; {RELIABLE_AUC} needed): "
                   f"do not prioritise or route on these scores. For reference only, {op.size:,} open leads as of "
                   f"{as_of}: {tally}.")
    chart = charts.bar([{"queue": q, "leads": n} for q, n in queues.items()], "queue", "leads",
                       "Open leads by suggested queue")
    return LeadResult(summary=summary, data=rows, metrics=metrics, chart=chart, warnings=warnings)
