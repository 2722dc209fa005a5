"""predict_clv: each customer's future purchases, P(alive), order value and lifetime value, from BG/NBD and
Gamma-Gamma fitted by maximum likelihood (the maths is in clv_models.py).

Calibration data per customer, computed in SQL (same-day purchases merged, time in weeks = days / 7): x repeat
purchase days, t_x the week of the last purchase after the first, T the weeks from the first purchase to `as_of`,
and zbar the mean value of the repeat purchase days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.clv_models import (
    bgnbd_ll,
    conditional_expected_purchases,
    expected_order_value,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
)
from tools.analytics.customers.runs import (
    fingerprint,
    ident,
    make_run_id,
    need,
    resolve_as_of,
    resolved,
    save_run,
)
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


# ---- the tool -------------------------------------------------------------------------------------------------

def _source(con: duckdb.DuckDBPyConnection, params: ClvParams) -> tuple[str, str]:
    """SQL over (cid, d, v) for the chosen source, and a label for messages."""
    if params.table is None:
        need(con, "orders", ["customer_id", "order_date", "revenue"])
        return "SELECT customer_id AS cid, order_date AS d, revenue AS v FROM orders", "orders"
    table, date_column = params.table, params.date_column
    columns = (params.customer_column, date_column, params.value_column)
    need(con, table, columns)
    customer_sql, date_sql, value_sql = (ident(c) for c in columns)
    kind = columns_of(con, table)[date_column]
    if params.date_format:
        fmt = params.date_format.replace("'", "")
        day = f"try_strptime(trim({date_sql}::VARCHAR), '{fmt}')::DATE"
    elif kind.startswith(("DATE", "TIMESTAMP")):
        day = f"{date_sql}::DATE"
    elif kind == "VARCHAR":
        day = f"TRY_CAST({date_sql} AS DATE)"
    else:
        raise ToolError(f"Column {date_column!r} of {table} holds {kind} values, not dates; pass date_format "
                        "(for 19970101 use '%Y%m%d').")
    sql = f"SELECT {customer_sql} AS cid, {day} AS d, TRY_CAST({value_sql} AS DOUBLE) AS v FROM {ident(table)}"
    bad, total = con.execute(f"SELECT count(*) FILTER (WHERE {date_sql} IS NOT NULL AND {day} IS NULL), count(*) "
                             f"FROM {ident(table)}").fetchall()[0]
    if bad:
        raise ToolError(f"{bad:,} of {total:,} values of {table}.{date_column} are not dates in the format "
                        f"{params.date_format or 'YYYY-MM-DD'}; pass the right date_format.")
    return sql, table


def _history(con: duckdb.DuckDBPyConnection, sql: str, as_of: date) -> dict[str, np.ndarray]:
    """Per customer: x, t_x, T (weeks) and mean repeat spend, computed in SQL."""
    rel = con.execute(f"""
        WITH days AS (SELECT cid, d, sum(coalesce(v, 0)::DECIMAL(38, 6)) AS v  -- exact sums: same data, same result
                      FROM ({sql}) WHERE d <= ? AND cid IS NOT NULL GROUP BY cid, d)
        SELECT cid, count(*) - 1 AS x, date_diff('day', min(d), max(d)) / 7.0 AS t_x,
               date_diff('day', min(d), ?::DATE) / 7.0 AS T,
               CASE WHEN count(*) > 1 THEN (sum(v) - arg_min(v, d))::DOUBLE / (count(*) - 1) ELSE 0 END AS zbar
        FROM days GROUP BY cid ORDER BY cid""", [as_of, as_of])
    return rel.fetchnumpy()


@dataclass
class History:
    """Calibration data per customer: x repeat purchase days, t_x and T in weeks, zbar mean repeat spend."""

    cid: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    zbar: np.ndarray

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray]) -> History:
        return cls(np.asarray(columns["cid"]), *(columns[k].astype(float) for k in ("x", "t_x", "T", "zbar")))


@dataclass
class ClvFit:
    """Both models' maximum-likelihood parameters, and what the fit warns about."""

    bgnbd: np.ndarray
    """r, alpha, a, b."""
    log_likelihood: float
    gamma_gamma: np.ndarray
    """p, q, v."""
    gamma_gamma_log_likelihood: float
    gamma_gamma_customers: int
    frequency_value_correlation: float
    warnings: list[str]


def _fit_bgnbd(history: History, seed: int) -> tuple[np.ndarray, float]:
    """BG/NBD on at most FIT_CAP customers (fit_bgnbd merges identical (x, t_x, T) rows into weighted rows)."""
    x, t_x, T = history.x, history.t_x, history.T
    n = x.size
    fit = np.arange(n) if n <= FIT_CAP else np.sort(np.random.default_rng(seed).choice(n, FIT_CAP, replace=False))
    bgnbd, _ = fit_bgnbd(x[fit], t_x[fit], T[fit])
    return bgnbd, bgnbd_ll(bgnbd, x, t_x, T)


