"""Warehouse backends: which engine holds the tables, chosen by NORTHSTAR_WAREHOUSE (docs/configuration.md).

* unset or `duckdb`: the home's DuckDB file, as always (`selected_backend()` is None and `connect` goes on as
  before);
* `spark:local[N]`: a local Spark session with N cores, the tables as Parquet under `<home>/spark/`;
* `spark:sc://host:port`: a Spark Connect server (a cluster, Databricks), its catalogue's tables.

Whatever the engine, tools receive a connection with DuckDB's surface and write SQL once, in DuckDB's dialect
(base.py, sqlmap.py); governance state stays in the home's DuckDB file (spark.LOCAL).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tools.warehouse.connection import WarehouseError

ENV = "NORTHSTAR_WAREHOUSE"
_LOCAL = re.compile(r"^local(\[(\d+|\*)\])?$")
_CONNECT = re.compile(r"^sc://[A-Za-z0-9.\-_]+(:\d{1,5})?(/.*)?$")


@dataclass(frozen=True)
class SparkBackend:
    target: str
    """`local[N]` or `sc://host:port`."""

    name = "spark"

    def connect(self, path: Path | str, *, read_only: bool = False, migrate_schema: bool = True):
        from tools.warehouse.backends.spark import connect

        return connect(self.target, path, read_only=read_only, migrate_schema=migrate_schema)


def parse_setting(text: str | None) -> SparkBackend | None:
    """The backend a NORTHSTAR_WAREHOUSE value names; None for DuckDB; WarehouseError saying what is accepted."""
    value = (text or "").strip()
    if value.lower() in ("", "duckdb"):
        return None
    kind, _, target = value.partition(":")
    target = target.strip()
    if kind.strip().lower() == "spark" and (_LOCAL.match(target) or _CONNECT.match(target)):
        return SparkBackend(target)
    raise WarehouseError(f"{ENV}={value!r} is not a warehouse Northstar knows. Use `duckdb` (the default), "
                         "`spark:local[2]` (a local Spark session, tables as Parquet under the home) or "
                         "`spark:sc://host:15002` (Spark Connect).")


def selected_backend() -> SparkBackend | None:
    """The backend NORTHSTAR_WAREHOUSE selects now (None: the home's DuckDB file)."""
    return parse_setting(os.environ.get(ENV))


def engine_of(con) -> str:
    """`duckdb` or `spark`: which engine a connection runs on."""
    return getattr(con, "engine", "duckdb")
