"""predict_clv: each customer's future purchases, P(alive), order value and lifetime value, from BG/NBD and
Gamma-Gamma fitted by maximum likelihood (the maths is in clv_models.py).

Calibration data per customer, computed in SQL (same-day purchases merged, time in weeks = days / 7): x repeat
purchase days, t_x the week of the last purchase after the first, T the weeks from the first purchase to `as_of`,
and zbar the mean value of the repeat purchase days.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.customers.clv_models import bgnbd_ll
from tools.analytics.customers.clv_scoring import (
    MIN_REPEAT,
    WEEKS,
    ClvFit,
    History,
    HistoryTable,
    Totals,
    decile_sums,
    fit_models,
    fit_warnings,
    forecast,
    rows,
    score_in_batches,
)
from tools.analytics.customers.runs import (
    fingerprint,
    ident,
    make_run_id,
    need,
    resolve_as_of,
    resolved,
    save_run,
    saving_run,
)
from tools.analytics.customers.sampling import fraction_for, sample_condition
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import columns_of

MIN_CUSTOMERS = 50
SAMPLE_ABOVE = 500_000
"""Above this many customers both models are fitted on a seeded sample drawn in the engine and every customer is
scored in batches (clv_scoring.py); up to it, on everyone, in memory. Chosen from a measurement at 1M customers
(docs/performance.md): a 250k sample puts total CLV within 0.5 % of the fit on everyone."""
FIT_SAMPLE = 250_000
"""Target size of that sample (a Bernoulli sample: the result states its actual size)."""
FIT_CAP = FIT_SAMPLE  # the name bench/compare.py reads


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
    """Seed of the fitting sample (only used above 500,000 customers)."""
    among: str | None = None
    """Report on these customers only, the models still fitted on everyone: a churn run's id (its high-risk
    customers, "which of those are worth the most?" after score_churn) or a saved audience's name."""


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


def history_sql(sql: str) -> str:
    """Per customer of `sql`'s purchases up to the date bound twice after it: x repeat purchase days, tx_days and
    age_days (the days from the first purchase to the last and to as_of) and zbar, the mean repeat spend."""
    return f"""
        WITH days AS (SELECT cid, d, sum(coalesce(v, 0)::DECIMAL(38, 6)) AS v  -- exact sums: same data, same result
                      FROM ({sql}) WHERE d <= ? AND cid IS NOT NULL GROUP BY cid, d)
        SELECT cid, count(*) - 1 AS x, date_diff('day', min(d), max(d)) AS tx_days,
               date_diff('day', min(d), ?::DATE) AS age_days,
               CASE WHEN count(*) > 1 THEN (sum(v) - arg_min(v, d))::DOUBLE / (count(*) - 1) ELSE 0 END AS zbar
        FROM days GROUP BY cid"""


def _history(con: duckdb.DuckDBPyConnection, sql: str, as_of: date) -> dict[str, np.ndarray]:
    """Per customer: x, t_x, T (weeks) and mean repeat spend, computed in SQL."""
    return con.execute(f"SELECT {WEEKS} FROM ({history_sql(sql)}) ORDER BY cid", [as_of, as_of]).fetchnumpy()


def _fit_all(history: History) -> ClvFit:
    """Both models fitted on every customer; the log-likelihood and warnings of everyone."""
    x, zbar = history.x, history.zbar
    positive = (x > 0) & (zbar > 0)
    fit = fit_models(history)
    fit.log_likelihood = bgnbd_ll(fit.bgnbd, x, history.t_x, history.T)
    fit.frequency_value_correlation = float(np.corrcoef(x[positive], zbar[positive])[0, 1]) if positive.sum() > 2 else 0.0
    fit.warnings = fit_warnings(int((x > 0).sum()), int(positive.sum()), fit.gamma_gamma[1],
                                fit.frequency_value_correlation)
    return fit


def _in_memory(con, params: ClvParams, as_of: date, table: HistoryTable) -> tuple[ClvFit, Totals, str, str | None]:
    """Up to SAMPLE_ABOVE customers: the whole history in memory, both models fitted on everyone."""
    history = table.fetch()
    fit = _fit_all(history)
    x, zbar = history.x, history.zbar
    scored = forecast(params, history, fit, float(zbar[(x > 0) & (zbar > 0)].mean()))
    run_id = make_run_id("clv", params, as_of, fingerprint(x, history.t_x, history.T, zbar, scored.purchases,
                                                           scored.alive, scored.value, scored.clv))
    note = save_run(con, "clv_scores", run_id, {
        "customer_id": pa.array(history.cid).cast(pa.string()), "expected_purchases": scored.purchases,
        "p_alive": scored.alive, "expected_order_value": scored.value, "clv": scored.clv})
    ranked = np.argsort(-scored.clv, kind="stable")
    totals = Totals(x.size, int((x > 0).sum()), float(scored.purchases.sum()), float(scored.alive.mean()),
                    float(scored.value.mean()), float(scored.clv.sum()), decile_sums(scored.clv[ranked]),
                    rows(history, scored, ranked[: params.limit]))
    return fit, totals, run_id, note


