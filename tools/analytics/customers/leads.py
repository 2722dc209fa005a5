"""score_leads: which open leads will close, how sure we are, why, and who should work them.

The model learns from leads closed (won or lost) by `as_of` and scores the leads still open at `as_of`.
Routing rules (each one a parameter):
  1. band by calibrated win probability: hot ≥ `hot_threshold`, warm ≥ `warm_threshold`, else cold;
  2. queue: hot leads from companies in `enterprise_sizes` → `enterprise_queue`; other hot leads →
     `hot_queue`; warm → `warm_queue`; cold → `cold_queue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.classifier import (
    RELIABLE_AUC,
    Fitted,
    Quality,
    band,
    fit_best,
    importance,
    model_metrics,
    quality,
    reasons,
)
from tools.analytics.customers.features import table_matrix
from tools.analytics.customers.runs import fingerprint, make_run_id, need, resolve_as_of, save_run
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


@dataclass
class Pipeline:
    """Every lead's state on `as_of`, in lead_id order (the order of the feature matrix)."""

    lead_id: np.ndarray
    closed: np.ndarray
    """Created and won or lost by `as_of`: the leads the model learns from."""
    open: np.ndarray
    """Created by `as_of` and not closed by then: the leads scored."""
    won: np.ndarray
    """1 where the lead was won, else 0 (read only where closed)."""
    closed_on: np.ndarray
    company_size: np.ndarray
    deal_value: np.ndarray


def pipeline(con: duckdb.DuckDBPyConnection, as_of: date) -> Pipeline:
    """Each lead's state on `as_of` (SQL)."""
    leads = con.execute("""SELECT lead_id, created_date <= ? AS created, status,
            coalesce(closed_date, created_date) AS closed_on, coalesce(status IN ('won', 'lost')
              AND coalesce(closed_date, created_date) <= ?, false) AS closed, company_size, deal_value
        FROM leads ORDER BY lead_id""", [as_of, as_of]).fetchnumpy()
    created = np.asarray(leads["created"], dtype=bool)
    closed = np.asarray(leads["closed"], dtype=bool) & created
    return Pipeline(lead_id=np.asarray(leads["lead_id"]), closed=closed, open=created & ~closed,
                    won=(np.asarray(leads["status"]).astype(str) == "won").astype(int),
                    closed_on=np.asarray(leads["closed_on"]),
                    company_size=np.asarray(leads["company_size"]).astype(str),
                    deal_value=np.asarray(leads["deal_value"], dtype=float))


def _check(leads: Pipeline, as_of: date) -> None:
    n_closed, n_won = int(leads.closed.sum()), int(leads.won[leads.closed].sum())
    if n_closed < MIN_CLOSED or min(n_won, n_closed - n_won) < 20:
        raise ToolError(f"Too few closed leads to learn from by {as_of}: {n_closed} closed, {n_won} won (need "
                        f"{MIN_CLOSED} closed with at least 20 won and 20 lost).")
    if not leads.open.any():
        raise ToolError(f"No leads are open on {as_of}; nothing to score.")


