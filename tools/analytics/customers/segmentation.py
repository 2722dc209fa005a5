"""segment_customers: RFM segments or behavioural clusters, each profiled and named by what sets it apart.

RFM scores (SQL, orders up to `as_of`): each of recency (days since the last order; fewer is better), frequency
(orders) and monetary (revenue) is scored 1..5 as 1 + floor(5 × (number of customers with a worse value) / n),
so ties share a score. FM = ceil((F + M) / 2); the named segment is read from the (R, FM) grid in `RFM_GRID`.
Behavioural: features from orders, events and e-mail computed in SQL (shares smoothed towards the population
rate, so a customer with one order is not 0 % or 100 %), log-scaled where skewed and standardised. k is chosen
by the silhouette of k-means (3..8) on seeded samples; the final segments come from a Gaussian mixture with
per-segment spreads started from that k-means solution (or from k-means itself). Each segment is named from
the features on which it differs most from the average customer.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.scoring import (
    fingerprint,
    make_run_id,
    need,
    resolve_as_of,
    save_run,
    single_thread,
)
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register

MIN_CUSTOMERS = 100
FIT_SAMPLE = 40_000
SILHOUETTE_SAMPLE = 4_000
RFM_GRID = {  # R score: segment names for FM = 1, 2, 3, 4, 5
    5: ("New", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"),
    4: ("Promising", "Potential Loyalists", "Potential Loyalists", "Loyal", "Champions"),
    3: ("About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"),
    1: ("Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them")}
CLUSTER_ON = ("recency_days", "tenure_days", "orders_per_active_year", "revenue", "avg_order_value", "discount_share",
              "big_ticket_share", "sessions_per_month")
"""Features that define behavioural segments. E-mail open rate and app share are profiled (and can name a
segment) but do not define one: with a few sends or sessions per customer they are too noisy to cluster on."""
FEATURES = {  # feature: (description, log scale, word when high, word when low); words ending in "s" are nouns
    "recency_days": ("days since the last order", True, "Lapsed", "Active"),
    "tenure_days": ("days since sign-up", True, "Long-standing", "New"),
    "orders_per_active_year": ("orders per year while active", True, "Frequent", "Occasional"),
    "revenue": ("revenue to date", True, "high spenders", "low spenders"),
    "avg_order_value": ("average order value", True, "big-ticket buyers", "small-basket buyers"),
    "discount_share": ("share of orders with a discount", False, "bargain hunters", "Full-price"),
    "big_ticket_share": ("share of orders in electronics or home", False, "electronics & home shoppers", None),
    "sessions_per_month": ("web/app sessions per active month", True, "browsers", None),
    "app_share": ("share of sessions in the app", False, "App-first", "Web-first"),
    "email_open_rate": ("e-mail open rate", False, "E-mail-engaged", "E-mail-quiet"),
}


class SegmentParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    method: Literal["rfm", "behavioral"] = "rfm"
    """rfm: quintile scores and the standard named RFM segments; behavioral: clusters of behaviour features."""
    as_of: date | None = None
    """Only data up to this day is used (default: the last day with data)."""
    k: int | None = Field(None, ge=2, le=12)
    """Behavioural: number of segments (default: chosen by silhouette among 3..8)."""
    algorithm: Literal["gmm", "kmeans"] = "gmm"
    """Behavioural: gmm = a Gaussian mixture with per-segment spreads started from the k-means solution (default;
    segments of different tightness are recovered better), or plain k-means."""
    seed: int = 0
    """Seed for samples and clustering (same seed, same segments)."""


class SegmentResult(ToolResult):
    pass


def rfm_sql(as_of: date) -> str:
    """Per customer with an order up to `as_of`: recency, frequency, monetary, R/F/M/FM scores and segment."""
    c = f"DATE '{as_of.isoformat()}'"
    score = "1 + floor(5.0 * (rank() OVER (ORDER BY {0}) - 1) / count(*) OVER ())::INT"
    cells = " ".join(f"WHEN r = {r} AND fm = {fm} THEN '{name.replace(chr(39), chr(39) * 2)}'"
                     for r, names in RFM_GRID.items() for fm, name in enumerate(names, start=1))
    return f"""
        WITH base AS (SELECT customer_id, date_diff('day', max(order_date), {c}) AS recency_days,
                        count(*) AS frequency, sum(revenue::DECIMAL(38, 6))::DOUBLE AS monetary
                      FROM orders WHERE order_date <= {c} GROUP BY customer_id),
        scored AS (SELECT *, {score.format('recency_days DESC')} AS r, {score.format('frequency')} AS f,
                     {score.format('monetary')} AS m FROM base),
        fm AS (SELECT *, ceil((f + m) / 2.0)::INT AS fm FROM scored)
        SELECT *, CASE {cells} END AS segment FROM fm"""


def behaviour_features(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, np.ndarray]:
    """Behaviour per customer with an order up to `as_of` (SQL; data after `as_of` is never read)."""
    c = f"DATE '{as_of.isoformat()}'"
    end = f"TIMESTAMP '{(as_of + timedelta(days=1)).isoformat()}'"
    return con.execute(f"""
        WITH o AS (SELECT customer_id, max(order_date) AS last_order, count(*) AS n,
                     sum(revenue::DECIMAL(38, 6))::DOUBLE AS revenue,
                     count(*) FILTER (WHERE coalesce(discount, 0) > 0) AS n_disc,
                     count(*) FILTER (WHERE category IN ('electronics', 'home')) AS n_big
                   FROM orders WHERE order_date <= {c} GROUP BY customer_id),
        ev AS (SELECT customer_id, count(*) AS sessions, count(*) FILTER (WHERE event_type = 'app_session') AS app,
                 max(event_time)::DATE AS last_seen
               FROM events WHERE event_time < {end} AND event_type IN ('page_view', 'app_session')
               GROUP BY customer_id),
        em AS (SELECT customer_id, count(*) AS sends, count(*) FILTER (WHERE opened) AS opens
               FROM email_sends WHERE sent_at < {end} GROUP BY customer_id),
        g AS (SELECT sum(n_disc) / sum(n) AS disc, sum(n_big) / sum(n) AS big FROM o),
        r AS (SELECT coalesce(sum(opens) / nullif(sum(sends), 0), 0) AS open_rate FROM em)
        SELECT o.customer_id, date_diff('day', o.last_order, {c}) AS recency_days,
          date_diff('day', cu.signup_date, {c}) AS tenure_days,
          365.0 * o.n / (date_diff('day', cu.signup_date, greatest(o.last_order, coalesce(ev.last_seen, o.last_order)))
                         + 30) AS orders_per_active_year,
          o.revenue, o.revenue / o.n AS avg_order_value,
          (o.n_disc + 2 * g.disc) / (o.n + 2) AS discount_share, (o.n_big + 2 * g.big) / (o.n + 2) AS big_ticket_share,
          30.0 * coalesce(ev.sessions, 0) / (date_diff('day', cu.signup_date,
                 greatest(o.last_order, coalesce(ev.last_seen, o.last_order))) + 30) AS sessions_per_month,
          (coalesce(ev.app, 0) + 1.0) / (coalesce(ev.sessions, 0) + 2) AS app_share,
          (coalesce(em.opens, 0) + 2 * r.open_rate) / (coalesce(em.sends, 0) + 2) AS email_open_rate
        FROM o JOIN customers cu ON cu.customer_id = o.customer_id
        LEFT JOIN ev ON ev.customer_id = o.customer_id LEFT JOIN em ON em.customer_id = o.customer_id
        CROSS JOIN g CROSS JOIN r ORDER BY o.customer_id""").fetchnumpy()


def _name_segments(z: np.ndarray, names: list[str]) -> list[str]:
    """Readable names from what distinguishes each segment: the strongest adjective and noun with |z| ≥ 0.5."""
    out = []
    for row in z:
        adj, noun = [], []
        for j in np.argsort(-np.abs(row), kind="stable"):
            _, _, high, low = FEATURES[names[j]]
            word = high if row[j] >= 0.5 else low if row[j] <= -0.5 else None
            if word:
                (noun if word.endswith("s") else adj).append(word)
        label = " ".join(([adj[0]] if adj else []) + [noun[0] if noun else "customers"])
        extra = adj[1:]
        while label in out and extra:
            label = f"{extra.pop(0)} {label[0].lower()}{label[1:]}"
        out.append(label[0].upper() + label[1:] if label not in out else f"{label} ({len(out) + 1})")
    return out


@single_thread
def _cluster(X: np.ndarray, p: SegmentParams) -> tuple[np.ndarray, dict[int, float]]:
    """Labels for every row; k by the silhouette of k-means on seeded samples unless given."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(p.seed)
    fit = np.sort(rng.choice(len(X), min(len(X), FIT_SAMPLE), replace=False))
    sil = np.sort(rng.choice(len(X), min(len(X), SILHOUETTE_SAMPLE), replace=False))
    scores, models = {}, {}
    for k in [p.k] if p.k else range(3, 9):
        km = KMeans(k, n_init=4, random_state=p.seed).fit(X[fit])
        models[k] = km
        labels = km.predict(X[sil])
        scores[k] = float(silhouette_score(X[sil], labels)) if len(set(labels)) > 1 else -1.0
    k = max(scores, key=lambda kk: (scores[kk], -kk))
    if p.algorithm == "gmm":
        gm = GaussianMixture(k, covariance_type="diag", means_init=models[k].cluster_centers_,
                             random_state=p.seed, reg_covar=1e-4).fit(X[fit])
        return gm.predict(X), scores
    return models[k].predict(X), scores