def _sampled(con, params: ClvParams, as_of: date, table: HistoryTable,
             n: int) -> tuple[ClvFit, Totals, str, str | None]:
    """Above SAMPLE_ABOVE customers: both models fitted on a seeded sample drawn in the engine, every customer
    scored in batches streamed from it and saved batch by batch."""
    repeat, spenders, xs, txs, ages, spend = table.one(
        "count(*) FILTER (WHERE x > 0), count(*) FILTER (WHERE x > 0 AND zbar > 0), sum(x), sum(tx_days), "
        "sum(age_days), sum(zbar::DECIMAL(38, 6)) FILTER (WHERE x > 0 AND zbar > 0)")
    fit = fit_models(table.fetch(sample_condition("cid", params.seed, fraction_for(FIT_SAMPLE, n))))
    run_id = make_run_id("clv", params, as_of, n, repeat, spenders, xs, txs, ages, spend, fit.fit_customers,
                         fit.bgnbd.tolist(), fit.gamma_gamma.tolist())
    mean_spend = float(spend / spenders) if spenders else 0.0  # exact sums: the same on every run and engine
    with saving_run(con, "clv_scores", run_id, n) as saver:
        totals = score_in_batches(table, params, fit, mean_spend, params.limit, saver.write)
    fit.warnings = fit_warnings(repeat, spenders, fit.gamma_gamma[1], fit.frequency_value_correlation)
    return fit, totals, run_id, saver.note


def _population(con: duckdb.DuckDBPyConnection, among: str) -> tuple[str, list, str]:
    """(SQL of the customer ids as text, its parameters, a label) for `among`: a churn run's high-risk customers or
    a saved audience's members."""
    if con.execute("SELECT count(*) FROM churn_scores WHERE run_id = ?", [among]).fetchone()[0]:
        return ("SELECT customer_id::VARCHAR FROM churn_scores WHERE run_id = ? AND risk_band = 'high'", [among],
                f"the high-risk customers of churn run {among}")
    found = con.execute("SELECT audience_id, name FROM audiences WHERE lower(name) = lower(?) ORDER BY created_at DESC "
                        "LIMIT 1", [among.strip()]).fetchone()
    if found:
        return ("SELECT customer_id::VARCHAR FROM audience_members WHERE audience_id = ?", [found[0]],
                f"audience {found[1]!r}")
    runs = [r[0] for r in con.execute("SELECT DISTINCT run_id FROM churn_scores ORDER BY 1 DESC LIMIT 3").fetchall()]
    raise ToolError(f"`among` is neither a churn run nor a saved audience: {among!r}. Give a churn run id"
                    + (f" ({', '.join(runs)})" if runs else " (run score_churn first)") + " or an audience name.")


def _among(con: duckdb.DuckDBPyConnection, params: ClvParams, run_id: str, metrics: dict) -> tuple[list[dict], str]:
    """The saved run's customers that belong to `among`: their totals (into `metrics`), top rows and a sentence."""
    sql, args, label = _population(con, params.among)
    members = f"SELECT * FROM clv_scores WHERE run_id = ? AND customer_id IN ({sql})"
    n, total = con.execute(f"SELECT count(*), coalesce(sum(clv), 0) FROM ({members})", [run_id, *args]).fetchone()
    if not n:
        raise ToolError(f"None of {label} has a purchase history to forecast (no CLV for them in run {run_id}).")
    top = con.execute(f"""SELECT customer_id, round(expected_purchases, 4), round(p_alive, 4),
        round(expected_order_value, 2), round(clv, 2) FROM ({members}) ORDER BY clv DESC, customer_id
        LIMIT {int(params.limit)}""", [run_id, *args]).fetchall()
    share = total / metrics["clv_total"] if metrics["clv_total"] else None
    metrics.update(among=params.among, among_customers=int(n), among_clv_total=float(total),
                   among_clv_mean=float(total) / n, among_share_of_clv=share)
    keys = ("customer_id", "expected_purchases", "p_alive", "expected_order_value", "clv")
    return ([dict(zip(keys, row, strict=True)) for row in top],
            f" Among {label}: {n:,} customers with a forecast, total value {money(float(total))} "
            f"({pct(share)} of all), mean {money(float(total) / n)}; the rows are theirs, highest first.")


