"""DESCRIBE of a query and COPY (query) TO a file, on a Spark warehouse: what the actions' exports use.

The query runs in Spark; its rows come back as Arrow and DuckDB (the home's file) writes the file with the
statement's own options (HEADER, FORCE_QUOTE …), so an export is the same bytes whichever engine holds the rows.
DESCRIBE asks Spark for the query's schema only (no job) and answers in DuckDB's shape and type names.
"""

from __future__ import annotations

import pyarrow as pa

from tools.warehouse.backends.base import EngineError, Result, duckdb_type
from tools.warehouse.backends.sqlmap import _sqlglot, to_spark


def describe(con, query) -> Result:
    """DuckDB's DESCRIBE rows (column_name, column_type, null, key, default, extra) of a query run by Spark."""
    from pyspark.sql.pandas.types import to_arrow_schema

    _, exp, _, _ = _sqlglot()
    if isinstance(query, exp.Table):  # DESCRIBE a table: its columns
        query = exp.select("*").from_(query.copy())
    if not isinstance(query, exp.Query):
        raise EngineError("DESCRIBE takes a table or a query on a Spark warehouse.")
    schema = to_arrow_schema(con._frame(to_spark(query)).schema)
    names = [f.name for f in schema]
    return Result(pa.table({"column_name": names, "column_type": [duckdb_type(f.type) for f in schema],
                            "null": ["YES"] * len(names), "key": [None] * len(names),
                            "default": [None] * len(names), "extra": [None] * len(names)}))


def copy_out(con, tree) -> Result:
    """COPY (query) TO 'file' (options): the rows from Spark, the file written by DuckDB."""
    _, exp, _, _ = _sqlglot()
    source = tree.this.this if isinstance(tree.this, exp.Subquery) else tree.this
    if tree.args.get("kind") or not isinstance(source, exp.Query):
        raise EngineError("Only COPY (SELECT …) TO a file is supported on a Spark warehouse; load files with "
                          "`northstar load`.")
    rows = con._arrow(con._frame(to_spark(source)))
    con.local.register("__copy_rows", rows)
    try:
        moved = tree.copy()
        moved.set("this", exp.Subquery(this=exp.select("*").from_("__copy_rows")))
        con.local.execute(moved.sql(dialect="duckdb"))
    finally:
        con.local.unregister("__copy_rows")
    return Result(None)