def _fit(history: History, seed: int) -> ClvFit:
    """BG/NBD on every customer, Gamma-Gamma on repeat customers with positive spend (at most FIT_CAP each)."""
    bgnbd, ll = _fit_bgnbd(history, seed)
    x, zbar = history.x, history.zbar
    warnings = []
    positive = (x > 0) & (zbar > 0)
    if (x > 0).sum() > positive.sum():
        warnings.append(f"{int((x > 0).sum() - positive.sum())} repeat customers with zero or negative spend were "
                        "left out of the Gamma-Gamma fit.")
    spenders = np.flatnonzero(positive)
    if spenders.size < MIN_REPEAT:
        raise ToolError(f"Too few repeat customers with positive spend ({spenders.size}) to fit Gamma-Gamma.")
    if spenders.size > FIT_CAP:
        spenders = np.sort(np.random.default_rng(seed).choice(spenders, FIT_CAP, replace=False))
    gamma_gamma, gg_ll = fit_gamma_gamma(x[spenders], zbar[spenders])
    if gamma_gamma[1] <= 1:
        warnings.append("Gamma-Gamma q ≤ 1: one-time buyers get the observed mean order value and CLV is less "
                        "certain; treat it with caution.")
    corr = float(np.corrcoef(x[positive], zbar[positive])[0, 1]) if positive.sum() > 2 else 0.0
    if abs(corr) > 0.3:
        warnings.append(f"Purchase frequency and order value are correlated (r = {corr:.2f}); Gamma-Gamma assumes "
                        "they are independent, so CLV may be biased.")
    return ClvFit(bgnbd, ll, gamma_gamma, gg_ll, int(spenders.size), corr, warnings)


@dataclass
class Forecast:
    """Per customer over the horizon: expected purchases, P(alive), expected order value and CLV."""

    purchases: np.ndarray
    alive: np.ndarray
    value: np.ndarray
    clv: np.ndarray


def _discounted_purchases(bgnbd: np.ndarray, history: History, horizon_days: int, rate: float) -> np.ndarray:
    """Expected purchases in 30-day steps, each discounted to as_of at the annual `rate`."""
    x, t_x, T = history.x, history.t_x, history.T
    ends = np.minimum(np.arange(30, horizon_days + 30, 30), horizon_days)
    discounted, previous = np.zeros(x.size), np.zeros(x.size)
    for end in ends:
        cumulative = conditional_expected_purchases(bgnbd, end / 7.0, x, t_x, T)
        discounted += (cumulative - previous) / (1 + rate) ** (end / 365.0)
        previous = cumulative
    return discounted


def _forecast(params: ClvParams, history: History, fit: ClvFit) -> Forecast:
    x, t_x, T, zbar = history.x, history.t_x, history.T, history.zbar
    purchases = conditional_expected_purchases(fit.bgnbd, params.horizon_days / 7.0, x, t_x, T)
    alive = p_alive(fit.bgnbd, x, t_x, T)
    value = expected_order_value(fit.gamma_gamma, x, zbar)
    if fit.gamma_gamma[1] <= 1:  # the population mean p·v/(q − 1) does not exist: use the observed mean repeat value
        value = np.where(x > 0, value, float(zbar[(x > 0) & (zbar > 0)].mean()))
    discounted = (_discounted_purchases(fit.bgnbd, history, params.horizon_days, params.discount_rate)
                  if params.discount_rate > 0 else purchases)
    return Forecast(purchases, alive, value, params.margin * value * discounted)


def _rows(history: History, forecast: Forecast, ranked: np.ndarray) -> list[dict]:
    return [{"customer_id": str(history.cid[i]), "repeat_purchases": int(history.x[i]),
             "weeks_since_last": round(history.T[i] - history.t_x[i], 2),
             "expected_purchases": round(float(forecast.purchases[i]), 4),
             "p_alive": round(float(forecast.alive[i]), 4),
             "expected_order_value": round(float(forecast.value[i]), 2), "clv": round(float(forecast.clv[i]), 2)}
            for i in ranked]


def _metrics(params: ClvParams, as_of: date, run_id: str, history: History, fit: ClvFit, forecast: Forecast,
             top10: float) -> dict:
    n, total = history.x.size, float(forecast.clv.sum())
    return {
        "run_id": run_id, "as_of": as_of, "horizon_days": params.horizon_days, "customers": n,
        "repeat_customers": int((history.x > 0).sum()),
        "bgnbd": dict(zip(("r", "alpha", "a", "b"), fit.bgnbd.tolist(), strict=True)),
        "log_likelihood": fit.log_likelihood,
        "gamma_gamma": dict(zip(("p", "q", "v"), fit.gamma_gamma.tolist(), strict=True)),
        "gamma_gamma_log_likelihood": fit.gamma_gamma_log_likelihood,
        "gamma_gamma_customers": fit.gamma_gamma_customers,
        "frequency_value_correlation": fit.frequency_value_correlation,
        "expected_purchases_total": float(forecast.purchases.sum()), "mean_p_alive": float(forecast.alive.mean()),
        "mean_expected_order_value": float(forecast.value.mean()), "clv_total": total, "clv_mean": total / n,
        "top_decile_share": top10 / total if total else None, "margin": params.margin,
        "discount_rate": params.discount_rate}


