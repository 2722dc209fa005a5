"""The Spark warehouse behind the connection the tools already use.

`SparkConnection` answers what tools do with a DuckDB connection. Each statement (DuckDB dialect) goes where it
belongs:
* governance state (`LOCAL`: audit log, outbox, saved-run times, schema version, checkpoints) and the database's
  own questions (`duckdb_databases()`, transactions) go to the home's DuckDB file, as today;
* `information_schema` questions are answered by a DuckDB mirror of the catalogue (empty tables with the engine's
  columns), so `table_names`, `columns_of` and the loader's checks need no second implementation;
* everything else runs in Spark: SELECTs transpiled by sqlglot (sqlmap.py); INSERT [OR REPLACE] / UPDATE /
  DELETE / CREATE / DROP / ALTER carried out on the Parquet or catalogue tables (spark_dml.py), since Parquet
  tables have no row-level DML; an export's DESCRIBE and COPY … TO (spark_copy.py). Between BEGIN and COMMIT of
  the home's file, the engine's writes are journalled and a ROLLBACK undoes them (local warehouses).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from tools.warehouse.backends.base import (
    EngineError,
    Result,
    duckdb_type,
    engine_error,
)
from tools.warehouse.backends.base import (
    duck_arrow as _duck_arrow,
)
from tools.warehouse.backends.spark_store import Journal, Store, session
from tools.warehouse.backends.sqlmap import _sqlglot, as_read_only, bind, parse, table_names_in, to_spark
from tools.warehouse.connection import WarehouseError, migrate
from tools.warehouse.schema import SYSTEM_TABLES, TABLES

ENGINE_RESULTS = frozenset({"audiences", "audience_members", "budget_plans", "campaign_launches", "campaign_members"})
"""What actions save (their results, like the analytics tools' runs): written to the engine's tables, next to the
data they are joined with (an audience's members with their orders)."""
LOCAL = frozenset((SYSTEM_TABLES - {"demo_truth", "demo_campaign_truth"} - ENGINE_RESULTS) | {"checkpoints"})
"""Tables that stay in the home's DuckDB file whatever the warehouse: governance state (audit log, outbox with
each executed action and its delivery, saved-run times, schema version; LangGraph's checkpoints and approvals
live in their own files)."""
_STORES: dict[tuple, Store] = {}
_MIRRORS: dict[int, tuple[int, duckdb.DuckDBPyConnection]] = {}
_VERSION = {"n": 0}


def connect(target: str, path: Path | str, *, read_only: bool = False, migrate_schema: bool = True):
    """The Spark warehouse for the home of `path` (whose DuckDB file keeps the governance state)."""
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"No warehouse at {path}. Run `northstar init --demo` or `northstar load` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    local = _local_store(path, migrate_schema)
    root = None if target.startswith("sc://") else path.parent / "spark"
    key = (target, str(root))
    if key not in _STORES:
        _STORES[key] = Store(session(target), root)
    con = SparkConnection(target, _STORES[key], local, read_only, str(path.resolve()))
    if migrate_schema and not read_only:
        from tools.warehouse.backends.spark_load import create_engine_table

        have = {n.lower() for n in con.store.names()}
        for t in TABLES:
            if t.name not in LOCAL and t.name not in have:
                create_engine_table(con, t)
                _VERSION["n"] += 1
    return con


_LOCALS: dict[str, list] = {}
_LOCALS_LOCK = threading.Lock()


def _local_store(path: Path, migrate_schema: bool) -> duckdb.DuckDBPyConnection:
    """A cursor on the process's one instance of the home's DuckDB file (the governance store), opened read-write:
    DuckDB refuses one file opened twice in a process with different settings. Read-only connections are
    refused writes to the engine by SparkConnection; the instance closes with its last cursor."""
    key = str(path.resolve())
    with _LOCALS_LOCK:
        entry = _LOCALS.get(key)
        if entry is None:
            try:
                instance = duckdb.connect(key)
            except duckdb.Error as exc:
                raise WarehouseError(f"Cannot open {path}: {exc}. Is another Northstar process writing to it?") \
                    from exc
            entry = _LOCALS[key] = [instance, 0, False]
        if migrate_schema and not entry[2]:
            migrate(entry[0])
            entry[2] = True
        entry[1] += 1
        return entry[0].cursor()


def _release_local(path: str) -> None:
    with _LOCALS_LOCK:
        entry = _LOCALS.get(path)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                entry[0].close()
                del _LOCALS[path]


class SparkConnection:
    """A DuckDB-like connection whose warehouse tables live in Spark."""

    engine = "spark"

    def __init__(self, target: str, store: Store, local: duckdb.DuckDBPyConnection, read_only: bool,
                 home_file: str | None = None):
        self.target, self.store, self.local, self.read_only = target, store, local, read_only
        self.home_file, self._closed = home_file, False
        self.trace: list[str] | None = None
        """When a list, every statement received is appended (the dialect round-trip test reads it)."""
        self.spark = store.spark
        self.group = f"northstar-{uuid.uuid4().hex[:12]}"
        self._last = None
        self._journal: Journal | None = None
        """The engine writes of the open transaction (undone by ROLLBACK)."""

    # ---- DuckDB's connection surface ----
    def execute(self, sql: str, params=None):
        self._last = self._run(sql, params)
        return self._last

    def sql(self, sql: str, params=None, **_):
        return self._run(sql, params)

    query = sql

    def table(self, name: str) -> Result:
        return self._run(f'SELECT * FROM "{name}"')

    def fetchall(self):
        return self._last.fetchall()

    def fetchone(self):
        return self._last.fetchone()

    def fetchdf(self):
        return self._last.fetchdf()

    df = fetchdf

    def fetchnumpy(self):
        return self._last.fetchnumpy()

    @property
    def description(self):
        return self._last.description if self._last is not None else None

    def cursor(self) -> SparkConnection:
        child = SparkConnection(self.target, self.store, self.local.cursor(), self.read_only)  # released by its owner
        child.trace = self.trace
        return child

    def register(self, name: str, data) -> SparkConnection:
        """A temporary view over Arrow, pandas or a record-batch reader (what DuckDB's register takes)."""
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        if isinstance(data, pa.Table):
            self.store.temp_view(name, self._frame_of(data))
            return self
        self.store.temp_view(name, self.spark.createDataFrame(data))
        return self

    def unregister(self, name: str) -> SparkConnection:
        self.store.drop(name) if name in self.store.temp else None
        return self

    def interrupt(self) -> None:
        """Cancel this connection's running Spark jobs (query_data's deadline)."""
        if self.target.startswith("sc://"):
            self.spark.interruptTag(self.group)
        else:
            self.spark.sparkContext.cancelJobGroup(self.group)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._end_journal(commit=False)  # closed inside a transaction: DuckDB rolls it back, and so does the engine
        self.local.close()  # the Spark session is the process's, shared by every connection
        if self.home_file:
            _release_local(self.home_file)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- routing ----
    def _run(self, sql: str, params=None):
        _, exp, _, _ = _sqlglot()
        tree = parse(bind(sql, params))
        if self.trace is not None:
            self.trace.append(tree.sql(dialect="duckdb"))
        if isinstance(tree, exp.Transaction | exp.Commit | exp.Rollback):
            return self._transaction(tree, sql)
        if isinstance(tree, exp.Command | exp.Set | exp.Pragma):
            return self.local.execute(sql, params)
        tables = table_names_in(tree)
        if any(t.db.lower() == "information_schema" for t in tree.find_all(exp.Table)):
            return self._mirror().execute(sql, params)
        functions = {f.name.lower() if isinstance(f, exp.Anonymous) else f.sql_name().lower()
                     for f in tree.find_all(exp.Func)}
        if not tables - {"duckdb_databases"} or any(f.startswith("duckdb_") or f == "current_database"
                                                   for f in functions):
            if self.read_only and "duckdb_databases" in functions:  # the governance file is shared read-write:
                return self.local.execute(as_read_only(tree))   # say what this connection may do
            return self.local.execute(sql, params)
        if tables <= LOCAL:
            return self.local.execute(sql, params)
        if isinstance(tree, exp.Describe | exp.Copy):  # an export's columns, then the export itself
            from tools.warehouse.backends import spark_copy

            self._lend(tables & LOCAL)
            self.store.ensure_views(tables)
            return spark_copy.copy_out(self, tree) if isinstance(tree, exp.Copy) else spark_copy.describe(self, tree.this)
        if tables & LOCAL:
            return self._mixed(tree, tables & LOCAL)
        return self._spark(tree)

    def _transaction(self, tree, sql: str):
        """BEGIN / COMMIT / ROLLBACK of the home's DuckDB file, the engine's writes in between following it."""
        _, exp, _, _ = _sqlglot()
        try:
            result = self.local.execute(sql)
        except Exception:
            if not isinstance(tree, exp.Transaction):  # a failed COMMIT leaves the file as before: the engine too
                self._end_journal(commit=False)
            raise
        if isinstance(tree, exp.Transaction):
            self._journal = Journal(self.store)
        else:
            self._end_journal(commit=isinstance(tree, exp.Commit))
        return result

    def _end_journal(self, commit: bool) -> None:
        if self._journal is not None:
            journal, self._journal = self._journal, None
            journal.commit() if commit else journal.rollback()
            _VERSION["n"] += 1

    def _mixed(self, tree, local: set[str]):
        """A statement over governance tables and warehouse tables: the governance tables' rows (small: saved-run
        times, the outbox) are lent to Spark as temporary views; rows for a governance table come back to it."""
        _, exp, _, _ = _sqlglot()
        self._lend(local)
        target = tree.this.this if isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Schema) else tree.this
        if isinstance(tree, exp.Insert) and target.name.lower() in LOCAL and isinstance(tree.expression, exp.Query):
            rows = self._arrow(self._frame(to_spark(tree.expression)))
            self.local.register("__from_engine", rows)
            try:
                moved = tree.copy()
                moved.set("expression", exp.select("*").from_("__from_engine"))
                return self.local.execute(moved.sql(dialect="duckdb"))
            finally:
                self.local.unregister("__from_engine")
        if isinstance(tree, exp.Query) or (isinstance(tree, exp.Insert) and target.name.lower() not in LOCAL):
            return self._spark(tree)
        raise WarehouseError(f"{type(tree).__name__.upper()} of governance tables ({', '.join(sorted(local))}) "
                             "that reads warehouse tables is not supported on Spark; select the rows first.")

    def _lend(self, local: set[str]) -> None:
        for name in sorted(local):
            rows = _duck_arrow(self.local, f'SELECT * FROM "{name}"')
            self.store.temp_view(name, self._frame_of(rows))

    def _frame_of(self, rows: pa.Table):
        """A Spark DataFrame of Arrow rows (an empty one keeps its columns)."""
        if rows.num_rows:
            return self.spark.createDataFrame(rows)
        from tools.warehouse.backends.spark_store import SPARK_TYPES

        ddl = ", ".join(f"`{f.name}` {SPARK_TYPES.get(duckdb_type(f.type), 'string')}" for f in rows.schema)
        return self.spark.createDataFrame([], ddl)

    def _mirror(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB catalogue of the warehouse: every table with its columns and no rows (rebuilt after DDL)."""
        cached = _MIRRORS.get(id(self.store))
        if cached and cached[0] == _VERSION["n"]:
            return cached[1]
        mirror = duckdb.connect(":memory:")
        for name, schema in self.store.schemas().items():
            if name.lower() not in LOCAL:
                cols = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in schema)
                mirror.execute(f'CREATE TABLE "{name}" ({cols})')
        rows = self.local.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                                  "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall()
        by_table: dict[str, list[str]] = {}
        for table, column, type_ in rows:
            if table in LOCAL:
                by_table.setdefault(table, []).append(f'"{column}" {type_}')
        for table, cols in by_table.items():
            mirror.execute(f'CREATE TABLE "{table}" ({", ".join(cols)})')
        _MIRRORS[id(self.store)] = (_VERSION["n"], mirror)
        return mirror.cursor()

    def _spark(self, tree):
        _, exp, _, _ = _sqlglot()
        self.store.ensure_views(table_names_in(tree))
        if isinstance(tree, exp.Query):
            return Result(self._arrow(self._frame(to_spark(tree))))
        if self.read_only:
            raise EngineError("The warehouse is open read-only; nothing was written.")
        from tools.warehouse.backends import spark_dml

        self.store.journal(self._journal)
        try:
            spark_dml.apply(self, tree)
        finally:
            self.store.journal(None)
        _VERSION["n"] += 1
        return Result(None)

    def _frame(self, spark_sql: str):
        try:
            return self.spark.sql(spark_sql)
        except Exception as exc:  # noqa: BLE001 - pyspark's errors become DuckDB's classes
            raise engine_error(exc, spark_sql) from exc

    def _arrow(self, df) -> pa.Table:
        try:
            if self.target.startswith("sc://"):
                self.spark.addTag(self.group)
                try:
                    return df.toArrow()
                finally:
                    self.spark.removeTag(self.group)
            self.spark.sparkContext.setJobGroup(self.group, "northstar", interruptOnCancel=True)
            return df.toArrow()
        except Exception as exc:  # noqa: BLE001
            raise engine_error(exc) from exc

    # ---- the admin entry points that cannot be plain SQL ----
    def load_file(self, table, path, mode="append", **kw):
        from tools.warehouse.backends.spark_load import load_file

        return load_file(self, table, path, mode, **kw)

    def generate_demo(self, customers: int, seed: int) -> dict[str, int]:
        from tools.warehouse.backends.spark_load import generate_demo

        return generate_demo(self, customers, seed)