def _behavioral(con, p: SegmentParams, as_of: date):
    need(con, "orders", ["customer_id", "order_date", "revenue", "discount", "category"])
    need(con, "customers", ["customer_id", "signup_date"])
    need(con, "events", ["customer_id", "event_time", "event_type"])
    need(con, "email_sends", ["customer_id", "sent_at", "opened"])
    f = behaviour_features(con, as_of)
    ids = np.asarray(f["customer_id"])
    if ids.size < MIN_CUSTOMERS:
        raise ToolError(f"Too few customers with orders up to {as_of} to segment: {ids.size} (need {MIN_CUSTOMERS}).")
    names = list(FEATURES)
    raw = np.column_stack([np.nan_to_num(np.asarray(f[c], dtype=float)) for c in names])
    T = np.column_stack([np.log1p(np.maximum(raw[:, j], 0)) if FEATURES[c][1] else raw[:, j]
                         for j, c in enumerate(names)])
    sd = T.std(axis=0)
    Z = (T - T.mean(axis=0)) / np.where(sd > 1e-9, sd, 1.0)
    use = [j for j, c in enumerate(names) if c in CLUSTER_ON and sd[j] > 1e-9]
    labels, scores = _cluster(Z[:, use], p)
    order = sorted(set(labels.tolist()), key=lambda c: (-(labels == c).sum(), c))
    remap = np.zeros(max(order) + 1, dtype=int)
    remap[order] = np.arange(len(order))
    labels = remap[labels]
    z = np.array([Z[labels == c].mean(axis=0) for c in range(len(order))])
    seg_names = _name_segments(z, names)
    profiles = []
    revenue = raw[:, names.index("revenue")]
    for c in range(len(order)):
        m = labels == c
        profiles.append({"segment_id": f"S{c + 1}", "segment_name": seg_names[c], "customers": int(m.sum()),
                         "share": float(m.mean()), "revenue": float(revenue[m].sum()),
                         "revenue_share": float(revenue[m].sum() / revenue.sum()) if revenue.sum() else None,
                         **{f"mean_{n}": float(raw[m, j].mean()) for j, n in enumerate(names)},
                         "distinguishing": {names[j]: round(float(z[c, j]), 2)
                                            for j in np.argsort(-np.abs(z[c]), kind="stable")[:4]}})
    extra = {"k": len(order), "silhouette": scores, "k_chosen_by": "given" if p.k else "silhouette (3..8)",
             "algorithm": p.algorithm, "features": [names[j] for j in use],
             "feature_descriptions": {n: FEATURES[n][0] for n in names},
             "overall": {f"mean_{n}": float(raw[:, j].mean()) for j, n in enumerate(names)}}
    return ids, np.array([f"S{c + 1}" for c in labels], dtype=object), np.array(seg_names, dtype=object)[labels], \
        profiles, extra


