"""attribute_conversions: credit conversions to channels with rule-based, exact Markov and exact Shapley models."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.common import money, pct, resolve_period
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import columns_of, quote, require_table

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley")
OTHER_SEPARATORS = ("→", "->", "|", ",", ";", "/", " - ", "+", ">")
MAX_SHAPLEY_CHANNELS = 16


class AttributionParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    model: Literal["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley",
                   "all"] = "all"
    """Attribution model; "all" compares every model side by side."""
    start: date | None = None
    """First day of conversions (default: 90 days before `end`). Ignored with `paths_table`."""
    end: date | None = None
    """Last day of conversions (default: the last day with data). Ignored with `paths_table`."""
    lookback_days: int = Field(30, ge=1, le=365)
    """Touches up to this many days before a conversion (or a non-converting journey's last touch) count."""
    level: Literal["channel", "campaign"] = "channel"
    """Credit channels or individual campaigns (warehouse journeys only)."""
    paths_table: str | None = None
    """A loaded table in ChannelAttribution's format: path ("a > b > c"), total_conversions,
    total_conversion_value and total_null (optional). Used instead of the warehouse journeys."""
    separator: str = Field(">", min_length=1, max_length=3)
    """Separator between channels in `paths_table` paths."""
    markov_order: int = Field(1, ge=1, le=3)
    """Order of the Markov chain (states are the last 1–3 channels)."""
    half_life: float = Field(7.0, gt=0, le=365)
    """Half-life of time-decay credit in days (in touches for a `paths_table`, which has no timestamps)."""


class AttributionResult(ToolResult):
    pass


@dataclass
class Paths:
    """Journeys as flat arrays: channel codes per touch, offsets and per-journey outcomes."""

    units: list[str]
    ch: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    conv: np.ndarray
    null: np.ndarray
    value: np.ndarray
    age: np.ndarray

    @property
    def jid(self) -> np.ndarray:
        return np.repeat(np.arange(self.starts.size), self.lengths)


def _boundaries(new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.flatnonzero(new)
    return starts, np.diff(np.r_[starts, new.size])


def _warehouse_paths(con, p: AttributionParams) -> tuple[Paths, date, date, int]:
    require_table(con, "touchpoints", ["journey_id", "customer_id", "touch_time", "channel"])
    require_table(con, "conversions", ["conversion_id", "customer_id", "conversion_time", "value"])
    start, end = resolve_period(con, p.start, p.end, default_days=90)
    col = "channel" if p.level == "channel" else "campaign_id"
    unit = f"coalesce(t.{col}::VARCHAR, '(none)')"
    units = [r[0] for r in con.execute(f"SELECT DISTINCT {unit} FROM touchpoints t ORDER BY 1").fetchall()]
    touch = f"t.touch_time, t.touchpoint_id, {unit} AS unit"
    window = "t.touch_time <= c.t_end AND t.touch_time >= c.t_end - to_days(CAST($lb AS INTEGER))"
    sql = f"""
    WITH c AS (SELECT conversion_id, journey_id, customer_id, conversion_time AS t_end, coalesce(value, 0) AS value
               FROM conversions WHERE conversion_time >= $s::TIMESTAMP AND conversion_time < $e::TIMESTAMP + INTERVAL 1 DAY),
    tc AS (SELECT 2 * c.conversion_id AS k, 1.0 AS conv, c.value, c.t_end, {touch}
           FROM c JOIN touchpoints t ON t.journey_id = c.journey_id WHERE {window}
           UNION ALL
           SELECT 2 * c.conversion_id, 1.0, c.value, c.t_end, {touch}
           FROM c JOIN touchpoints t ON t.customer_id = c.customer_id WHERE c.journey_id IS NULL AND {window}),
    nj AS (SELECT journey_id, max(touch_time) AS t_end FROM touchpoints
           WHERE journey_id NOT IN (SELECT journey_id FROM conversions WHERE journey_id IS NOT NULL)
           GROUP BY journey_id
           HAVING max(touch_time) >= $s::TIMESTAMP AND max(touch_time) < $e::TIMESTAMP + INTERVAL 1 DAY),
    tn AS (SELECT 2 * n.journey_id + 1 AS k, 0.0 AS conv, 0.0 AS value, n.t_end, {touch}
           FROM nj n JOIN touchpoints t ON t.journey_id = n.journey_id
           WHERE t.touch_time >= n.t_end - to_days(CAST($lb AS INTEGER))),
    u AS (SELECT unnest($units) AS unit, generate_subscripts($units, 1) - 1 AS code)
    SELECT k, conv, value, code, epoch(t_end - touch_time) / 86400.0 AS age
    FROM (SELECT * FROM tc UNION ALL SELECT * FROM tn) JOIN u USING (unit)
    ORDER BY k, touch_time, touchpoint_id  -- k even: a conversion's path; k odd: a non-converting journey
    """
    d = con.execute(sql, {"s": start, "e": end, "lb": p.lookback_days, "units": units}).fetchnumpy()
    converted = con.execute("SELECT count(*) FROM conversions WHERE conversion_time >= ?::TIMESTAMP "
                            "AND conversion_time < ?::TIMESTAMP + INTERVAL 1 DAY", [start, end]).fetchone()[0]
    key = np.asarray(d["k"])
    if key.size == 0:
        raise ToolError(f"No journeys with touches between {start} and {end} (lookback {p.lookback_days} days). "
                        "Choose a period with conversions or load touchpoints and conversions.")
    new = np.r_[True, key[1:] != key[:-1]]
    starts, lengths = _boundaries(new)
    conv = np.asarray(d["conv"], dtype=float)[starts]
    paths = Paths(units, np.asarray(d["code"], dtype=np.int64), starts, lengths, conv, 1.0 - conv,
                  np.asarray(d["value"], dtype=float)[starts], np.asarray(d["age"], dtype=float))
    return paths, start, end, int(converted - conv.sum())


def _table_paths(con, p: AttributionParams) -> tuple[Paths, list[str]]:
    table = p.paths_table
    require_table(con, table, ["path", "total_conversions"])
    have = columns_of(con, table)
    value = "total_conversion_value" if "total_conversion_value" in have else "0"
    null = "total_null" if "total_null" in have else "0"
    warnings = [] if null != "0" else [f"{table} has no total_null column: without non-converting paths, Markov "
                                       "and Shapley credit is less informative."]
    src = f"SELECT path::VARCHAR AS path FROM {quote(table)} WHERE path IS NOT NULL"
    n_paths, with_sep = con.execute(f"SELECT count(*), count_if(contains(path, $sep)) FROM ({src})",
                                    {"sep": p.separator}).fetchall()[0]
    if n_paths == 0:
        raise ToolError(f"{table} has no paths. Load a file with path;total_conversions;total_null columns.")
    if with_sep == 0:
        for other in OTHER_SEPARATORS:
            hits = con.execute(f"SELECT count_if(contains(path, $o)) FROM ({src})", {"o": other}).fetchall()[0][0]
            if other != p.separator and hits >= 0.3 * n_paths:
                raise ToolError(f"No path in {table} contains the separator {p.separator!r}, but {hits:,} of "
                                f"{n_paths:,} contain {other.strip()!r}. Pass separator={other.strip()!r}.")
        warnings.append(f"No path contains {p.separator!r}: every path is read as a single channel.")
    rows = con.sql(f"""SELECT coalesce(total_conversions, 0)::DOUBLE AS conv, coalesce({value}, 0)::DOUBLE AS value,
        coalesce({null}, 0)::DOUBLE AS nul, string_split(path::VARCHAR, $sep) AS toks FROM {quote(table)}
        WHERE path IS NOT NULL""", params={"sep": p.separator}).to_arrow_table()
    chunks = rows.column("toks").chunks
    raw_len = np.concatenate([np.diff(c.offsets.to_numpy()) for c in chunks]).astype(np.int64)
    encoded = [c.flatten().dictionary_encode() for c in chunks]  # trim and code each distinct token once
    names = [[u.strip(" ") for u in e.dictionary.to_pylist()] for e in encoded]
    units = sorted({u for chunk in names for u in chunk} - {""})
    where = {u: i for i, u in enumerate(units)}
    ch = np.concatenate([np.array([where.get(u, -1) for u in nm], dtype=np.int64)[e.indices.to_numpy()]
                         for e, nm in zip(encoded, names, strict=True) if len(e)])
    lengths = np.add.reduceat((ch >= 0).astype(np.int64), np.cumsum(raw_len) - raw_len)
    keep = lengths > 0
    if not keep.any():
        raise ToolError(f"{table}: the paths are empty after splitting on {p.separator!r}.")
    ch, lengths = ch[ch >= 0], lengths[keep]
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(ch.size) - np.repeat(starts, lengths)
    age = (np.repeat(lengths, lengths) - 1 - pos).astype(float)
    col = {k: rows.column(k).to_numpy()[keep] for k in ("conv", "value", "nul")}
    paths = Paths(units, ch, starts, lengths, col["conv"], col["nul"], col["value"], age)
    return paths, warnings


def _rule_based(ps: Paths, model: str, half_life: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-touch credit shares (summing to 1 per journey) → credited conversions and value per unit."""
    jid, n_units = ps.jid, len(ps.units)
    length = ps.lengths[jid]
    pos = np.arange(ps.ch.size) - ps.starts[jid]
    if model == "first_touch":
        share = (pos == 0).astype(float)
    elif model == "last_touch":
        share = (pos == length - 1).astype(float)
    elif model == "linear":  # each occurrence counts, as in ChannelAttribution
        share = 1.0 / length
    elif model == "position_based":
        ends = (pos == 0) | (pos == length - 1)
        share = np.where(length == 1, 1.0, np.where(length == 2, 0.5,
                                                    np.where(ends, 0.4, 0.2 / np.maximum(length - 2, 1))))
    else:  # time_decay
        w = np.power(0.5, ps.age / half_life)
        share = w / np.add.reduceat(w, ps.starts)[jid]
    conv = np.bincount(ps.ch, weights=share * ps.conv[jid], minlength=n_units)
    value = np.bincount(ps.ch, weights=share * ps.value[jid], minlength=n_units)
    return conv, value


def _states(ps: Paths, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Order-k states (sliding windows of k channels), consecutive repeats collapsed as in ChannelAttribution.

    Returns state per step, journey starts and lengths after collapsing, and the state × unit membership."""
    n_units = len(ps.units)
    if order == 1:
        st, members = ps.ch, np.eye(n_units, dtype=bool)
        jstart = ps.starts
    else:
        nwin = np.maximum(ps.lengths - order + 1, 1)
        wj = np.repeat(np.arange(nwin.size), nwin)
        first = ps.starts[wj] + np.arange(wj.size) - np.repeat(np.cumsum(nwin) - nwin, nwin)
        width = np.minimum(order, ps.lengths[wj])
        base = n_units + 1
        code = np.zeros(wj.size, dtype=np.int64)
        for j in range(order):
            digit = ps.ch[np.minimum(first + j, ps.ch.size - 1)] + 1
            code += np.where(j < width, digit, 0) * base ** j
        uniq, st = np.unique(code, return_inverse=True)
        members = np.zeros((uniq.size, n_units), dtype=bool)
        for j in range(order):
            digit = (uniq // base ** j) % base
            rows = np.flatnonzero(digit > 0)
            members[rows, digit[rows] - 1] = True
        jstart = np.cumsum(nwin) - nwin
    first_step = np.zeros(st.size, dtype=bool)
    first_step[jstart] = True
    keep = first_step | np.r_[True, st[1:] != st[:-1]]
    new_len = np.add.reduceat(keep.astype(np.int64), jstart)
    return st[keep], np.cumsum(new_len) - new_len, new_len, members


def _markov(ps: Paths, order: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact removal effects from the absorbing chain (start → states → conversion / null), no simulation."""
    import scipy.sparse as sp  # lazy: keeps `northstar` start-up fast
    from scipy.linalg import solve
    from scipy.sparse.linalg import splu

    st, starts, lengths, members = _states(ps, order)
    n_states = members.shape[0]
    weight = ps.conv + ps.null
    last = starts + lengths - 1
    step_w = np.repeat(weight, lengths)
    has_next = np.ones(st.size, dtype=bool)
    has_next[last] = False
    i = np.flatnonzero(has_next & (step_w > 0))
    if n_states <= 2048:  # dense counting is faster than building a COO matrix from millions of steps
        flat = np.bincount(st[i] * n_states + st[i + 1], weights=step_w[i], minlength=n_states * n_states)
        trans = sp.csr_matrix(flat.reshape(n_states, n_states))
    else:
        trans = sp.csr_matrix((step_w[i], (st[i], st[i + 1])), shape=(n_states, n_states))
    s0 = np.bincount(st[starts], weights=weight, minlength=n_states)
    to_conv = np.bincount(st[last], weights=ps.conv, minlength=n_states)
    to_value = np.bincount(st[last], weights=ps.value, minlength=n_states)
    out = np.asarray(trans.sum(axis=1)).ravel() + to_conv + np.bincount(st[last], weights=ps.null,
                                                                         minlength=n_states)
    inv = np.divide(1.0, out, out=np.zeros(n_states), where=out > 0)
    system = (sp.identity(n_states, format="csr") - sp.diags(inv) @ trans).T.tocsc()
    s0, r, rv = s0 / s0.sum(), to_conv * inv, to_value * inv

    def absorb(keep: np.ndarray) -> tuple[float, float]:
        a = system[keep][:, keep]
        visits = solve(a.toarray(), s0[keep]) if keep.sum() <= 600 else splu(a.tocsc()).solve(s0[keep])
        return float(visits @ r[keep]), float(visits @ rv[keep])

    p_conv, p_value = absorb(np.ones(n_states, dtype=bool))
    removal = np.zeros(len(ps.units))
    removal_value = np.zeros(len(ps.units))
    for k in range(len(ps.units)):
        if not members[:, k].any():
            continue
        pk, vk = absorb(~members[:, k])
        removal[k] = 1.0 - pk / p_conv if p_conv > 0 else 0.0
        removal_value[k] = 1.0 - vk / p_value if p_value > 0 else 0.0
    return np.clip(removal, 0.0, 1.0), np.clip(removal_value, 0.0, 1.0), p_conv


def _shapley(ps: Paths) -> tuple[np.ndarray, np.ndarray]:
    """Exact Shapley values where a coalition is worth the conversion rate (value per journey) of the journeys
    that touched only channels in it."""
    n = len(ps.units)
    mask = np.bitwise_or.reduceat(np.left_shift(1, ps.ch).astype(np.int64), ps.starts)
    size = 1 << n
    tables = [np.bincount(mask, weights=w, minlength=size) for w in (ps.conv + ps.null, ps.conv, ps.value)]
    for i in range(n):  # subset sums (zeta transform), one axis at a time
        for t in tables:
            view = t.reshape(-1, 2, 1 << i)
            view[:, 1, :] += view[:, 0, :]
    count, conv, value = tables
    rates = [np.divide(x, count, out=np.zeros(size), where=count > 0) for x in (conv, value)]
    popcount = np.bitwise_count(np.arange(size, dtype=np.int64))
    coef = np.array([1.0 / (n * math.comb(n - 1, s)) for s in range(n)])
    phis = []
    for rate in rates:
        phi = np.zeros(n)
        for i in range(n):
            view = rate.reshape(-1, 2, 1 << i)
            without = popcount.reshape(-1, 2, 1 << i)[:, 0, :]
            phi[i] = np.sum(coef[without] * (view[:, 1, :] - view[:, 0, :]))
        phis.append(phi)
    return phis[0], phis[1]


def _scale(credit: np.ndarray, total: float) -> np.ndarray:
    s = credit.sum()
    return credit / s * total if s > 0 else np.zeros_like(credit)


@register(example=AttributionParams(start=date(2026, 7, 1), end=date(2026, 9, 30)),
          key_metrics=("conversions", "value", "journeys", "conversion_probability"),
          requests=["Which channels drive our conversions?", "Run a Markov attribution model on our journeys",
                    "Compare first-touch, last-touch and linear attribution by channel",
                    "How much credit does email deserve for conversions last quarter?",
                    "What would we lose if we turned off display? removal effect",
                    "multi-touch attribution by channel", "Shapley value attribution of our marketing channels",
                    "Which campaigns get credit for conversions with a 14-day lookback?",
                    "Is last-click undervaluing social?", "attribute revenue to channels along the customer journey",
                    "removal effects by channel", "Does last-touch attribution give email too much credit?"])
def attribute_conversions(con: duckdb.DuckDBPyConnection, p: AttributionParams) -> AttributionResult:
    """Credit conversions and value to channels along customer journeys (rule-based, exact Markov, Shapley)."""
    warnings: list[str] = []
    if p.paths_table:
        try:
            ps, warnings = _table_paths(con, p)
        except duckdb.Error as exc:
            raise ToolError(f"{p.paths_table}: could not read the paths ({str(exc).splitlines()[0]}). It needs a "
                            "text column path and numeric total_conversions / total_null columns.") from exc
        period, key = "", "channel"
    else:
        ps, start, end, unmatched = _warehouse_paths(con, p)
        period, key = f" from {start} to {end}", p.level
        if unmatched > 0:
            warnings.append(f"{unmatched:,} conversions{period} had no touch in the {p.lookback_days}-day lookback "
                            "and get no channel credit.")
    total_conv, total_value = float(ps.conv.sum()), float(ps.value.sum())
    if total_conv <= 0:
        raise ToolError(f"No conversions{period} in the journeys: nothing to attribute.")
    models = list(MODELS) if p.model == "all" else [p.model]
    n_units = len(ps.units)
    if "shapley" in models and n_units > MAX_SHAPLEY_CHANNELS:
        if p.model == "shapley":
            raise ToolError(f"Exact Shapley needs at most {MAX_SHAPLEY_CHANNELS} channels; these journeys have "
                            f"{n_units}. Use level='channel' or the Markov model.")
        models.remove("shapley")
        warnings.append(f"Shapley skipped: {n_units} channels exceed the exact limit of {MAX_SHAPLEY_CHANNELS}.")
    credit: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    extra: dict[str, np.ndarray] = {}
    metrics: dict = {}
    for m in models:
        if m == "markov":
            removal, removal_value, p_conv = _markov(ps, p.markov_order)
            credit[m] = (_scale(removal, total_conv), _scale(removal_value, total_value))
            extra = {"removal_effect": removal, "value_removal_effect": removal_value}
            metrics.update(markov_order=p.markov_order, conversion_probability=p_conv,
                           removal_effects=dict(zip(ps.units, removal, strict=True)))
        elif m == "shapley":
            phi, phi_value = _shapley(ps)
            credit[m] = (_scale(phi, total_conv), _scale(phi_value, total_value))
            if (phi < 0).any():
                warnings.append("Shapley gives negative credit to " + ", ".join(
                    u for u, f in zip(ps.units, phi, strict=True) if f < 0)
                    + ": journeys with it convert less often than without it.")
        else:
            credit[m] = _rule_based(ps, m, p.half_life)
    rows = []
    for m in models:
        conv, value = credit[m]
        for k in np.argsort(-conv, kind="stable"):
            row = {key: ps.units[k], "model": m, "conversions": float(conv[k]), "value": float(value[k]),
                   "share": float(conv[k] / total_conv)}
            if m == "markov":
                row.update({name: float(arr[k]) for name, arr in extra.items()})
            rows.append(row)
    lead = "markov" if "markov" in models else models[0]
    conv = credit[lead][0]
    order = np.argsort(-conv, kind="stable")
    top = ", ".join(f"{ps.units[k]} {pct(conv[k] / total_conv)}" for k in order[:3])
    journeys = int(ps.starts.size)
    converting = int((ps.conv > 0).sum())
    label = f"Markov (order {p.markov_order})" if lead == "markov" else lead.replace("_", " ")
    summary = (f"{journeys:,} journeys{period} ({converting:,} converting paths, {money(total_conv)} conversions, "
               f"value {money(total_value)}). {label} credits {top}.")
    if lead == "markov":
        k = order[0]
        summary += (f" Removing {ps.units[k]} would lose {pct(extra['removal_effect'][k])} of conversions "
                    "(removal effect).")
    if "last_touch" in credit and lead != "last_touch":
        lt = credit["last_touch"][0]
        diff = (conv - lt) / total_conv
        k = int(np.argmax(np.abs(diff)))
        summary += (f" Versus last touch, {ps.units[k]} moves {100 * diff[k]:+.1f} pp "
                    f"({pct(lt[k] / total_conv)} → {pct(conv[k] / total_conv)}).")
    if "shapley" in credit and lead == "markov":
        sh = credit["shapley"][0]
        k = int(np.argmax(conv - sh))
        if (conv[k] - sh[k]) / total_conv > 0.05:
            summary += (f" Shapley, which compares conversion rates with and without each channel, gives "
                        f"{ps.units[k]} only {pct(sh[k] / total_conv)}: it is often on converting paths but adds "
                        "little to their conversion rate.")
    summary += " Attribution shows association along journeys, not incrementality; test causality with an experiment."
    metrics.update(journeys=journeys, converting_paths=converting, conversions=total_conv, value=total_value,
                   channels=n_units, models=models, lookback_days=None if p.paths_table else p.lookback_days,
                   by_model={m: dict(zip(ps.units, credit[m][0], strict=True)) for m in models},
                   value_by_model={m: dict(zip(ps.units, credit[m][1], strict=True)) for m in models})
    if not p.paths_table:
        metrics.update(start=start, end=end)
    if len(rows) > 200:
        warnings.append(f"{len(rows) - 200} rows not shown; metrics.by_model has every channel.")
    chart_rows = [{key: r[key], "model": r["model"], "conversions": round(r["conversions"], 2)} for r in rows]
    chart = charts.bar(chart_rows, key, "conversions", f"Attributed conversions by {key}",
                       color="model" if len(models) > 1 else None)
    return AttributionResult(summary=summary, data=rows, metrics=metrics, chart=chart, warnings=warnings)
