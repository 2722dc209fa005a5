"""predict_clv's fit and scoring at any size (the maths is in clv_models.py, the tool in clv.py).

The per-customer history is computed once, as a temporary table in the engine (`HistoryTable`). Up to
`clv.SAMPLE_ABOVE` customers it is read whole and both models are fitted on everyone. Above, the models are fitted
on a seeded sample drawn in the engine (`sampling.py`: the same customers on DuckDB and Spark), and every customer
is scored in batches of `BATCH_ROWS` streamed from the engine and written back to `clv_scores` batch by batch
(`runs.saving_run`), so memory holds one batch of history and scores, plus one float per customer (the CLV values
the decile split ranks).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from tools.analytics.customers.clv_models import (
    bgnbd_ll_total,
    conditional_expected_purchases,
    expected_order_value,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
)
from tools.analytics.customers.scoring import fixed_batches
from tools.registry import ToolError

MIN_REPEAT = 20
BATCH_ROWS = 250_000
"""Customers scored per batch above the sampling threshold (≈ 40 MB of working arrays)."""
WEEKS = "cid, x, tx_days / 7.0 AS t_x, age_days / 7.0 AS T, zbar"
"""The history in weeks, as the models read it."""


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
        return cls(np.asarray(columns["cid"]), *(np.asarray(columns[k]).astype(float)
                                                  for k in ("x", "t_x", "T", "zbar")))

    @classmethod
    def from_table(cls, table: pa.Table) -> History:
        return cls.from_columns({name: table.column(name).to_numpy() for name in table.column_names})


@dataclass
class ClvFit:
    """Both models' maximum-likelihood parameters, what they were fitted on, and what the fit warns about."""

    bgnbd: np.ndarray
    """r, alpha, a, b."""
    gamma_gamma: np.ndarray
    """p, q, v."""
    gamma_gamma_log_likelihood: float
    gamma_gamma_customers: int
    fit_customers: int
    """Customers BG/NBD was fitted on: all of them, or the seeded sample's size."""
    log_likelihood: float = 0.0
    """BG/NBD log-likelihood of every customer at the fitted parameters."""
    frequency_value_correlation: float = 0.0
    warnings: list[str] = field(default_factory=list)


def fit_models(history: History) -> ClvFit:
    """BG/NBD on every row of `history`, Gamma-Gamma on its repeat customers with positive spend."""
    x, zbar = history.x, history.zbar
    bgnbd, _ = fit_bgnbd(x, history.t_x, history.T)
    spenders = np.flatnonzero((x > 0) & (zbar > 0))
    if spenders.size < MIN_REPEAT:
        raise ToolError(f"Too few repeat customers with positive spend ({spenders.size}) to fit Gamma-Gamma.")
    gamma_gamma, gg_ll = fit_gamma_gamma(x[spenders], zbar[spenders])
    return ClvFit(bgnbd, gamma_gamma, gg_ll, int(spenders.size), int(x.size))


def fit_warnings(repeat: int, spenders: int, q: float, correlation: float) -> list[str]:
    warnings = []
    if repeat > spenders:
        warnings.append(f"{repeat - spenders} repeat customers with zero or negative spend were left out of the "
                        "Gamma-Gamma fit.")
    if q <= 1:
        warnings.append("Gamma-Gamma q ≤ 1: one-time buyers get the observed mean order value and CLV is less "
                        "certain; treat it with caution.")
    if abs(correlation) > 0.3:
        warnings.append(f"Purchase frequency and order value are correlated (r = {correlation:.2f}); Gamma-Gamma "
                        "assumes they are independent, so CLV may be biased.")
    return warnings


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


def forecast(params, history: History, fit: ClvFit, mean_repeat_value: float) -> Forecast:
    """`params`: horizon_days, margin and discount_rate (ClvParams); `mean_repeat_value` is the population's mean
    repeat spend, which one-time buyers get when Gamma-Gamma's q ≤ 1."""
    x, t_x, T, zbar = history.x, history.t_x, history.T, history.zbar
    purchases = conditional_expected_purchases(fit.bgnbd, params.horizon_days / 7.0, x, t_x, T)
    alive = p_alive(fit.bgnbd, x, t_x, T)
    value = expected_order_value(fit.gamma_gamma, x, zbar)
    if fit.gamma_gamma[1] <= 1:  # the population mean p·v/(q − 1) does not exist: use the observed mean repeat value
        value = np.where(x > 0, value, mean_repeat_value)
    discounted = (_discounted_purchases(fit.bgnbd, history, params.horizon_days, params.discount_rate)
                  if params.discount_rate > 0 else purchases)
    return Forecast(purchases, alive, value, params.margin * value * discounted)


def rows(history: History, forecast: Forecast, ranked: np.ndarray) -> list[dict]:
    return [{"customer_id": str(history.cid[i]), "repeat_purchases": int(history.x[i]),
             "weeks_since_last": round(history.T[i] - history.t_x[i], 2),
             "expected_purchases": round(float(forecast.purchases[i]), 4),
             "p_alive": round(float(forecast.alive[i]), 4),
             "expected_order_value": round(float(forecast.value[i]), 2), "clv": round(float(forecast.clv[i]), 2)}
            for i in ranked]


