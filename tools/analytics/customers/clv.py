"""predict_clv: BG/NBD purchase frequency and Gamma-Gamma spend, fitted by maximum likelihood.

Calibration data per customer (same-day purchases merged, time in weeks = days / 7): x repeat purchase days,
t_x the week of the last purchase after the first, T the weeks from the first purchase to `as_of`, and zbar
the mean value of the repeat purchase days. Log-likelihoods are vectorised over (deduplicated) customers and
fitted on log-parameters with analytic gradients (Fader, Hardie & Lee 2005; Fader & Hardie 2013).
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from tools import charts
from tools.analytics.customers.scoring import fingerprint, ident, make_run_id, need, resolve_as_of, save_run
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import columns_of

MIN_CUSTOMERS = 50
MIN_REPEAT = 20
FIT_CAP = 50_000
"""The models are fitted on at most this many customers (a seeded sample); every customer is scored."""


class ClvParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    """End of the calibration period: only purchases up to this day are used (default: last day of data)."""
    horizon_days: int = Field(365, ge=7, le=3650)
    """Days after `as_of` over which purchases and value are predicted."""
    margin: float = Field(1.0, gt=0, le=1)
    """Profit margin applied to revenue (1 = value is revenue)."""
    discount_rate: float = Field(0.0, ge=0, le=1)
    """Annual discount rate for future value (0 = no discounting)."""
    table: str | None = None
    """A loaded table of transactions to use instead of `orders` (e.g. CDNOW loaded with `northstar load`)."""
    customer_column: str = "customer_id"
    """Customer id column of `table`."""
    date_column: str = "order_date"
    """Purchase date column of `table` (a date, or text/number read with `date_format`)."""
    value_column: str = "revenue"
    """Purchase value column of `table`."""
    date_format: str | None = None
    """strptime format of `date_column` when it is text or a number, e.g. '%Y%m%d'."""
    limit: int = Field(20, ge=1, le=200)
    """Rows returned: the customers with the highest CLV."""
    seed: int = 0
    """Seed of the fitting sample (only used above 50,000 customers)."""


class ClvResult(ToolResult):
    pass


# ---- BG/NBD ---------------------------------------------------------------------------------------------------

def bgnbd_ll(params, x, t_x, T, w=None, grad: bool = False):
    """Total BG/NBD log-likelihood (and its gradient w.r.t. log r, log alpha, log a, log b)."""
    r, alpha, a, b = params
    w = np.ones_like(x) if w is None else w
    rep = x > 0
    bx1 = np.where(rep, b + x - 1, 1.0)
    A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    A3 = -(r + x) * np.log(alpha + T)
    A4 = np.where(rep, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + t_x), -np.inf)
    L34 = np.logaddexp(A3, A4)
    ll = float(w @ (A1 + A2 + L34))
    if not grad:
        return ll
    w3, w4 = np.exp(A3 - L34), np.exp(A4 - L34)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / bx1
    g = np.array([w @ d_r, w @ d_alpha, w @ d_a, w @ d_b]) * np.asarray(params)
    return ll, g


def fit_bgnbd(x, t_x, T, w=None) -> tuple[np.ndarray, float]:
    """Maximum-likelihood r, alpha, a, b (on log-parameters, L-BFGS with the analytic gradient)."""
    w = np.ones_like(x, dtype=float) if w is None else w
    scale = w.sum()

    def neg(theta):
        ll, g = bgnbd_ll(np.exp(theta), x, t_x, T, w, grad=True)
        return -ll / scale, -g / scale

    start = np.log([1.0, max(float(np.average(T, weights=w)), 1e-3), 1.0, 1.0])
    res = minimize(neg, start, jac=True, method="L-BFGS-B", bounds=[(-12, 12)] * 4,
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    params = np.exp(res.x)
    return params, bgnbd_ll(params, x, t_x, T, w)


def expected_purchases(params, t):
    """E[X(t)]: expected purchases of a randomly chosen new customer in t weeks (BG/NBD eq. 9)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def _log_odds_dead(params, x, t_x, T):
    r, alpha, a, b = params
    bx1 = np.where(x > 0, b + x - 1, 1.0)
    return np.where(x > 0, np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), -np.inf)


