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
    distinct: Paths | None = None
    """The same journeys with identical paths merged (conversions, nulls and value summed), when known: the
    Markov chain is built from these, which is the same sums regrouped (a paths table of 1M rows has ~10k
    distinct paths)."""

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
           WHERE touch_time >= $s::TIMESTAMP  -- exact: a journey ending in the period has its last touch after $s
             AND journey_id NOT IN (SELECT journey_id FROM conversions WHERE journey_id IS NOT NULL)
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
    [total_null]) as `Paths`, with warnings about what it lacks. Only the distinct paths are split; every row
    takes its path's touches."""
    require_table(con, table, ["path", "total_conversions"])
    have = {c.lower() for c in columns_of(con, table)}  # DuckDB resolves the columns below in any case
    value = "total_conversion_value" if "total_conversion_value" in have else "0"
    null = "total_null" if "total_null" in have else "0"
    warnings = [] if null != "0" else [f"{table} has no total_null column: without non-converting paths, Markov "
                                       "and Shapley credit is less informative."]
    distinct, which, per_row = _read_rows(con, table, value, null)
    uses = np.bincount(which, minlength=len(distinct))
    warnings += _separator_warnings(distinct, uses, table, separator)
    return _paths_from_distinct(distinct, which, per_row, table, separator), warnings


def _read_rows(con, table: str, value: str, null: str):
    """The distinct path strings (Arrow), each row's index into them (rows in table order) and its conv / value /
    nul. DuckDB hashes the paths and numbers the distinct hashes, so only the distinct strings leave it; if two
    distinct paths share a 64-bit hash, the table has no rowid (a view) or it changed between the two queries,
    every row's string is read and dictionary-encoded instead."""
    import duckdb
    import pyarrow.compute as pc

    source = f"FROM {quote(table)} WHERE path IS NOT NULL"
    numbers = (f"coalesce(total_conversions, 0)::DOUBLE AS conv, coalesce({value}, 0)::DOUBLE AS value, "
               f"coalesce({null}, 0)::DOUBLE AS nul")
    try:
        rows = con.execute(f"""WITH r AS (SELECT rowid AS rid, hash(path::VARCHAR) AS h, {numbers} {source}),
            d AS (SELECT h, (row_number() OVER (ORDER BY h) - 1)::BIGINT AS id FROM (SELECT DISTINCT h FROM r))
            SELECT d.id, conv, value, nul FROM r JOIN d USING (h) ORDER BY rid""").fetchnumpy()
        paths = con.sql(f"SELECT path::VARCHAR AS path, hash(path::VARCHAR) AS h {source} GROUP BY 1 ORDER BY 2"
                        ).to_arrow_table()
        hashes, which = paths.column("h").to_numpy(), np.asarray(rows["id"], dtype=np.int64)
        if np.all(hashes[1:] != hashes[:-1]) and (which.max(initial=-1) + 1 == hashes.size):
            return (paths.column("path").combine_chunks(), which,
                    {k: np.asarray(rows[k], dtype=float) for k in ("conv", "value", "nul")})
    except duckdb.BinderException:  # no rowid: a view
        pass
    rows = con.sql(f"SELECT path::VARCHAR AS path, {numbers} {source}").to_arrow_table()
    encoded = pc.dictionary_encode(rows.column("path").combine_chunks())
    return (encoded.dictionary, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            {k: rows.column(k).to_numpy() for k in ("conv", "value", "nul")})


