"""INSERT, DELETE, CREATE, DROP and ALTER (DuckDB dialect) carried out on the Spark warehouse's tables.

Parquet tables have no row-level DML, so each statement becomes a DataFrame written by the store: an INSERT
appends its SELECT's rows (cast to the table's column types, missing columns NULL), a DELETE rewrites the table
without the matching rows, a CREATE TABLE AS writes (or, TEMP, registers) its SELECT. No multi-statement
transactions: each statement is all-or-nothing on its own (a rewrite replaces the folder only once written).
"""

from __future__ import annotations

from tools.warehouse.backends.base import EngineError
from tools.warehouse.backends.sqlmap import _sqlglot, to_spark


def apply(con, tree) -> None:
    _, exp, _, _ = _sqlglot()
    if isinstance(tree, exp.Insert):
        _insert(con, tree)
    elif isinstance(tree, exp.Delete):
        name = _name(con, tree.this)
        where = tree.args.get("where")
        if where is None:
            keep = con.spark.table(name).limit(0)
        else:
            kept = exp.not_(exp.func("coalesce", exp.paren(where.this.copy()), exp.false()))
            keep = con._frame(to_spark(exp.select("*").from_(exp.table_(name, quoted=True)).where(kept)))
        con.store.write(name, keep)
    elif isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
        _create(con, tree)
    elif isinstance(tree, exp.Drop):
        for table in tree.expressions or [tree.this]:
            name = _name(con, table, missing_ok=True)
            if name is None:
                if not tree.args.get("exists"):
                    raise EngineError(f"Catalog Error: Table with name {table.name} does not exist!")
                continue
            con.store.drop(name)
    elif isinstance(tree, exp.Alter):
        _alter(con, tree)
    else:
        raise EngineError(f"{type(tree).__name__.upper()} is not supported on a Spark warehouse (its Parquet tables "
                          "are rewritten, never updated in place); write the new rows with INSERT or CREATE TABLE AS.")


def _name(con, table, missing_ok: bool = False) -> str | None:
    """The store's spelling of a table (any case), temporary views included."""
    wanted = table.name.lower()
    for name in [*con.store.temp, *con.store.names()]:
        if name.lower() == wanted:
            return name
    if missing_ok:
        return None
    raise EngineError(f"Catalog Error: Table with name {table.name} does not exist!")


def _aligned(con, target: str, src, columns: list[str] | None, by_name: bool):
    """`src` (a DataFrame) as rows of `target`: its columns matched by position (or name), cast to the table's
    types; the table's other columns NULL."""
    from pyspark.sql import functions as F

    fields = con.spark.table(target).schema.fields
    if by_name:
        have = {c.lower(): c for c in src.columns}
        pairs = {f.name.lower(): have.get(f.name.lower()) for f in fields}
        unknown = set(have) - set(pairs)
        if unknown:
            raise EngineError(f"Binder Error: {target} has no column(s) {', '.join(sorted(unknown))}")
    else:
        names = columns or [f.name for f in fields]
        if len(names) != len(src.columns):
            raise EngineError(f"Binder Error: {target} expects {len(names)} values, the query gives "
                              f"{len(src.columns)}")
        pairs = {n.lower(): s for n, s in zip(names, src.columns, strict=True)}
    renamed = src.toDF(*[f"__c{i}" for i in range(len(src.columns))])
    position = {c: f"__c{i}" for i, c in enumerate(src.columns)}
    return renamed.select([(F.col(position[pairs[f.name.lower()]]) if pairs.get(f.name.lower()) is not None
                            else F.lit(None)).cast(f.dataType).alias(f.name) for f in fields])


def _insert(con, tree) -> None:
    _, exp, _, _ = _sqlglot()
    target = tree.this
    columns = None
    if isinstance(target, exp.Schema):
        columns = [c.name for c in target.expressions]
        target = target.this
    name = _name(con, target)
    source = tree.expression
    if isinstance(source, exp.Values):
        source = exp.select("*").from_(source)
    src = con._frame(to_spark(source))
    con.store.write(name, _aligned(con, name, src, columns, bool(tree.args.get("by_name"))), "append")


def _create(con, tree) -> None:
    _, exp, _, _ = _sqlglot()
    temp = any(isinstance(p, exp.TemporaryProperty) for p in (tree.args.get("properties") or exp.Properties()).expressions)
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    existing = _name(con, target, missing_ok=True)
    if existing and tree.args.get("exists"):
        return
    if existing and not tree.args.get("replace") and not temp:
        raise EngineError(f"Catalog Error: Table with name {target.name} already exists!")
    if tree.expression is not None:
        df = con._frame(to_spark(tree.expression))
        if temp:
            con.store.temp_view(target.name, df.localCheckpoint())
        else:
            con.store.write(target.name, df)
        return
    columns = [(c.name, c.args["kind"].sql(dialect="duckdb")) for c in tree.this.expressions
               if isinstance(c, exp.ColumnDef)]
    con.store.empty(target.name, columns)


def _alter(con, tree) -> None:
    _, exp, _, _ = _sqlglot()
    from pyspark.sql import functions as F

    from tools.warehouse.backends.spark_store import SPARK_TYPES

    name = _name(con, tree.this)
    for action in tree.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            df = con.spark.table(name)
            if action.name.lower() in {c.lower() for c in df.columns}:
                continue
            type_ = SPARK_TYPES.get(action.args["kind"].sql(dialect="duckdb").split("(")[0].upper(), "string")
            con.store.write(name, df.withColumn(action.name, F.lit(None).cast(type_)))
        elif isinstance(action, exp.AlterRename):
            con.store.rename(name, action.this.name)
        else:
            raise EngineError(f"ALTER TABLE … {action.sql(dialect='duckdb')[:60]} is not supported on Spark.")