def _metrics(params: ClvParams, as_of: date, run_id: str, fit: ClvFit, totals: Totals) -> dict:
    n, total = totals.customers, totals.clv_total
    return {
        "run_id": run_id, "as_of": as_of, "horizon_days": params.horizon_days, "customers": n,
        "repeat_customers": totals.repeat_customers,
        "fit_customers": fit.fit_customers, "fit_sampled": fit.fit_customers < n,
        "bgnbd": dict(zip(("r", "alpha", "a", "b"), fit.bgnbd.tolist(), strict=True)),
        "log_likelihood": fit.log_likelihood,
        "gamma_gamma": dict(zip(("p", "q", "v"), fit.gamma_gamma.tolist(), strict=True)),
        "gamma_gamma_log_likelihood": fit.gamma_gamma_log_likelihood,
        "gamma_gamma_customers": fit.gamma_gamma_customers,
        "frequency_value_correlation": fit.frequency_value_correlation,
        "expected_purchases_total": totals.purchases, "mean_p_alive": totals.mean_alive,
        "mean_expected_order_value": totals.mean_value, "clv_total": total, "clv_mean": total / n,
        "top_decile_share": totals.deciles[0] / total if total else None, "margin": params.margin,
        "discount_rate": params.discount_rate}


def _summary(params: ClvParams, label: str, metrics: dict, fit: ClvFit) -> str:
    n, total, bgnbd, gamma_gamma = metrics["customers"], metrics["clv_total"], fit.bgnbd, fit.gamma_gamma
    sample = (f" Both models were fitted on a seeded sample of {fit.fit_customers:,} of the {n:,} customers (seed "
              f"{params.seed}; Gamma-Gamma on its {fit.gamma_gamma_customers:,} repeat buyers with spend); every "
              "customer was scored." if metrics["fit_sampled"] else "")
    return (f"CLV over the next {params.horizon_days} days for {n:,} customers ({label}, purchases up to "
            f"{metrics['as_of']}): {metrics['expected_purchases_total']:,.0f} expected purchases, total value "
            f"{money(total)} (mean {money(total / n)} per customer"
            + (f", margin {pct(params.margin, 0)}" if params.margin < 1 else "")
            + (f", discounted at {pct(params.discount_rate, 1)} a year" if params.discount_rate else "")
            + f"). The top 10 % of customers hold {pct(metrics['top_decile_share'])} of it. "
            f"Mean P(alive) {pct(metrics['mean_p_alive'])}. BG/NBD r {bgnbd[0]:.4f}, alpha {bgnbd[1]:.4f}, "
            f"a {bgnbd[2]:.4f}, b {bgnbd[3]:.4f} (log-likelihood {fit.log_likelihood:,.1f}); Gamma-Gamma "
            f"p {gamma_gamma[0]:.2f}, q {gamma_gamma[1]:.2f}, v {gamma_gamma[2]:.2f}." + sample)


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
    with HistoryTable(con, history_sql(sql), [as_of, as_of]) as table:
        n, n_repeat = table.one("count(*), count(*) FILTER (WHERE x > 0)")
        if n < MIN_CUSTOMERS or n_repeat < MIN_REPEAT:
            raise ToolError(f"Too few customers to fit BG/NBD: {n} customers with purchases up to {as_of}, {n_repeat} "
                            f"of them repeat buyers (need at least {MIN_CUSTOMERS} and {MIN_REPEAT}). Use a later "
                            "as_of or more data.")
        scoring = params.model_copy(update={"among": None})  # who is reported is not part of the run: same scores
        fit, totals, run_id, note = (_in_memory(con, scoring, as_of, table) if n <= SAMPLE_ABOVE
                                     else _sampled(con, scoring, as_of, table, n))
    metrics = _metrics(params, as_of, run_id, fit, totals)
    top, among = _among(con, params, run_id, metrics) if params.among else (totals.top, "")
    chart_rows = [{"decile": f"D{k + 1}", "clv": round(value, 2)} for k, value in enumerate(totals.deciles)]
    return ClvResult(summary=_summary(params, label, metrics, fit) + among, metrics=metrics,
                     warnings=list(fit.warnings) + ([note] if note else []), data=top,
                     chart=charts.bar(chart_rows, "decile", "clv", "Predicted CLV by customer decile", sort="x"))
