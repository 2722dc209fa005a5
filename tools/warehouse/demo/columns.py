"""numpy arrays → Arrow columns → DuckDB rows: the plumbing every demo generator writes through.

Day offsets (from world.START) become Arrow dates and timestamps, integer codes become dictionary columns,
a dict of columns is staged as a DuckDB view for one INSERT, and `Tables` says which table rows go to and numbers
them across the blocks of a large world.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import numpy as np
import pyarrow as pa

from tools.warehouse.demo.world import START


class Tables:
    """Where a generator's rows go: the table each is written into (a large world's per-customer tables are filled
    under `prefix`, block by block, and swapped in at the end) and the next row id of each, so a block numbers its
    rows on from the block before."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._next: dict[str, int] = {}

    def name(self, table: str) -> str:
        """The table `table`'s rows are written into."""
        return self.prefix + table

    def first(self, table: str, n: int) -> int:
        """The first of `table`'s next `n` ids (1 in a fresh world), reserving all `n`."""
        first = self._next.get(table, 1)
        self._next[table] = first + n
        return first

    def take(self, table: str, n: int) -> np.ndarray:
        """The ids of `table`'s next `n` rows."""
        first = self.first(table, n)
        return np.arange(first, first + n, dtype=np.int64)


def dictionary(codes: np.ndarray, labels) -> pa.DictionaryArray:
    """Codes into `labels` as a dictionary column (DuckDB reads it as an ENUM-like string)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(list(labels)))


def timestamps(day: np.ndarray, seconds: np.ndarray) -> pa.Array:
    """Day offsets plus seconds into the day, as Arrow timestamps."""
    base = np.datetime64(START, "s")
    return pa.array(base + (day.astype(np.int64) * 86400 + seconds.astype(np.int64)).astype("timedelta64[s]"))


def dates(day: np.ndarray) -> pa.Array:
    """Day offsets as Arrow dates."""
    return pa.array(np.datetime64(START, "D") + day.astype("timedelta64[D]"))


@contextmanager
def staged(con: duckdb.DuckDBPyConnection, name: str, columns: dict) -> Iterator[None]:
    """Expose Arrow columns to SQL as the view `name` while the block runs."""
    con.register(name, pa.table(columns))
    try:
        yield
    finally:
        con.unregister(name)


def insert(con: duckdb.DuckDBPyConnection, table: str, columns: dict) -> None:
    """Append Arrow columns to a table (column names match the table's)."""
    with staged(con, "_stage", columns):
        names = ", ".join(f'"{name}"' for name in columns)
        con.execute(f'INSERT INTO "{table}" ({names}) SELECT {names} FROM _stage')