def p_alive(params, x, t_x, T):
    """P(alive | x, t_x, T)."""
    return expit(-_log_odds_dead(params, np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)))


def conditional_expected_purchases(params, t, x, t_x, T):
    """E[Y(t) | x, t_x, T]: expected purchases in the next t weeks of a customer with this history (eq. 10)."""
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    A, B, C = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_h = np.log(hyp2f1(A, B, C, z))
        alt = np.log(hyp2f1(C - A, C - B, C, z)) + (C - A - B) * np.log1p(-z)  # Euler's transformation
        log_h = np.where(np.isfinite(log_h), log_h, alt)
    head = (a + b + x - 1) / (a - 1)
    body = 1 - np.exp(log_h + A * (np.log(alpha + T) - np.log(alpha + T + t)))
    return head * body * expit(-_log_odds_dead(params, x, t_x, T))


# ---- Gamma-Gamma ----------------------------------------------------------------------------------------------

def gamma_gamma_ll(params, x, m, grad: bool = False):
    """Gamma-Gamma log-likelihood of mean repeat spend m over x repeat purchases (and the log-parameter gradient)."""
    p, q, v = params
    px = p * x
    ll_i = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m) + px * np.log(x)
            - (px + q) * np.log(x * m + v))
    if not grad:
        return float(ll_i.sum())
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(x * m + v))
    d_q = digamma(px + q) - digamma(q) + np.log(v) - np.log(x * m + v)
    d_v = q / v - (px + q) / (x * m + v)
    return float(ll_i.sum()), np.array([d_p.sum(), d_q.sum(), d_v.sum()]) * np.asarray(params)


