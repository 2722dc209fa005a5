"""Saved runs of the customer tools and the warehouse plumbing around them: checks that speak as a ToolError,
the `as_of` default, deterministic run ids and fingerprints, and saving a run's rows to an output table."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from tools.registry import ToolError
from tools.warehouse import WarehouseError, data_end, quote, require_table, resolve_params, transaction


def need(con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | tuple[str, ...] = ()) -> None:
    """require_table, but as a ToolError (the agent and CLI show the message, never a traceback)."""
    try:
        require_table(con, table, columns)
    except WarehouseError as exc:
        raise ToolError(str(exc)) from exc


def resolved(con: duckdb.DuckDBPyConnection, params: BaseModel, **names) -> BaseModel:
    """resolve_params (the table and columns a user named, spelled as in the warehouse), errors as a ToolError."""
    try:
        return resolve_params(con, params, **names)
    except WarehouseError as exc:
        raise ToolError(str(exc)) from exc


def ident(name: str) -> str:
    """A safely quoted identifier, or a ToolError explaining what a valid name looks like."""
    try:
        return quote(name)
    except WarehouseError as exc:
        raise ToolError(str(exc)) from exc


def resolve_as_of(con: duckdb.DuckDBPyConnection, as_of: date | None, last: date | None = None,
                  what: str = "the warehouse's data") -> date:
    """Default `as_of` to the last day with data; refuse dates after it (the future has no data)."""
    last = last if last is not None else data_end(con)
    if last is None:
        raise ToolError("There is no dated data yet. Run `northstar init --demo` or load your tables.")
    if as_of is None:
        return last
    if as_of > last:
        raise ToolError(f"as_of {as_of} is after the last day of {what} ({last}); use {last} or an earlier date.")
    return as_of


def make_run_id(prefix: str, params: BaseModel, *extra) -> str:
    """A deterministic run id from the arguments and a fingerprint of the rows a run saves: the same id means the
    same rows, so a re-run reuses them."""
    blob = params.model_dump_json() + "|" + "|".join(map(str, extra))
    return f"{prefix}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def fingerprint(*arrays) -> str:
    """A cheap digest of arrays (shapes, column sums, text), so a run id changes when its data or scores do."""
    parts = []
    for array in arrays:
        array = np.asarray(array)
        parts.append(str(array.shape))
        if array.dtype.kind in "biuf":
            sums = np.asarray(array, dtype=float).reshape(array.shape[0], -1).sum(axis=0)
            parts.append(np.round(sums, 6).tobytes().hex())
        else:
            parts.append(hashlib.sha1("\x1f".join(map(str, array.ravel().tolist())).encode()).hexdigest())
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def read_only(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return bool(rows and rows[0][0])  # fetchall completes the result, so register() may follow


def save_run(con: duckdb.DuckDBPyConnection, table: str, run_id: str, columns: dict) -> str | None:
    """Save `run_id`'s rows of an output table; returns a warning when they cannot be saved.

    Run ids are deterministic (arguments + fingerprint of the scores), so a run already saved in full is left as
    it is: re-running is free, and a large DELETE (slow on DuckDB's key index) is avoided."""
    if read_only(con):
        return f"The warehouse is open read-only, so {table} was not updated (run {run_id})."
    from tools.warehouse.saved_runs import record_run

    rows = len(next(iter(columns.values())))
    saved = con.execute(f"SELECT count(*) FROM {quote(table)} WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if saved == rows:
        record_run(con, table, run_id)  # the same result again: it is the newest
        return None
    stage = f"_stage_{table}"
    con.register(stage, pa.table(columns))
    try:
        names = ", ".join(f'"{c}"' for c in columns)
        with transaction(con):
            if saved:
                con.execute(f"DELETE FROM {quote(table)} WHERE run_id = ?", [run_id])
            con.execute(f"INSERT INTO {quote(table)} (run_id, {names}) SELECT ?, {names} FROM {stage}", [run_id])
            record_run(con, table, run_id)
    finally:
        con.unregister(stage)
    return None


class BatchSaver:
    """What `saving_run` yields: `write(columns)` appends one batch of a run's rows; `note` says why nothing was
    written (read-only warehouse), or is None."""

    def __init__(self, con: duckdb.DuckDBPyConnection | None, table: str, run_id: str, note: str | None = None):
        self.con, self.table, self.run_id, self.note = con, table, run_id, note
        self.stage = f"_stage_{table}_{uuid.uuid4().hex[:8]}"

    def write(self, columns: dict) -> None:
        if self.con is None:
            return
        names = ", ".join(f'"{c}"' for c in columns)
        self.con.register(self.stage, pa.table(columns))
        try:
            self.con.execute(f"INSERT INTO {quote(self.table)} (run_id, {names}) SELECT ?, {names} "
                             f"FROM {self.stage}", [self.run_id])
        finally:
            self.con.unregister(self.stage)


@contextmanager
def saving_run(con: duckdb.DuckDBPyConnection, table: str, run_id: str, rows: int) -> Iterator[BatchSaver]:
    """`save_run` for a run scored in batches: the batches are written in one transaction (all or nothing), so the
    run's rows never have to be in memory at once. A run already saved in full (same id, `rows` rows) is not
    rewritten: `write` does nothing then, and nothing is written to a read-only warehouse (`note` says so)."""
    if read_only(con):
        yield BatchSaver(None, table, run_id, f"The warehouse is open read-only, so {table} was not updated "
                                              f"(run {run_id}).")
        return
    from tools.warehouse.saved_runs import record_run

    saved = con.execute(f"SELECT count(*) FROM {quote(table)} WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if saved == rows:
        yield BatchSaver(None, table, run_id)
        record_run(con, table, run_id)
        return
    with transaction(con):
        if saved:
            con.execute(f"DELETE FROM {quote(table)} WHERE run_id = ?", [run_id])
        yield BatchSaver(con, table, run_id)
        record_run(con, table, run_id)