def _separator_warnings(distinct, uses: np.ndarray, table: str, separator: str) -> list[str]:
    """Fail when the paths use another separator; warn when they use none (one channel per path). `distinct`:
    the distinct path strings, `uses`: rows with each."""
    import pyarrow.compute as pc

    def rows_containing(sep: str) -> int:
        return int(uses[pc.match_substring(distinct, sep).to_numpy(zero_copy_only=False)].sum())

    n_paths = int(uses.sum())
    if n_paths == 0:
        raise ToolError(f"{table} has no paths. Load a file with path;total_conversions;total_null columns.")
    if rows_containing(separator) > 0:
        return []
    for other in OTHER_SEPARATORS:
        hits = rows_containing(other)
        if other != separator and hits >= 0.3 * n_paths:
            raise ToolError(f"No path in {table} contains the separator {separator!r}, but {hits:,} of "
                            f"{n_paths:,} contain {other.strip()!r}. Pass separator={other.strip()!r}.")
    return [f"No path contains {separator!r}: every path is read as a single channel."]


def _paths_from_distinct(distinct, which: np.ndarray, per_row: dict, table: str, separator: str) -> Paths:
    """Distinct path strings (Arrow), each row's index into them and its conv / value / nul → `Paths` per row,
    with `distinct` set; blank tokens (after trimming spaces) and empty paths dropped."""
    import pyarrow.compute as pc

    split = pc.split_pattern(distinct, separator)
    raw_lengths = np.diff(split.offsets.to_numpy()).astype(np.int64)
    tokens = pc.dictionary_encode(split.flatten())
    names = [u.strip(" ") for u in tokens.dictionary.to_pylist()]
    units = sorted(set(names) - {""})
    index_of = {u: i for i, u in enumerate(units)}
    code = np.array([index_of.get(u, -1) for u in names], dtype=np.int64)[tokens.indices.to_numpy(zero_copy_only=False)]
    path_touches = code[code >= 0]
    path_lengths = np.bincount(np.repeat(np.arange(len(distinct)), raw_lengths), weights=code >= 0,
                               minlength=len(distinct)).astype(np.int64)
    path_starts = np.cumsum(path_lengths) - path_lengths
    path_age = (np.repeat(path_starts + path_lengths - 1, path_lengths) - np.arange(path_touches.size)).astype(float)
    keep = path_lengths[which] > 0
    if not keep.any():
        raise ToolError(f"{table}: the paths are empty after splitting on {separator!r}.")
    conv, value, nul = (per_row[k] for k in ("conv", "value", "nul"))
    if not keep.all():
        which, conv, value, nul = which[keep], conv[keep], value[keep], nul[keep]
    lengths = path_lengths[which]
    starts = np.cumsum(lengths) - lengths
    used = np.flatnonzero(path_lengths > 0)
    slot = np.full(len(distinct), -1)
    slot[used] = np.arange(used.size)
    sums = [np.bincount(slot[which], weights=w, minlength=used.size) for w in (conv, nul, value)]
    d_lengths = path_lengths[used]
    d_at = np.repeat(path_starts[used] - (np.cumsum(d_lengths) - d_lengths), d_lengths)
    d_at += np.arange(d_at.size)
    merged = Paths(units, path_touches[d_at], np.cumsum(d_lengths) - d_lengths, d_lengths, sums[0], sums[1], sums[2],
                   path_age[d_at])
    return _RowPaths(units, starts, lengths, conv, nul, value, merged, (path_touches, path_age, path_starts[which]))


class _RowPaths(Paths):
    """`Paths` per table row whose `touches` and `age` (one entry per touch: 5M for 1M journeys) are copied from
    the distinct paths only when something reads them: the models work on `distinct`, the tool's metrics read
    only the per-row counts."""

    def __init__(self, units, starts, lengths, conversions, nulls, value, distinct, expand):
        self.units, self.starts, self.lengths, self.distinct = units, starts, lengths, distinct
        self.conversions, self.nulls, self.value = conversions, nulls, value
        self._expand = expand  # the distinct paths' touches and ages, and where each row's path starts in them

    def __getattr__(self, name: str):
        if name not in ("touches", "age"):
            raise AttributeError(name)
        touches, age, first = self.__dict__.pop("_expand")
        at = np.repeat(first - self.starts, self.lengths)  # each row's touches: its path's, in one gather
        at += np.arange(at.size)
        self.touches, self.age = touches[at], age[at]
        return getattr(self, name)