def _rfm(con, p: SegmentParams, as_of: date):
    need(con, "orders", ["customer_id", "order_date", "revenue"])
    sql = rfm_sql(as_of)
    rows = con.execute(f"SELECT customer_id, segment FROM ({sql}) ORDER BY customer_id").fetchnumpy()
    ids = np.asarray(rows["customer_id"])
    if ids.size < MIN_CUSTOMERS:
        raise ToolError(f"Too few customers with orders up to {as_of} for RFM: {ids.size} (need {MIN_CUSTOMERS}).")
    cur = con.execute(f"""SELECT segment, count(*), count(*) / sum(count(*)) OVER (), sum(monetary),
            sum(monetary) / sum(sum(monetary)) OVER (), avg(recency_days), avg(frequency), avg(monetary),
            avg(r), avg(f), avg(m)
        FROM ({sql}) GROUP BY segment ORDER BY 2 DESC, 1""")
    keys = ("segment_name", "customers", "share", "revenue", "revenue_share", "mean_recency_days",
            "mean_frequency", "mean_monetary", "mean_r", "mean_f", "mean_m")
    profiles = [dict(zip(keys, r, strict=True)) for r in cur.fetchall()]
    for prof in profiles:
        prof["segment_id"] = prof["segment_name"].lower().replace("'", "").replace(" ", "_")
    overall = con.execute(f"SELECT avg(recency_days), avg(frequency), avg(monetary) FROM ({sql})").fetchall()[0]
    seg = np.asarray(rows["segment"]).astype(object)
    seg_ids = np.array([str(s).lower().replace("'", "").replace(" ", "_") for s in seg], dtype=object)
    extra = {"overall": dict(zip(("mean_recency_days", "mean_frequency", "mean_monetary"), overall, strict=True)),
             "grid": {str(r): list(v) for r, v in RFM_GRID.items()}}
    return ids, seg_ids, seg, profiles, extra


