"""The Spark session (one per process and target) and the warehouse's tables in it.

`local[N]`: each table is a folder of Parquet files under the home (`<home>/spark/<table>`), read through a temporary
view of the same name. A rewrite goes to a new folder that then replaces the old one (Spark cannot overwrite files
it is reading), so a failed write leaves the table as it was. `sc://host:port` (Spark Connect, Databricks): the
tables are the cluster's catalog tables of the current database, written with `saveAsTable`.

A transaction of the home's DuckDB file (an action's writes and its outbox row) also covers the engine's tables on
a local warehouse: while a `Journal` is active, appended files are noted and replaced folders kept aside, so a
ROLLBACK puts every table back as it was and a COMMIT deletes what was kept.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

import pyarrow as pa

from tools.warehouse.connection import WarehouseError

_SESSIONS: dict[str, object] = {}
ARROW_TYPES = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
               "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"), "BOOLEAN": pa.bool_()}
_LOCK = threading.RLock()
SPARK_TYPES = {"BIGINT": "bigint", "INTEGER": "int", "DOUBLE": "double", "VARCHAR": "string", "DATE": "date",
               "TIMESTAMP": "timestamp_ntz", "BOOLEAN": "boolean"}


def session(target: str):
    """The process's Spark session for `target` (`local[N]` or `sc://…`), started on first use."""
    with _LOCK:
        if target in _SESSIONS:
            return _SESSIONS[target]
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - pyspark is in the lock file
            raise WarehouseError("NORTHSTAR_WAREHOUSE=spark:… needs pyspark (`uv sync`).") from exc
        conf = {"spark.sql.session.timeZone": "UTC", "spark.sql.timestampType": "TIMESTAMP_NTZ",
                "spark.sql.execution.arrow.pyspark.enabled": "true", "spark.sql.ansi.enabled": "false",
                "spark.sql.caseSensitive": "false"}
        if target.startswith("sc://"):
            _connect_client(target)
            builder = SparkSession.builder.remote(target)
        else:
            if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
                raise WarehouseError("NORTHSTAR_WAREHOUSE=spark:local[…] needs Java 17 or later: install it (e.g. "
                                     "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME.")
            cores = target[len("local["):-1] if target.startswith("local[") else "1"
            conf |= {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                     "spark.sql.shuffle.partitions": str(max(2, 2 * int(cores)) if cores.isdigit() else 4),
                     "spark.driver.extraJavaOptions": "-Dlog4j2.level=ERROR",
                     "spark.sql.adaptive.enabled": "true"}
            builder = SparkSession.builder.master(target).appName("northstar")
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        if not target.startswith("sc://"):
            spark.sparkContext.setLogLevel("ERROR")
        _quiet()
        _SESSIONS[target] = spark
        return spark


def _connect_client(target: str) -> None:
    """Spark Connect's client needs extra packages, and retries an unreachable server for minutes: check both
    first and say what to do."""
    import socket

    try:
        from pyspark.sql.connect.utils import check_dependencies

        check_dependencies("northstar")
    except ImportError as exc:
        raise WarehouseError(f"NORTHSTAR_WAREHOUSE=spark:{target} needs Spark Connect's client: {exc} "
                             "(`pyspark[connect]` in pyproject.toml, then `uv sync`).") from exc
    host, _, port = target[len("sc://"):].split("/", 1)[0].partition(":")
    try:
        socket.create_connection((host, int(port or 15002)), timeout=10).close()
    except OSError as exc:
        raise WarehouseError(f"Cannot reach the Spark Connect server at {host}:{port or 15002} ({exc}). Is it "
                             "running (`$SPARK_HOME/sbin/start-connect-server.sh`) and its port open from here?") \
            from None


def _quiet() -> None:
    """pyspark logs every failed statement with its whole plan; the error itself reaches the caller anyway."""
    import logging

    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pragma: no cover - older pyspark
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