def _summary(params: ClvParams, label: str, metrics: dict, fit: ClvFit) -> str:
    n, total, bgnbd, gamma_gamma = metrics["customers"], metrics["clv_total"], fit.bgnbd, fit.gamma_gamma
    return (f"CLV over the next {params.horizon_days} days for {n:,} customers ({label}, purchases up to "
            f"{metrics['as_of']}): {metrics['expected_purchases_total']:,.0f} expected purchases, total value "
            f"{money(total)} (mean {money(total / n)} per customer"
            + (f", margin {pct(params.margin, 0)}" if params.margin < 1 else "")
            + (f", discounted at {pct(params.discount_rate, 1)} a year" if params.discount_rate else "")
            + f"). The top 10 % of customers hold {pct(metrics['top_decile_share'])} of it. "
            f"Mean P(alive) {pct(metrics['mean_p_alive'])}. BG/NBD r {bgnbd[0]:.4f}, alpha {bgnbd[1]:.4f}, "
            f"a {bgnbd[2]:.4f}, b {bgnbd[3]:.4f} (log-likelihood {fit.log_likelihood:,.1f}); Gamma-Gamma "
            f"p {gamma_gamma[0]:.2f}, q {gamma_gamma[1]:.2f}, v {gamma_gamma[2]:.2f}.")


@register(example=ClvParams(horizon_days=180, margin=0.3),
          key_metrics=("clv_total", "clv_mean", "customers", "top_decile_share", "mean_p_alive", "expected_purchases_total"),
          concepts={"clv": ["lifetime value", "life time value", "clv", "ltv", "cltv", "customer value",
                            "future value", "future spend", "expected spend", "worth", "most valuable", "high value",
                            "highest value", "customer equity"],
                    "p_alive": ["p(alive)", "still alive", "alive", "still active", "still buying"],
                    "purchases": ["expected purchases", "repeat purchases", "purchase frequency", "bg/nbd",
                                  "gamma-gamma"]},
          synonyms={"margin": ["profit margin", "gross margin", "margin"],
                    "discount_rate": ["discount rate", "discounting", "annual discount"]},
          requests=["What is each customer's lifetime value?", "predict CLV for the next 12 months",
                    "Which customers are worth the most over the next year?",
                    "How many purchases will our customers make next quarter?",
                    "probability each customer is still alive", "customer lifetime value with a 30% margin",
                    "expected future revenue per customer", "Who are our most valuable customers going forward?",
                    "Fit BG/NBD and Gamma-Gamma on the CDNOW table",
                    "expected profit from each buyer over the next 24 months",
                    "rank customers by expected future profit"])
def predict_clv(con: duckdb.DuckDBPyConnection, params: ClvParams) -> ClvResult:
    """Predict each customer's purchases, P(alive), order value and lifetime value over a horizon (BG/NBD + Gamma-Gamma)."""
    if params.table is not None:  # the table and columns as the user typed them
        params = resolved(con, params, columns=("customer_column", "date_column", "value_column"))
    sql, label = _source(con, params)
    last = con.execute(f"SELECT max(d) FROM ({sql})").fetchone()[0]
    if last is None:
        raise ToolError(f"{label} has no purchases to learn from.")
    as_of = resolve_as_of(con, params.as_of, last, f"purchases in {label}")
    history = History.from_columns(_history(con, sql, as_of))
    n, n_repeat = history.x.size, int((history.x > 0).sum())
    if n < MIN_CUSTOMERS or n_repeat < MIN_REPEAT:
        raise ToolError(f"Too few customers to fit BG/NBD: {n} customers with purchases up to {as_of}, {n_repeat} "
                        f"of them repeat buyers (need at least {MIN_CUSTOMERS} and {MIN_REPEAT}). Use a later as_of "
                        "or more data.")
    fit = _fit(history, params.seed)
    forecast = _forecast(params, history, fit)
    run_id = make_run_id("clv", params, as_of, fingerprint(history.x, history.t_x, history.T, history.zbar,
                                                           forecast.purchases, forecast.alive, forecast.value,
                                                           forecast.clv))
    warnings = list(fit.warnings)
    note = save_run(con, "clv_scores", run_id, {
        "customer_id": pa.array(history.cid).cast(pa.string()), "expected_purchases": forecast.purchases,
        "p_alive": forecast.alive, "expected_order_value": forecast.value, "clv": forecast.clv})
    if note:
        warnings.append(note)
    ranked = np.argsort(-forecast.clv, kind="stable")
    deciles = np.array_split(ranked, 10)
    metrics = _metrics(params, as_of, run_id, history, fit, forecast, float(forecast.clv[deciles[0]].sum()))
    chart_rows = [{"decile": f"D{k + 1}", "clv": round(float(forecast.clv[members].sum()), 2)}
                  for k, members in enumerate(deciles)]
    return ClvResult(summary=_summary(params, label, metrics, fit), metrics=metrics, warnings=warnings,
                     data=_rows(history, forecast, ranked[: params.limit]),
                     chart=charts.bar(chart_rows, "decile", "clv", "Predicted CLV by customer decile", sort="x"))