def _split(leads: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """Train on the first 80 % of closed leads; hold out the most recently closed 20 % (a pipeline is judged on
    leads it has not seen yet)."""
    closed = np.flatnonzero(leads.closed)
    closed = closed[np.lexsort((leads.lead_id[closed], leads.closed_on[closed]))]
    cut = int(0.8 * closed.size)
    return closed[:cut], closed[cut:]


@dataclass
class Routed:
    """The open leads (positions in the pipeline) with their win probability, band, queue and reasons."""

    idx: np.ndarray
    prob: np.ndarray
    bands: np.ndarray
    queue: np.ndarray
    why: np.ndarray


def _route(params: LeadParams, fitted: Fitted, X: np.ndarray, leads: Pipeline, drivers: list[dict]) -> Routed:
    """Score the open leads and apply the routing rules of the module docstring."""
    idx = np.flatnonzero(leads.open)
    prob = fitted.predict(X[idx])
    bands = band(prob, params.hot_threshold, params.warm_threshold, ("hot", "warm", "cold"))
    enterprise = np.isin(leads.company_size[idx], params.enterprise_sizes)
    queue = np.where(bands == "hot", np.where(enterprise, params.enterprise_queue, params.hot_queue),
                     np.where(bands == "warm", params.warm_queue, params.cold_queue)).astype(object)
    return Routed(idx, prob, bands, queue, reasons(fitted, X[idx], drivers, np.median(X, axis=0)))


def _average_won_deal(leads: Pipeline) -> float:
    won_values = leads.deal_value[leads.closed & (leads.won == 1)]
    return float(np.nanmean(won_values)) if won_values.size else 0.0


def _rows(ids: np.ndarray, leads: Pipeline, routed: Routed, limit: int) -> list[dict]:
    """The `limit` open leads most likely to close (`ids`: the feature matrix's lead ids)."""
    ids, size, avg_deal = ids[routed.idx], leads.company_size[routed.idx], _average_won_deal(leads)
    prob = routed.prob
    return [{"lead_id": int(ids[i]), "probability": round(float(prob[i]), 4), "band": routed.bands[i],
             "queue": routed.queue[i], "company_size": str(size[i]),
             "expected_value": round(float(prob[i]) * avg_deal, 2), "top_reasons": routed.why[i]}
            for i in np.argsort(-prob, kind="stable")[:limit]]


def _metrics(params: LeadParams, as_of: date, run_id: str, fitted: Fitted, holdout: Quality, drivers: list[dict],
             leads: Pipeline, routed: Routed) -> dict:
    n_closed, n_won = int(leads.closed.sum()), int(leads.won[leads.closed].sum())
    avg_deal = _average_won_deal(leads)
    queues = dict.fromkeys([params.enterprise_queue, params.hot_queue, params.warm_queue, params.cold_queue])
    return {"run_id": run_id, "as_of": as_of, **model_metrics(fitted, holdout), "closed_leads": n_closed,
            "win_rate": n_won / n_closed, "open_leads": int(routed.idx.size),
            "bands": {b: int((routed.bands == b).sum()) for b in ("hot", "warm", "cold")},
            "queues": {queue: int((routed.queue == queue).sum()) for queue in queues},
            "average_won_deal": avg_deal, "expected_pipeline_value": float(routed.prob.sum() * avg_deal),
            "drivers": drivers[:10], "routing": {"hot_threshold": params.hot_threshold,
                                                 "warm_threshold": params.warm_threshold,
                                                 "enterprise_sizes": params.enterprise_sizes}}


def _summary(metrics: dict) -> str:
    counts, routing, as_of, n_open = metrics["bands"], metrics["routing"], metrics["as_of"], metrics["open_leads"]
    queues = ", ".join(f"{queue} {n}" for queue, n in metrics["queues"].items())
    model = (f"{metrics['model'].replace('_', ' ')} trained on {metrics['closed_leads']:,} closed leads (win rate "
             f"{pct(metrics['win_rate'])}), CV AUC {metrics['cv_auc']:.3f}, holdout AUC {metrics['holdout_auc']:.3f} "
             "on the latest-closed 20 %")
    tally = (f"{counts['hot']} hot (≥ {pct(routing['hot_threshold'], 0)}), {counts['warm']} warm, {counts['cold']} "
             f"cold; expected pipeline value {money(metrics['expected_pipeline_value'])} (win probability × average "
             f"won deal {money(metrics['average_won_deal'])})")
    if metrics["reliable"]:
        return (f"{n_open:,} open leads scored as of {as_of}: {tally}. Suggested queues: {queues}. Model: "
                f"{model}; reliable enough to act on. Top drivers: "
                + ", ".join(d["driver"] for d in metrics["drivers"][:3]) + ".")
    return (f"The lead model is NOT better than chance by a clear margin ({model}; {RELIABLE_AUC} needed): "
            f"do not prioritise or route on these scores. For reference only, {n_open:,} open leads as of "
            f"{as_of}: {tally}.")


@register(example=LeadParams(limit=10),
          key_metrics=("open_leads", "expected_pipeline_value", "win_rate", "top_decile_lift", "holdout_auc"),
          concepts={"leads": ["lead", "leads", "pipeline", "prospect", "prospects", "mql", "mqls", "sql leads",
                              "deal", "deals", "opportunities", "opportunity"],
                    "scoring": ["lead score", "lead scoring", "likely to close", "likely to convert",
                                "win probability", "close rate", "hot", "warm", "cold", "route", "routing", "queue",
                                "sdr", "sales team", "account executive", "call first", "follow up first"]},
          synonyms={"hot_threshold": ["hot"],
                    "warm_threshold": ["warm"]},
          requests=["Which open leads are most likely to close?", "score our open leads",
                    "lead scoring: who should sales call first?", "route the open leads to the right sales queue",
                    "Which leads are hot right now?", "What makes a lead convert?",
                    "conversion propensity of the B2B pipeline", "prioritise the pipeline for the SDR team",
                    "How good is our lead scoring model?",
                    "which prospects deserve a call from an account executive this week?",
                    "rank the B2B opportunities by chance of signing"])
def score_leads(con: duckdb.DuckDBPyConnection, params: LeadParams) -> LeadResult:
    """Score open leads' chance to close, with model quality, drivers and a routing queue per lead."""
    if params.warm_threshold >= params.hot_threshold:
        raise ToolError("warm_threshold must be below hot_threshold.")
    need(con, "leads", ["lead_id", "created_date", "status", "closed_date", "deal_value"] + FEATURES)
    last = con.execute("SELECT greatest(max(created_date), max(closed_date)) FROM leads").fetchall()[0][0]
    as_of = resolve_as_of(con, params.as_of, last, "the leads")
    matrix = table_matrix(con, "leads", "lead_id", None, FEATURES)
    leads = pipeline(con, as_of)
    _check(leads, as_of)
    train, hold = _split(leads)
    fitted = fit_best(matrix.X[train], leads.won[train], matrix.names, params.seed)
    holdout = quality(leads.won[hold], fitted.predict(matrix.X[hold]))
    drivers = importance(fitted, matrix.X[hold], leads.won[hold], params.seed)
    routed = _route(params, fitted, matrix.X, leads, drivers)
    run_id = make_run_id("leads", params, as_of, fingerprint(matrix.ids[routed.idx], routed.prob, routed.queue))
    metrics = _metrics(params, as_of, run_id, fitted, holdout, drivers, leads, routed)
    warnings = list(matrix.notes)
    note = save_run(con, "lead_scores", run_id, {
        "lead_id": matrix.ids[routed.idx].astype(np.int64), "probability": routed.prob, "band": routed.bands,
        "queue": routed.queue})
    if note:
        warnings.append(note)
    if not metrics["reliable"]:
        warnings.append(f"The model is not reliable (CV AUC {metrics['cv_auc']:.2f}, holdout AUC "
                        f"{holdout.auc or 0:.2f}; needs {RELIABLE_AUC} or more): do not route on these scores.")
    chart = charts.bar([{"queue": queue, "leads": n} for queue, n in metrics["queues"].items()], "queue", "leads",
                       "Open leads by suggested queue")
    return LeadResult(summary=_summary(metrics), data=_rows(matrix.ids, leads, routed, params.limit), metrics=metrics,
                      chart=chart, warnings=warnings)
