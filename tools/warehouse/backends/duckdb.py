"""The DuckDB backend: the home's DuckDB file, opened by `tools.warehouse.connection.connect` as always.

It is the reference the other backends are measured against (tests/tools/test_spark_parity.py): the tools' SQL is
written in its dialect, and its connection's surface (execute / sql / fetch* / register / cursor) is the interface
base.Result and spark.SparkConnection reproduce. Nothing to adapt, so nothing here but the name."""

from __future__ import annotations

NAME = "duckdb"