def fit_gamma_gamma(x, m) -> tuple[np.ndarray, float]:
    def neg(theta):
        ll, g = gamma_gamma_ll(np.exp(theta), x, m, grad=True)
        return -ll / x.size, -g / x.size

    res = minimize(neg, np.log([1.0, 2.0, float(np.mean(m))]), jac=True, method="L-BFGS-B", bounds=[(-12, 12)] * 3,
                   options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    params = np.exp(res.x)
    return params, gamma_gamma_ll(params, x, m)


def expected_order_value(params, x, m):
    """E[M | x, m]: the Gamma-Gamma expected value of a future order (the population mean when x = 0)."""
    p, q, v = params
    x = np.asarray(x, dtype=float)
    return p * (v + x * np.where(x > 0, m, 0.0)) / (p * x + q - 1)


# ---- the tool -------------------------------------------------------------------------------------------------

def _source(con, p: ClvParams) -> tuple[str, str]:
    """SQL over (cid, d, v) for the chosen source, and a label for messages."""
    if p.table is None:
        need(con, "orders", ["customer_id", "order_date", "revenue"])
        return "SELECT customer_id AS cid, order_date AS d, revenue AS v FROM orders", "orders"
    cols = (p.customer_column, p.date_column, p.value_column)
    need(con, p.table, cols)
    cid, dcol, vcol = (ident(c) for c in cols)
    kind = columns_of(con, p.table)[p.date_column]
    if p.date_format:
        fmt = p.date_format.replace("'", "")
        d = f"try_strptime(trim({dcol}::VARCHAR), '{fmt}')::DATE"
    elif kind.startswith(("DATE", "TIMESTAMP")):
        d = f"{dcol}::DATE"
    elif kind == "VARCHAR":
        d = f"TRY_CAST({dcol} AS DATE)"
    else:
        raise ToolError(f"Column {p.date_column!r} of {p.table} holds {kind} values, not dates; pass date_format "
                        "(for 19970101 use '%Y%m%d').")
    sql = f"SELECT {cid} AS cid, {d} AS d, TRY_CAST({vcol} AS DOUBLE) AS v FROM {ident(p.table)}"
    bad = con.execute(f"SELECT count(*) FILTER (WHERE {dcol} IS NOT NULL AND {d} IS NULL), count(*) "
                      f"FROM {ident(p.table)}").fetchall()[0]
    if bad[0]:
        raise ToolError(f"{bad[0]:,} of {bad[1]:,} values of {p.table}.{p.date_column} are not dates in the format "
                        f"{p.date_format or 'YYYY-MM-DD'}; pass the right date_format.")
    return sql, p.table


def _summary(con, sql: str, as_of: date) -> dict[str, np.ndarray]:
    """Per customer: x, t_x, T (weeks) and mean repeat spend, computed in SQL."""
    rel = con.execute(f"""
        WITH days AS (SELECT cid, d, sum(coalesce(v, 0)::DECIMAL(38, 6)) AS v  -- exact sums: same data, same result
                      FROM ({sql}) WHERE d <= ? AND cid IS NOT NULL GROUP BY cid, d)
        SELECT cid, count(*) - 1 AS x, date_diff('day', min(d), max(d)) / 7.0 AS t_x,
               date_diff('day', min(d), ?::DATE) / 7.0 AS T,
               CASE WHEN count(*) > 1 THEN (sum(v) - arg_min(v, d))::DOUBLE / (count(*) - 1) ELSE 0 END AS zbar
        FROM days GROUP BY cid ORDER BY cid""", [as_of, as_of])
    return rel.fetchnumpy()


@register(example=ClvParams(horizon_days=180, margin=0.3),
          key_metrics=("clv_total", "clv_mean", "customers", "top_decile_share", "mean_p_alive", "expected_purchases_total"),
          requests=["What is each customer's lifetime value?", "predict CLV for the next 12 months",
                    "Which customers are worth the most over the next year?",
                    "How many purchases will our customers make next quarter?",
                    "probability each customer is still alive", "customer lifetime value with a 30% margin",
                    "expected future revenue per customer", "Who are our most valuable customers going forward?",
                    "Fit BG/NBD and Gamma-Gamma on the CDNOW table"])
def predict_clv(con: duckdb.DuckDBPyConnection, p: ClvParams) -> ClvResult:
    """Predict each customer's purchases, P(alive), order value and lifetime value over a horizon (BG/NBD + Gamma-Gamma)."""
    sql, label = _source(con, p)
    last = con.execute(f"SELECT max(d) FROM ({sql})").fetchone()[0]
    if last is None:
        raise ToolError(f"{label} has no purchases to learn from.")
    as_of = resolve_as_of(con, p.as_of, last, f"purchases in {label}")
    s = _summary(con, sql, as_of)
    x, t_x, T = (s[k].astype(float) for k in ("x", "t_x", "T"))
    n, n_rep = x.size, int((x > 0).sum())
    if n < MIN_CUSTOMERS or n_rep < MIN_REPEAT:
        raise ToolError(f"Too few customers to fit BG/NBD: {n} customers with purchases up to {as_of}, {n_rep} of "
                        f"them repeat buyers (need at least {MIN_CUSTOMERS} and {MIN_REPEAT}). Use a later as_of "
                        "or more data.")
    fit = np.arange(n) if n <= FIT_CAP else np.sort(np.random.default_rng(p.seed).choice(n, FIT_CAP, replace=False))
    uniq, w = np.unique(np.c_[x[fit], t_x[fit], T[fit]], axis=0, return_counts=True)
    bg, _ = fit_bgnbd(uniq[:, 0], uniq[:, 1], uniq[:, 2], w.astype(float))
    ll = bgnbd_ll(bg, x, t_x, T)
    zbar = s["zbar"].astype(float)
    warnings = []
    gg_ok = (x > 0) & (zbar > 0)
    if (x > 0).sum() > gg_ok.sum():
        warnings.append(f"{int((x > 0).sum() - gg_ok.sum())} repeat customers with zero or negative spend were left "
                        "out of the Gamma-Gamma fit.")
    gi = np.flatnonzero(gg_ok)
    if gi.size < MIN_REPEAT:
        raise ToolError(f"Too few repeat customers with positive spend ({gi.size}) to fit Gamma-Gamma.")
    if gi.size > FIT_CAP:
        gi = np.sort(np.random.default_rng(p.seed).choice(gi, FIT_CAP, replace=False))
    gg, gg_ll = fit_gamma_gamma(x[gi], zbar[gi])
    if gg[1] <= 1:
        warnings.append("Gamma-Gamma q ≤ 1: one-time buyers get the observed mean order value and CLV is less "
                        "certain; treat it with caution.")
    corr = float(np.corrcoef(x[gg_ok], zbar[gg_ok])[0, 1]) if gg_ok.sum() > 2 else 0.0
    if abs(corr) > 0.3:
        warnings.append(f"Purchase frequency and order value are correlated (r = {corr:.2f}); Gamma-Gamma assumes "
                        "they are independent, so CLV may be biased.")

    horizon = p.horizon_days / 7.0
    purchases = conditional_expected_purchases(bg, horizon, x, t_x, T)
    alive = p_alive(bg, x, t_x, T)
    value = expected_order_value(gg, x, zbar)
    if gg[1] <= 1:  # the population mean p·v/(q − 1) does not exist: use the observed mean repeat order value
        value = np.where(x > 0, value, float(zbar[gg_ok].mean()))
    if p.discount_rate > 0:  # 30-day steps, each discounted to as_of
        ends = np.minimum(np.arange(30, p.horizon_days + 30, 30), p.horizon_days)
        disc, prev = np.zeros(n), np.zeros(n)
        for e in ends:
            cum = conditional_expected_purchases(bg, e / 7.0, x, t_x, T)
            disc += (cum - prev) / (1 + p.discount_rate) ** (e / 365.0)
            prev = cum
    else:
        disc = purchases
    clv = p.margin * value * disc

    cid = np.asarray(s["cid"])
    run_id = make_run_id("clv", p, as_of, fingerprint(x, t_x, T, zbar, purchases, alive, value, clv))
    note = save_run(con, "clv_scores", run_id, {
        "customer_id": pa.array(cid).cast(pa.string()), "expected_purchases": purchases, "p_alive": alive,
        "expected_order_value": value, "clv": clv})
    if note:
        warnings.append(note)
    ranked = np.argsort(-clv, kind="stable")
    top = ranked[: p.limit]
    rows = [{"customer_id": str(cid[i]), "repeat_purchases": int(x[i]), "weeks_since_last": round(T[i] - t_x[i], 2),
             "expected_purchases": round(float(purchases[i]), 4), "p_alive": round(float(alive[i]), 4),
             "expected_order_value": round(float(value[i]), 2), "clv": round(float(clv[i]), 2)} for i in top]
    deciles = np.array_split(ranked, 10)
    chart_rows = [{"decile": f"D{k + 1}", "clv": round(float(clv[d].sum()), 2)} for k, d in enumerate(deciles)]
    total = float(clv.sum())
    top10 = float(clv[deciles[0]].sum())
    metrics = {
        "run_id": run_id, "as_of": as_of, "horizon_days": p.horizon_days, "customers": n, "repeat_customers": n_rep,
        "bgnbd": dict(zip(("r", "alpha", "a", "b"), bg.tolist(), strict=True)), "log_likelihood": ll,
        "gamma_gamma": dict(zip(("p", "q", "v"), gg.tolist(), strict=True)), "gamma_gamma_log_likelihood": gg_ll,
        "gamma_gamma_customers": int(gi.size), "frequency_value_correlation": corr,
        "expected_purchases_total": float(purchases.sum()), "mean_p_alive": float(alive.mean()),
        "mean_expected_order_value": float(value.mean()), "clv_total": total, "clv_mean": total / n,
        "top_decile_share": top10 / total if total else None, "margin": p.margin, "discount_rate": p.discount_rate}
    summary = (f"CLV over the next {p.horizon_days} days for {n:,} customers ({label}, purchases up to {as_of}): "
               f"{float(purchases.sum()):,.0f} expected purchases, total value {money(total)} "
               f"(mean {money(total / n)} per customer"
               + (f", margin {pct(p.margin, 0)}" if p.margin < 1 else "")
               + (f", discounted at {pct(p.discount_rate, 1)} a year" if p.discount_rate else "")
               + f"). The top 10 % of customers hold {pct(top10 / total if total else None)} of it. "
               f"Mean P(alive) {pct(float(alive.mean()))}. BG/NBD r {bg[0]:.4f}, alpha {bg[1]:.4f}, a {bg[2]:.4f}, "
               f"b {bg[3]:.4f} (log-likelihood {ll:,.1f}); Gamma-Gamma p {gg[0]:.2f}, q {gg[1]:.2f}, v {gg[2]:.2f}.")
    return ClvResult(summary=summary, data=rows, metrics=metrics, warnings=warnings,
                     chart=charts.bar(chart_rows, "decile", "clv", "Predicted CLV by customer decile", sort="x"))