@dataclass
class Totals:
    """What the result reports of every customer's forecast (summed in customer order, so reproducible)."""

    customers: int
    repeat_customers: int
    purchases: float
    mean_alive: float
    mean_value: float
    clv_total: float
    deciles: list[float]
    """CLV of each tenth of the customers ranked by CLV, the highest first."""
    top: list[dict]
    """The rows returned: the customers with the highest CLV."""


def decile_sums(clv_descending: np.ndarray) -> list[float]:
    return [float(part.sum()) for part in np.array_split(clv_descending, 10)]


# ---- above the threshold: the history stays in the engine ----------------------------------------------------

class HistoryTable:
    """The per-customer history materialised once as a temporary table, read through a cursor of its own: a
    DuckDB temporary table belongs to its connection, and the scores are written on `con` while batches stream
    from this cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sql: str, params: list):
        self.cursor = con.cursor()
        self.name = f"_clv_history_{uuid.uuid4().hex[:12]}"
        try:
            self.cursor.execute(f"CREATE TEMP TABLE {self.name} AS {sql}", params)
        except BaseException:
            self.cursor.close()
            raise

    def __enter__(self) -> HistoryTable:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
        finally:
            self.cursor.close()

    def one(self, select: str) -> tuple:
        return self.cursor.execute(f"SELECT {select} FROM {self.name}").fetchall()[0]

    def fetch(self, where: str = "TRUE") -> History:
        return History.from_columns(self.cursor.execute(f"SELECT {WEEKS} FROM {self.name} WHERE {where} "
                                                        "ORDER BY cid").fetchnumpy())

    def batches(self, rows: int):
        """Every customer in cid order, exactly `rows` at a time (the last batch fewer), streamed: the engine
        never hands over the whole result, and fixed batches keep sums over them the same on every run."""
        return fixed_batches(self.cursor.sql(f"SELECT {WEEKS} FROM {self.name} ORDER BY cid").to_arrow_reader(rows),
                             rows)


class _Moments:
    """Count, means and co-moments of (x, zbar) merged batch by batch (Chan et al.), for their correlation."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, np.zeros(2), np.zeros((2, 2))

    def add(self, x: np.ndarray, z: np.ndarray) -> None:
        if not x.size:
            return
        data = np.column_stack([x, z])
        n, mean = x.size, data.mean(axis=0)
        centred = data - mean
        delta, total = mean - self.mean, self.n + n
        self.m2 = self.m2 + centred.T @ centred + np.outer(delta, delta) * self.n * n / total
        self.mean, self.n = self.mean + delta * n / total, total

    def correlation(self) -> float:
        if self.n <= 2 or self.m2[0, 0] <= 0 or self.m2[1, 1] <= 0:
            return 0.0
        return float(self.m2[0, 1] / np.sqrt(self.m2[0, 0] * self.m2[1, 1]))


def score_in_batches(table: HistoryTable, params, fit: ClvFit, mean_repeat_value: float, limit: int,
                     write) -> Totals:
    """Score every customer of `table` batch by batch; `write(columns)` saves each batch's scores. Fills the fit's
    log-likelihood (every customer) and frequency-value correlation as the batches pass."""
    n = repeat = 0
    purchases = alive = value = ll = 0.0
    moments, clv_parts = _Moments(), []
    top: dict[str, np.ndarray] | None = None
    for batch in table.batches(BATCH_ROWS):
        history = History.from_table(batch)
        scored = forecast(params, history, fit, mean_repeat_value)
        write({"customer_id": batch.column("cid").cast(pa.string()), "expected_purchases": scored.purchases,
               "p_alive": scored.alive, "expected_order_value": scored.value, "clv": scored.clv})
        ll += bgnbd_ll_total(fit.bgnbd, history.x, history.t_x, history.T)
        positive = (history.x > 0) & (history.zbar > 0)
        moments.add(history.x[positive], history.zbar[positive])
        purchases += float(scored.purchases.sum())
        alive += float(scored.alive.sum())
        value += float(scored.value.sum())
        repeat += int((history.x > 0).sum())
        best = np.lexsort((np.arange(history.x.size), -scored.clv))[:limit]
        batch_top = {"position": n + best, "clv_key": scored.clv[best],
                     "row": np.array(rows(history, scored, best) + [None], dtype=object)[:-1]}
        top = batch_top if top is None else {k: np.concatenate([top[k], batch_top[k]]) for k in top}
        keep = np.lexsort((top["position"], -top["clv_key"]))[:limit]
        top = {k: v[keep] for k, v in top.items()}
        clv_parts.append(scored.clv)
        n += history.x.size
    fit.log_likelihood, fit.frequency_value_correlation = ll, moments.correlation()
    clv = np.concatenate(clv_parts)
    return Totals(n, repeat, purchases, alive / n, value / n, float(clv.sum()), decile_sums(np.sort(clv)[::-1]),
                  list(top["row"]) if top is not None else [])
