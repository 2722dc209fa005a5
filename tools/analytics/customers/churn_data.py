"""score_churn's data, in SQL: behaviour features per customer active at a cutoff, from data up to it only, for
everyone or for a seeded sample of customers (sampling.py), the churn labels after it, and how many customers are
active at each cutoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np


def features_sql(cutoff: date, active_days: int, sample: str | None = None, flag: str | None = None) -> str:
    """SQL of the features per customer active at `cutoff`, from data on or before `cutoff` only. `sample`: a
    table of customer_id (a seeded sample, sampling.py) keeping only those customers, applied to every table
    before it is aggregated; the prior open rate stays the population's. `flag`: such a table whose members are
    marked 1 in an extra column `_sampled`."""
    day = f"DATE '{cutoff.isoformat()}'"
    end = f"TIMESTAMP '{(cutoff + timedelta(days=1)).isoformat()}'"
    keep = f" AND customer_id IN (SELECT customer_id FROM {sample})" if sample else ""
    rate = (f"SELECT coalesce(count(*) FILTER (WHERE opened) / nullif(count(*), 0), 0) AS m FROM email_sends "
            f"WHERE sent_at < {end}") if sample else "SELECT coalesce(sum(opens) / nullif(sum(sends), 0), 0) AS m FROM em"
    flagged = ", (fl.customer_id IS NOT NULL)::INT AS _sampled" if flag else ""
    flag_join = f" LEFT JOIN {flag} fl ON fl.customer_id = o.customer_id" if flag else ""
    return f"""
        WITH o AS (SELECT customer_id, max(order_date) AS last_order, count(*) AS orders,
                     count(*) FILTER (WHERE order_date > {day} - 90) AS orders_90d,
                     count(*) FILTER (WHERE order_date > {day} - 365) AS orders_365d,
                     sum(revenue::DECIMAL(38, 6))::DOUBLE AS revenue,
                     coalesce(sum(revenue::DECIMAL(38, 6)) FILTER (WHERE order_date > {day} - 365), 0)
                       AS revenue_365d, avg((coalesce(discount, 0) > 0)::INT) AS discount_share
                   FROM orders WHERE order_date <= {day}{keep} GROUP BY customer_id
                   HAVING max(order_date) > {day} - {int(active_days)}),
        ev AS (SELECT customer_id,
                 count(*) FILTER (WHERE event_type IN ('page_view', 'app_session') AND event_time > {day} - 90)
                   AS sessions_90d,
                 max(event_time) FILTER (WHERE event_type IN ('page_view', 'app_session')) AS last_session,
                 count(*) FILTER (WHERE event_type = 'support_ticket' AND event_time > {day} - 180) AS tickets_180d,
                 count(*) FILTER (WHERE event_type = 'support_ticket') AS tickets
               FROM events WHERE event_time < {end} AND event_type IN ('page_view', 'app_session', 'support_ticket'){keep}
               GROUP BY customer_id),
        em AS (SELECT customer_id, count(*) FILTER (WHERE sent_at > {day} - 180) AS sends_180d,
                 count(*) FILTER (WHERE sent_at > {day} - 180 AND opened) AS opens_180d,
                 count(*) AS sends, count(*) FILTER (WHERE opened) AS opens,
                 bool_or(coalesce(unsubscribed, false)) AS unsub
               FROM email_sends WHERE sent_at < {end}{keep} GROUP BY customer_id),
        rate AS ({rate}),
        rv AS (SELECT customer_id, count(*) AS negative FROM reviews
               WHERE review_date <= {day} AND rating <= 2 AND customer_id IS NOT NULL{keep} GROUP BY customer_id)
        SELECT o.customer_id, date_diff('day', o.last_order, {day}) AS recency_days,
          date_diff('day', cu.signup_date, {day}) AS tenure_days, o.orders, o.orders_90d, o.orders_365d,
          o.revenue / o.orders AS aov, o.revenue_365d, o.discount_share,
          coalesce(ev.sessions_90d, 0) AS sessions_90d,
          coalesce(date_diff('day', ev.last_session::DATE, {day}), date_diff('day', cu.signup_date, {day}))
            AS days_since_session,
          coalesce(ev.tickets_180d, 0) AS support_tickets_180d, coalesce(ev.tickets, 0) AS support_tickets,
          (coalesce(em.opens_180d, 0) + 2 * rate.m) / (coalesce(em.sends_180d, 0) + 2) AS email_open_rate_180d,
          (coalesce(em.opens, 0) + 2 * rate.m) / (coalesce(em.sends, 0) + 2) AS email_open_rate,
          (coalesce(em.opens_180d, 0) + 2 * rate.m) / (coalesce(em.sends_180d, 0) + 2)
            - (coalesce(em.opens, 0) + 2 * rate.m) / (coalesce(em.sends, 0) + 2) AS email_open_trend,
          coalesce(em.unsub, false)::INT AS unsubscribed, coalesce(rv.negative, 0) AS negative_reviews,
          coalesce(cu.loyalty_member, false)::INT AS loyalty_member{flagged}
        FROM o JOIN customers cu ON cu.customer_id = o.customer_id AND cu.signup_date <= {day}
        LEFT JOIN ev ON ev.customer_id = o.customer_id LEFT JOIN em ON em.customer_id = o.customer_id
        LEFT JOIN rv ON rv.customer_id = o.customer_id CROSS JOIN rate{flag_join}
        ORDER BY o.customer_id"""


def churn_features(con: duckdb.DuckDBPyConnection, cutoff: date, active_days: int,
                   sample: str | None = None) -> dict[str, np.ndarray]:
    """Features per customer active at `cutoff`, from data on or before `cutoff` only (SQL)."""
    return con.execute(features_sql(cutoff, active_days, sample)).fetchnumpy()


def churn_labels(con: duckdb.DuckDBPyConnection, ids: np.ndarray, cutoff: date, horizon: int) -> np.ndarray:
    """1 when the customer placed no order in (cutoff, cutoff + horizon], in the order of `ids`."""
    bought = con.execute("""SELECT DISTINCT customer_id FROM orders
        WHERE order_date > ? AND order_date <= ?""", [cutoff, cutoff + timedelta(days=horizon)]).fetchnumpy()
    return (~np.isin(ids, bought["customer_id"])).astype(int)


@dataclass
class Snapshot:
    """Customers active at a cutoff and their features (columns named by `names`)."""

    ids: np.ndarray
    X: np.ndarray
    names: list[str]


def snapshot(con: duckdb.DuckDBPyConnection, cutoff: date, active_days: int, sample: str | None = None) -> Snapshot:
    features = churn_features(con, cutoff, active_days, sample)
    names = [k for k in features if k != "customer_id"]
    X = np.column_stack([np.asarray(features[k], dtype=float) for k in names])
    return Snapshot(np.asarray(features["customer_id"]), np.nan_to_num(X), names)


def active_counts(con: duckdb.DuckDBPyConnection, cutoffs: list[date], active_days: int) -> list[int]:
    """Customers that `features_sql` returns at each cutoff (an order in the `active_days` up to it, signed up by
    then), in one pass over orders."""
    last = ", ".join(f"max(order_date) FILTER (WHERE order_date <= DATE '{c.isoformat()}') AS last{k}"
                     for k, c in enumerate(cutoffs))
    counts = ", ".join(f"count(*) FILTER (WHERE last{k} > DATE '{c.isoformat()}' - {int(active_days)} "
                       f"AND cu.signup_date <= DATE '{c.isoformat()}')" for k, c in enumerate(cutoffs))
    return list(con.execute(f"""SELECT {counts} FROM (SELECT customer_id, {last} FROM orders
        WHERE order_date <= DATE '{max(cutoffs).isoformat()}' GROUP BY customer_id) o
        JOIN customers cu ON cu.customer_id = o.customer_id""").fetchall()[0])