class Journal:
    """The engine writes of one transaction, undone in reverse order by `rollback`, made final by `commit`."""

    def __init__(self, store: Store):
        self.store, self.steps = store, []

    def note(self, kind: str, name: str, kept: Path | None = None, files: frozenset = frozenset()) -> None:
        """append: `files` were added to the table; replace: the table's old folder is `kept` (None: it is new);
        rename: the table `name` was called after the folder `kept`."""
        self.steps.append((kind, name, kept, files))

    def commit(self) -> None:
        for _, _, kept, _ in self.steps:
            if kept is not None:
                shutil.rmtree(kept, ignore_errors=True)
        self.steps = []

    def rollback(self) -> None:
        root = self.store.root
        for kind, name, kept, files in reversed(self.steps):
            folder = root / name
            if kind == "append":  # the files this write added go (not those another writer added since)
                for f in files:
                    (folder / f).unlink(missing_ok=True)
            elif kind == "replace":  # the folder as it was comes back (or the new table goes)
                shutil.rmtree(folder, ignore_errors=True)
                if kept is not None:
                    kept.rename(folder)
            elif kind == "rename":  # `kept` is the old name's folder
                folder.rename(kept)
            self.store._stale(name)
        self.steps = []


class Store:
    """The warehouse's tables in one Spark session: list, read, write, drop."""

    def __init__(self, spark, root: Path | None):
        self.spark, self.root = spark, root
        self.temp: set[str] = set()
        self.viewed: set[str] = set()
        self._active = threading.local()
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)

    # ---- transactions (local warehouses) ----
    def journal(self, journal: Journal | None) -> None:
        """Make `journal` note this thread's writes (None: write without one)."""
        self._active.journal = journal

    def _journal(self) -> Journal | None:
        journal = getattr(self._active, "journal", None)
        return journal if self.root is not None else None

    def _appending(self, name: str, write) -> None:
        """`write()` appends files to the table's folder; the journal, if any, notes which."""
        journal = self._journal()
        before = set(os.listdir(self.root / name)) if journal is not None else set()
        write()
        if journal is not None:
            journal.note("append", name, files=frozenset(set(os.listdir(self.root / name)) - before))

    def ensure_views(self, names) -> None:
        """Views over the Parquet folders a statement names, made on first use (each costs a footer read)."""
        if self.root is None:
            return
        wanted = {n.lower() for n in names} - {t.lower() for t in self.viewed | self.temp}
        if wanted:
            for name in self.names():
                if name.lower() in wanted:
                    self._view(name)

    # ---- listing ----
    def names(self) -> list[str]:
        if self.root is None:
            return sorted(t.name for t in self.spark.catalog.listTables() if not t.isTemporary)
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def has(self, name: str) -> bool:
        return name.lower() in {n.lower() for n in self.names()}

    def schemas(self) -> dict[str, pa.Schema]:
        """Every table's columns (as Arrow types), read from the files' or catalogue's metadata: no data scanned."""
        if self.root is None:
            from pyspark.sql.pandas.types import to_arrow_schema

            return {name: to_arrow_schema(self.spark.table(name).schema) for name in self.names()}
        import pyarrow.parquet as pq

        out = {}
        for name in self.names():
            first = next(iter(sorted((self.root / name).glob("*.parquet"))), None)
            if first is not None:
                out[name] = pq.read_schema(first)
        return out

    # ---- writing ----
    def write(self, name: str, df, mode: str = "replace") -> None:
        """Replace or append a table's rows with a Spark DataFrame (columns already in the table's order)."""
        if self.root is None:
            if mode == "append" and self.has(name):
                df.write.insertInto(name)
            else:
                tmp = f"{name}__new_{uuid.uuid4().hex[:8]}"
                df.write.mode("overwrite").saveAsTable(tmp)
                self.spark.sql(f"DROP TABLE IF EXISTS `{name}`")
                self.spark.sql(f"ALTER TABLE `{tmp}` RENAME TO `{name}`")
            return
        folder = self.root / name
        if mode == "append" and folder.exists():
            self._appending(name, lambda: df.write.mode("append").parquet(str(folder)))
        else:
            tmp = self.root / f".new-{name}-{uuid.uuid4().hex[:8]}"
            df.write.parquet(str(tmp))
            self._swap(name, tmp)
        self._stale(name)

    def write_arrow(self, name: str, table: pa.Table, mode: str = "replace") -> None:
        """Arrow rows straight to Parquet (no round trip through the JVM) on a local warehouse."""
        if self.root is None:  # Spark Connect infers no schema from zero rows: give it the table's
            from pyspark.sql.pandas.types import from_arrow_schema

            schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
            self.write(name, self.spark.createDataFrame(table, schema=schema), mode)
            return
        import pyarrow.parquet as pq

        folder = self.root / name
        target = folder if mode == "append" and folder.exists() else self.root / f".new-{name}-{uuid.uuid4().hex[:8]}"
        target.mkdir(parents=True, exist_ok=True)
        part = target / f"part-{uuid.uuid4().hex}.parquet"
        if target == folder:
            self._appending(name, lambda: pq.write_table(table, part))
        else:
            pq.write_table(table, part)
        if target != folder:
            self._swap(name, target)
        self._stale(name)

    def _swap(self, name: str, new: Path) -> None:
        folder, old = self.root / name, self.root / f".old-{name}-{uuid.uuid4().hex[:8]}"
        if folder.exists():
            folder.rename(old)
        new.rename(folder)
        journal = self._journal()
        if journal is not None:  # kept until the transaction ends
            journal.note("replace", name, old if old.exists() else None)
        else:
            shutil.rmtree(old, ignore_errors=True)

    def _view(self, name: str) -> None:
        if self.root is None:
            return
        self.spark.read.parquet(str(self.root / name)).createOrReplaceTempView(name)
        self.viewed.add(name)

    def _stale(self, name: str) -> None:
        """The table's files changed: its view is made again on next use (Spark caches the file listing)."""
        if name in self.viewed:
            self.spark.catalog.dropTempView(name)
            self.viewed.discard(name)

    def drop(self, name: str) -> None:
        if name in self.temp:
            self.spark.catalog.dropTempView(name)
            self.temp.discard(name)
            return
        if self.root is None:
            self.spark.sql(f"DROP TABLE IF EXISTS `{name}`")
            return
        self._stale(name)
        journal = self._journal()
        if journal is not None and (self.root / name).exists():
            kept = self.root / f".old-{name}-{uuid.uuid4().hex[:8]}"
            (self.root / name).rename(kept)
            journal.note("replace", name, kept)
            return
        shutil.rmtree(self.root / name, ignore_errors=True)

    def rename(self, old: str, new: str) -> None:
        if self.root is None:
            self.spark.sql(f"ALTER TABLE `{old}` RENAME TO `{new}`")
            return
        (self.root / old).rename(self.root / new)
        journal = self._journal()
        if journal is not None:
            journal.note("rename", new, self.root / old)
        self._stale(old)

    def temp_view(self, name: str, df) -> None:
        """A connection's temporary table or registered data frame (session-wide in Spark)."""
        df.createOrReplaceTempView(name)
        self.temp.add(name)

    def empty(self, name: str, columns: list[tuple[str, str]]) -> None:
        """Create an empty table with these (name, DuckDB type) columns."""
        if self.root is not None:  # an empty Parquet file written by Arrow: no Spark job
            fields = [pa.field(c, ARROW_TYPES.get(t.split("(")[0].upper(), pa.string())) for c, t in columns]
            self.write_arrow(name, pa.schema(fields).empty_table())
            return
        ddl = ", ".join(f"`{c}` {SPARK_TYPES.get(t.split('(')[0].upper(), 'string')}" for c, t in columns)
        self.write(name, self.spark.createDataFrame([], ddl))
