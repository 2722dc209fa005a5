"""Journeys from SQL: the warehouse's touchpoints and conversions, or a loaded ChannelAttribution paths table,
read into `Paths` (flat arrays the models in models.py work on). SQL and array assembly only, no credit maths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from tools.registry import ToolError
from tools.warehouse import columns_of, quote, require_table

OTHER_SEPARATORS = ("→", "->", "|", ",", ";", "/", " - ", "+", ">")


@dataclass
class Paths:
    """Journeys as flat arrays: one entry per touch (`touches`, `age`), one per journey (the rest)."""

    units: list[str]          # channel (or campaign) names; `touches` holds indexes into this list
    touches: np.ndarray       # unit index of each touch, journey after journey, in time order
    starts: np.ndarray        # index in `touches` of each journey's first touch
    lengths: np.ndarray       # touches per journey
    conversions: np.ndarray   # conversions per journey (0/1 for warehouse journeys, a count for a paths table)
    nulls: np.ndarray         # non-conversions per journey (1 − conversions, or the table's total_null)
    value: np.ndarray         # conversion value per journey
    age: np.ndarray           # per touch: days before the journey's end (touches, for a paths table)

    @property
    def journey(self) -> np.ndarray:
        """The journey index of each touch."""
        return np.repeat(np.arange(self.starts.size), self.lengths)


def require_journey_tables(con) -> None:
    require_table(con, "touchpoints", ["journey_id", "customer_id", "touch_time", "channel"])
    require_table(con, "conversions", ["conversion_id", "customer_id", "conversion_time", "value"])


def count_conversions(con, start: date, end: date) -> int:
    return con.execute("SELECT count(*) FROM conversions WHERE conversion_time >= ?::TIMESTAMP "
                       "AND conversion_time < ?::TIMESTAMP + INTERVAL 1 DAY", [start, end]).fetchone()[0]


def warehouse_paths(con, start: date, end: date, lookback_days: int, level: str) -> Paths:
    """Each conversion's touches within the lookback (by journey, else by customer), and each non-converting
    journey ending in the period, with its touches within the lookback of its last touch."""
    column = "channel" if level == "channel" else "campaign_id"
    unit = f"coalesce(t.{column}::VARCHAR, '(none)')"
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
    rows = con.execute(sql, {"s": start, "e": end, "lb": lookback_days, "units": units}).fetchnumpy()
    key = np.asarray(rows["k"])
    if key.size == 0:
        raise ToolError(f"No journeys with touches between {start} and {end} (lookback {lookback_days} days). "
                        "Choose a period with conversions or load touchpoints and conversions.")
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lengths = np.diff(np.r_[starts, key.size])
    converted = np.asarray(rows["conv"], dtype=float)[starts]
    return Paths(units, np.asarray(rows["code"], dtype=np.int64), starts, lengths, converted, 1.0 - converted,
                 np.asarray(rows["value"], dtype=float)[starts], np.asarray(rows["age"], dtype=float))


def table_paths(con, table: str, separator: str) -> tuple[Paths, list[str]]:
    """A table in ChannelAttribution's format (path "a > b", total_conversions, [total_conversion_value],
    [total_null]) as `Paths`, with warnings about what it lacks."""
    require_table(con, table, ["path", "total_conversions"])
    have = {c.lower() for c in columns_of(con, table)}  # DuckDB resolves the columns below in any case
    value = "total_conversion_value" if "total_conversion_value" in have else "0"
    null = "total_null" if "total_null" in have else "0"
    warnings = [] if null != "0" else [f"{table} has no total_null column: without non-converting paths, Markov "
                                       "and Shapley credit is less informative."]
    warnings += _separator_warnings(con, table, separator)
    rows = con.sql(f"""SELECT coalesce(total_conversions, 0)::DOUBLE AS conv, coalesce({value}, 0)::DOUBLE AS value,
        coalesce({null}, 0)::DOUBLE AS nul, string_split(path::VARCHAR, $sep) AS toks FROM {quote(table)}
        WHERE path IS NOT NULL""", params={"sep": separator}).to_arrow_table()
    return _paths_from_split(rows, table, separator), warnings


def _separator_warnings(con, table: str, separator: str) -> list[str]:
    """Fail when the paths use another separator; warn when they use none (one channel per path)."""
    source = f"SELECT path::VARCHAR AS path FROM {quote(table)} WHERE path IS NOT NULL"
    n_paths, with_separator = con.execute(f"SELECT count(*), count_if(contains(path, $sep)) FROM ({source})",
                                          {"sep": separator}).fetchall()[0]
    if n_paths == 0:
        raise ToolError(f"{table} has no paths. Load a file with path;total_conversions;total_null columns.")
    if with_separator > 0:
        return []
    for other in OTHER_SEPARATORS:
        hits = con.execute(f"SELECT count_if(contains(path, $o)) FROM ({source})", {"o": other}).fetchall()[0][0]
        if other != separator and hits >= 0.3 * n_paths:
            raise ToolError(f"No path in {table} contains the separator {separator!r}, but {hits:,} of "
                            f"{n_paths:,} contain {other.strip()!r}. Pass separator={other.strip()!r}.")
    return [f"No path contains {separator!r}: every path is read as a single channel."]


def _paths_from_split(rows, table: str, separator: str) -> Paths:
    """Arrow rows (conv, value, nul, toks = the split path) → `Paths`; blank tokens and empty paths dropped."""
    chunks = rows.column("toks").chunks
    raw_lengths = np.concatenate([np.diff(c.offsets.to_numpy()) for c in chunks]).astype(np.int64)
    encoded = [c.flatten().dictionary_encode() for c in chunks]  # trim and code each distinct token once
    names = [[u.strip(" ") for u in e.dictionary.to_pylist()] for e in encoded]
    units = sorted({u for chunk in names for u in chunk} - {""})
    index_of = {u: i for i, u in enumerate(units)}
    touches = np.concatenate([np.array([index_of.get(u, -1) for u in chunk_names], dtype=np.int64)[e.indices.to_numpy()]
                              for e, chunk_names in zip(encoded, names, strict=True) if len(e)])
    lengths = np.add.reduceat((touches >= 0).astype(np.int64), np.cumsum(raw_lengths) - raw_lengths)
    keep = lengths > 0
    if not keep.any():
        raise ToolError(f"{table}: the paths are empty after splitting on {separator!r}.")
    touches, lengths = touches[touches >= 0], lengths[keep]
    starts = np.cumsum(lengths) - lengths
    position = np.arange(touches.size) - np.repeat(starts, lengths)
    age = (np.repeat(lengths, lengths) - 1 - position).astype(float)
    per_path = {k: rows.column(k).to_numpy()[keep] for k in ("conv", "value", "nul")}
    return Paths(units, touches, starts, lengths, per_path["conv"], per_path["nul"], per_path["value"], age)