@register(example=SegmentParams(method="behavioral"),
          key_metrics=("customers", "segments"), names_things=True,
          requests=["Segment our customers", "RFM segmentation of the customer base",
                    "Who are our champions and who is at risk?", "Cluster customers by behaviour",
                    "What customer segments do we have?", "Group customers into personas by how they shop",
                    "How many customers are hibernating or lost?", "Build behavioural segments as of June 30",
                    "Split customers into 4 segments", "Which segment brings the most revenue?"])
def segment_customers(con: duckdb.DuckDBPyConnection, p: SegmentParams) -> SegmentResult:
    """Segment customers by RFM or behavioural clustering; name, size and profile each segment and save membership."""
    as_of = resolve_as_of(con, p.as_of)
    ids, seg_ids, seg_names, profiles, extra = (_rfm if p.method == "rfm" else _behavioral)(con, p, as_of)
    run_id = make_run_id("seg", p, as_of, fingerprint(ids, seg_ids, seg_names))
    warnings = []
    note = save_run(con, "customer_segments", run_id, {"customer_id": ids.astype(np.int64), "segment_id": seg_ids,
                                                       "segment_name": seg_names})
    if note:
        warnings.append(note)
    total = con.execute("SELECT count(*) FROM customers WHERE signup_date <= ?", [as_of]).fetchall()[0][0]
    if total > ids.size:
        warnings.append(f"{total - ids.size:,} customers with no order up to {as_of} are not segmented.")
    biggest = max(profiles, key=lambda r: r["customers"])
    richest = max(profiles, key=lambda r: r["revenue"] or 0)
    how = ("RFM" if p.method == "rfm" else
           f"behavioural clustering ({'Gaussian mixture' if p.algorithm == 'gmm' else 'k-means'}, k = {extra['k']} "
           f"{'given' if p.k else 'chosen by silhouette'})")
    summary = (f"{ids.size:,} customers segmented as of {as_of} by {how} into {len(profiles)} segments: "
               + "; ".join(f"{r['segment_name']} {r['customers']:,} ({pct(r['share'])}, {pct(r['revenue_share'])} "
                           f"of revenue)" for r in profiles)
               + f". Largest: {biggest['segment_name']}; most revenue: {richest['segment_name']} "
               f"({money(richest['revenue'])}). Membership saved as run {run_id}.")
    if note:
        summary = summary.replace(f" Membership saved as run {run_id}.", " Membership was not saved (read-only).")
    metrics = {"run_id": run_id, "as_of": as_of, "method": p.method, "customers": int(ids.size),
               "segments": len(profiles), **extra}
    chart = charts.bar([{"segment": r["segment_name"], "customers": r["customers"]} for r in profiles],
                       "segment", "customers", f"Segment sizes ({p.method}, as of {as_of})")
    return SegmentResult(summary=summary, data=profiles, metrics=metrics, chart=chart, warnings=warnings)
