"""INSERT, UPDATE, DELETE, CREATE, DROP and ALTER (DuckDB dialect) carried out on the Spark warehouse's tables.

Parquet tables have no row-level DML, so each statement becomes a DataFrame written by the store: an INSERT
appends its SELECT's rows (cast to the table's column types, missing columns NULL); INSERT OR REPLACE / OR IGNORE
rewrite the table with the new rows winning (or losing) on the table's primary key (schema.py), as DuckDB's
constraint would decide; an UPDATE rewrites the table with each SET column as `CASE WHEN <where> THEN <value> ELSE
<column> END`; a DELETE rewrites it without the matching rows; a CREATE TABLE AS writes (or, TEMP, registers) its
SELECT. Each statement is all-or-nothing on its own (a rewrite replaces the folder only once written); across
statements, SparkConnection undoes a rolled-back transaction's writes (spark_store.Journal).
"""

from __future__ import annotations

from tools.warehouse.backends.base import EngineError
from tools.warehouse.backends.sqlmap import _sqlglot, to_spark


def apply(con, tree) -> None:
    _, exp, _, _ = _sqlglot()
    if isinstance(tree, exp.Insert):
        _insert(con, tree)
    elif isinstance(tree, exp.Update):
        _update(con, tree)
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
        for table in tree.args.get("tables") or tree.expressions or [tree.this]:  # sqlglot ≥ 30: tables
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
    rows = _aligned(con, name, src, columns, bool(tree.args.get("by_name")))
    alternative = str(tree.args.get("alternative") or "").upper()
    if alternative not in ("REPLACE", "IGNORE"):
        con.store.write(name, rows, "append")
        return
    from tools.warehouse.schema import BY_NAME

    spec = BY_NAME.get(name.lower())
    if spec is None or not spec.primary_key:
        raise EngineError(f"INSERT OR {alternative} INTO {name} needs the table's primary key, and {name} has none "
                          "on a Spark warehouse; DELETE the rows first, then INSERT.")
    key = list(spec.primary_key)
    rows = rows.localCheckpoint()  # computed once: it may read the table being rewritten
    old = con.spark.table(name)
    if alternative == "REPLACE":  # the new rows win
        merged = old.join(rows.select(*key), on=key, how="left_anti").unionByName(rows)
    else:  # the rows already there win
        merged = old.unionByName(rows.join(old.select(*key), on=key, how="left_anti"))
    con.store.write(name, merged.localCheckpoint())


def _update(con, tree) -> None:
    """UPDATE t SET c = v … WHERE w: the table rewritten with `CASE WHEN w THEN v ELSE c END` for each SET column
    (the values are computed from the rows as they were, as in SQL), cast back to the column's type."""
    _, exp, _, _ = _sqlglot()
    from pyspark.sql import functions as F

    if tree.args.get("from_") or tree.args.get("from"):
        raise EngineError("UPDATE … FROM is not supported on a Spark warehouse; use a subquery in SET or WHERE.")
    name = _name(con, tree.this)
    fields = con.spark.table(name).schema.fields
    known = {f.name.lower() for f in fields}
    sets = {}
    for eq in tree.expressions:
        column = eq.this.name.lower()
        if column not in known:
            raise EngineError(f'Binder Error: Referenced update column "{eq.this.name}" not found in table {name}')
        sets[column] = eq.expression
    where = tree.args.get("where")
    cond = exp.func("coalesce", exp.paren(where.this.copy()), exp.false()) if where is not None else None
    select = exp.select(*[exp.alias_(
        (exp.If(this=cond.copy(), true=sets[f.name.lower()].copy(), false=exp.column(f.name, quoted=True))
         if cond is not None else sets[f.name.lower()].copy()) if f.name.lower() in sets
        else exp.column(f.name, quoted=True), f"__c{i}") for i, f in enumerate(fields)])
    updated = con._frame(to_spark(select.from_(tree.this.copy())))
    con.store.write(name, updated.select([F.col(f"__c{i}").cast(f.dataType).alias(f.name)
                                          for i, f in enumerate(fields)]))


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
