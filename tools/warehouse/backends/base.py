"""What the tools use of a DuckDB connection, for an engine that is not DuckDB.

Tools receive a connection and call `execute(sql, params)` / `sql(sql, params=…)` with SQL in DuckDB's dialect,
then read the result with `fetchall`, `fetchone`, `fetchdf`/`df`, `fetchnumpy`, `arrow`/`to_arrow_table`/
`fetch_arrow_table`, `to_arrow_reader` and `description`. `Result` offers exactly that over an Arrow table, so a
backend only has to turn a statement into Arrow (`Backend.arrow`), list tables and columns and write a table.
Errors keep DuckDB's exception classes (`EngineError` is a `duckdb.Error`), so a tool's `except duckdb.Error`
turns an engine's failure into the same clear ToolError as today.
"""

from __future__ import annotations

from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa

ARROW_TO_DUCKDB = {"int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
                   "float": "FLOAT", "double": "DOUBLE", "bool": "BOOLEAN", "string": "VARCHAR",
                   "large_string": "VARCHAR", "date32[day]": "DATE", "binary": "BLOB", "null": "INTEGER"}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB name of an Arrow type (what `columns_of` and `is_numeric` expect)."""
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz is None else "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    return ARROW_TO_DUCKDB.get(str(arrow_type), "VARCHAR")


class EngineError(duckdb.Error):
    """The engine refused or failed a statement (the message is the engine's first line)."""


class EngineBinderError(duckdb.BinderException):
    """A name the engine could not resolve (unknown column or table): DuckDB's BinderException."""


class EngineInterrupted(duckdb.InterruptException):
    """The statement was cancelled (a deadline passed)."""


class Result:
    """A finished statement's rows, read the ways DuckDB's results are read."""

    def __init__(self, table: pa.Table | None):
        self.table = table if table is not None else pa.table({})
        self._pos = 0

    # ---- shape ----
    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @property
    def description(self) -> list[tuple]:
        return [(f.name, duckdb_type(f.type), None, None, None, None, None) for f in self.table.schema]

    @property
    def types(self) -> list[str]:
        return [duckdb_type(f.type) for f in self.table.schema]

    # ---- rows ----
    def fetchall(self) -> list[tuple]:
        rows = self._rows(self._pos, self.table.num_rows)
        self._pos = self.table.num_rows
        return rows

    def fetchone(self) -> tuple | None:
        if self._pos >= self.table.num_rows:
            return None
        self._pos += 1
        return self._rows(self._pos - 1, self._pos)[0]

    def fetchmany(self, size: int = 1) -> list[tuple]:
        end = min(self.table.num_rows, self._pos + size)
        rows, self._pos = self._rows(self._pos, end), end
        return rows

    def _rows(self, start: int, end: int) -> list[tuple]:
        part = self.table.slice(start, end - start)
        return list(zip(*(c.to_pylist() for c in part.columns), strict=True)) if part.num_columns else []

    # ---- whole columns ----
    def fetchdf(self):
        return self.table.to_pandas()

    df = fetchdf

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        out = {}
        for name, col in zip(self.table.column_names, self.table.columns, strict=True):
            if pa.types.is_date(col.type):  # DuckDB gives dates as datetime64[us], decimals as float64
                col = col.cast(pa.timestamp("us"))
            elif pa.types.is_decimal(col.type):
                col = col.cast(pa.float64())
            out[name] = col.to_numpy(zero_copy_only=False) if col.null_count == 0 else _masked(col)
        return out

    def arrow(self) -> pa.Table:
        return self.table

    fetch_arrow_table = to_arrow_table = arrow

    def to_arrow_reader(self, batch_size: int = 100_000) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.table.schema, self.table.to_batches(batch_size))

    fetch_record_batch = to_arrow_reader

    def close(self) -> None:
        self._pos = self.table.num_rows


def _masked(col: pa.ChunkedArray) -> np.ma.MaskedArray:
    """Nulls as a mask, as DuckDB's fetchnumpy gives them."""
    mask = col.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
        filled = col.fill_null(False if pa.types.is_boolean(col.type) else 0).to_numpy(zero_copy_only=False)
    else:
        filled = col.to_numpy(zero_copy_only=False)
    return np.ma.masked_array(filled, mask=mask)


def duck_arrow(con, sql: str) -> pa.Table:
    """All rows of a DuckDB statement as Arrow (DuckDB's note about the extra copy does not apply: it is needed)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return con.execute(sql).to_arrow_table()


class Backend(Protocol):
    """An engine behind the tools' connection: a statement in, Arrow out; its tables listed and written."""

    def arrow(self, sql: str, params=None) -> pa.Table: ...

    def tables(self) -> dict[str, pa.Schema]: ...

    def write(self, name: str, data, mode: str = "replace") -> None: ...


def engine_error(exc: Exception, sql: str | None = None) -> duckdb.Error:
    """A Spark failure as the DuckDB exception a tool already handles, with the engine's first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    name = type(exc).__name__
    if "UNRESOLVED_COLUMN" in text:
        import re

        m = re.search(r"name `([^`]+)`", text)
        column = m.group(1).split("`.`")[-1] if m else "?"
        return EngineBinderError(f'Binder Error: Referenced column "{column}" not found ({text})')
    if "TABLE_OR_VIEW_NOT_FOUND" in text:
        return EngineBinderError(f"Binder Error: {text}")
    if "cancel" in text.lower() or name in ("KeyboardInterrupt",):
        return EngineInterrupted(f"INTERRUPT Error: {text}")
    return EngineError(f"Spark: {text}")
