"""SQL written once, in DuckDB's dialect, for another engine: parameters bound as literals, then sqlglot.

Binding happens on the token stream (sqlglot's DuckDB tokenizer), before parsing: `?`, `?::TYPE`, `$name` and
`$1` become literals written by `literal()`, so a value can never end a string or start a statement, whatever
quotes, backslashes or unicode it holds. The bound text is parsed as DuckDB, a few generic rewrites fix what
sqlglot does not translate (below), and the tree is written in the target dialect.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

from tools.warehouse.connection import WarehouseError


@lru_cache(maxsize=1)
def _sqlglot():
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.tokens import TokenType

    return sqlglot, exp, DuckDB(), TokenType


def literal(value) -> str:
    """A Python value as a DuckDB literal (the binder's only way into the text)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"CAST('{value}' AS DOUBLE)"
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, Decimal):
        return f"CAST('{value}' AS DOUBLE)"
    if isinstance(value, datetime):
        return f"CAST('{value.replace(tzinfo=None).isoformat(sep=' ')}' AS TIMESTAMP)"
    if isinstance(value, date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    if isinstance(value, time):
        return f"CAST('{value.isoformat()}' AS TIME)"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"unhex('{bytes(value).hex()}')"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return "[" + ", ".join(literal(v) for v in items) + "]"
    if hasattr(value, "item"):  # numpy scalars
        return literal(value.item())
    raise WarehouseError(f"Cannot pass a {type(value).__name__} as a query parameter; use a number, text, date, "
                         "timestamp, bytes or a list of those.")


def bind(sql: str, params=None) -> str:
    """`sql` with its parameters written in as literals; errors name a missing or unused parameter."""
    if not params:
        return sql
    _, _, duck, T = _sqlglot()
    tokens = duck.tokenize(sql)
    named = params if isinstance(params, dict) else None
    positional = list(params) if named is None else []
    out, last, used = [], 0, 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.token_type in (T.PLACEHOLDER, T.QDCOLON):
            if used >= len(positional):
                raise WarehouseError(f"The query has more ? placeholders than the {len(positional)} value(s) given.")
            out += [sql[last:tok.start], literal(positional[used])]
            last = tok.start + 1  # `?::` keeps its `::`
            used += 1
        elif tok.token_type == T.PARAMETER and i + 1 < len(tokens):
            name = tokens[i + 1].text
            key = int(name) - 1 if name.isdigit() else name
            source = positional if isinstance(key, int) and named is None else named or {}
            try:
                value = source[key]
            except (KeyError, IndexError, TypeError):
                raise WarehouseError(f"The query uses ${name} but no value was given for it.") from None
            out += [sql[last:tok.start], literal(value)]
            last = tokens[i + 1].end + 1
            i += 1
        i += 1
    if named is None and used and used != len(positional):
        raise WarehouseError(f"The query has {used} ? placeholder(s) but {len(positional)} value(s) were given.")
    return "".join(out) + sql[last:]


def parse(sql: str):
    """One DuckDB statement as a sqlglot tree."""
    sqlglot, *_ = _sqlglot()
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"Could not parse the SQL for the warehouse: {str(exc).splitlines()[0]}") from exc
    if len(trees) != 1:
        raise WarehouseError(f"One statement at a time, found {len(trees)}.")
    return trees[0]


def table_names_in(tree) -> set[str]:
    """Lower-case names of the tables a statement reads or writes (CTE names left out)."""
    exp = _sqlglot()[1]
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return {t.name.lower() for t in tree.find_all(exp.Table)
            if t.name and not (t.name.lower() in ctes and not t.db)}


def _LISTS() -> tuple:  # noqa: N802 - expressions that always give a list
    exp = _sqlglot()[1]
    return tuple(getattr(exp, n) for n in ("ArrayFilter", "RegexpExtractAll", "Array", "Split", "ArrayAgg",
                                           "Transform", "ArrayConcat", "StringToArray") if hasattr(exp, n))


def _micros(node):
    exp = _sqlglot()[1]
    return exp.func("unix_micros", exp.cast(node, exp.DataType.Type.TIMESTAMPLTZ))  # session time zone: UTC


def _rewrite(node):
    """Generic fixes for what sqlglot writes but Spark reads differently (each keeps DuckDB's meaning)."""
    exp = _sqlglot()[1]
    if isinstance(node, exp.ToDays):  # to_days(n): an INTERVAL of n days
        return exp.func("make_dt_interval", node.this)
    if isinstance(node, exp.TimeToUnix):  # epoch(): seconds, of a timestamp or of the difference of two
        arg = node.this
        micros = (exp.Sub(this=_micros(arg.this), expression=_micros(arg.expression)) if isinstance(arg, exp.Sub)
                  else _micros(arg))
        return exp.Div(this=exp.Paren(this=micros), expression=exp.Literal.number("1e6"))
    if isinstance(node, exp.RegexpFullMatch):  # the whole text must match: anchored, as in DuckDB
        pattern, flags = node.expression, node.args.get("options")
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            case = "(?i)" if flags is not None and "i" in flags.name else ""
            return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"{case}^(?:{pattern.this})$"))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "generate_subscripts" and len(node.expressions) == 2:
        return exp.Anonymous(this="posexplode_index__", expressions=node.expressions[:1])
    if isinstance(node, exp.TableSample) and node.args.get("size") is not None:  # n rows: Spark takes the first n
        node = node.copy()
        node.set("seed", None)
        node.set("method", None)
        return node
    if isinstance(node, exp.Column) and not node.table and node.name.lower() == "rowid":
        return exp.func("monotonically_increasing_id")
    return node


def to_spark(tree) -> str:
    """A DuckDB tree as Spark SQL."""
    exp = _sqlglot()[1]
    tree = tree.copy().transform(_portable).transform(_rewrite)
    for node in list(tree.find_all(exp.Length)):  # len(list): Spark's length() is for text (after the pass above)
        if isinstance(node.this, _LISTS()):
            node.replace(exp.ArraySize(this=node.this.copy()))
    _unnest_with_positions(tree)
    _ordered_lists(tree)
    return tree.sql(dialect="spark")


def _ordered_lists(tree) -> None:
    """`list(x ORDER BY k)` keeps its order in Spark: collect_list gives none (and sqlglot drops the ORDER BY), so
    (null flag, k, …, x) are collected as structs, sorted and x taken back; the flag puts null keys where DuckDB
    does (last unless NULLS FIRST). Mixed directions are refused rather than silently reordered."""
    sqlglot, exp, _, _ = _sqlglot()
    for node in list(tree.find_all(exp.ArrayAgg)):
        order = node.this
        if not isinstance(order, exp.Order):
            continue
        directions = {bool(k.args.get("desc")) for k in order.expressions}
        if len(directions) != 1:
            raise WarehouseError("list(… ORDER BY …) with mixed ASC/DESC keys cannot be written for Spark; order "
                                 "by one direction.")
        desc, parts = directions.pop(), []
        for i, k in enumerate(order.expressions):
            key = k.this.sql(dialect="spark")
            late = "IS NULL" if bool(k.args.get("nulls_first")) == desc else "IS NOT NULL"
            parts += [f"({key}) {late} AS __n{i}", f"{key} AS __k{i}"]
        value = order.this.sql(dialect="spark")
        node.replace(sqlglot.parse_one(
            f"TRANSFORM(SORT_ARRAY(COLLECT_LIST(STRUCT({', '.join(parts)}, {value} AS __v)), {not desc}), "
            "__s -> __s.__v)", read="spark"))


def _unnest_with_positions(tree) -> None:
    """`SELECT unnest(l) AS a, generate_subscripts(l, 1) - 1 AS b` (a list and its positions) reads, in Spark,
    from `(SELECT posexplode(l) AS (__pos, a))`: one generator for both columns, as Spark requires."""
    sqlglot, exp, _, _ = _sqlglot()
    for select in list(tree.find_all(exp.Select)):
        marks = [a for e in select.expressions for a in e.find_all(exp.Anonymous) if a.name == "posexplode_index__"]
        explode = [e for e in select.expressions if isinstance(e.unalias(), exp.Explode | exp.Unnest)]
        if not marks or len(explode) != 1 or select.args.get("from_"):
            continue
        gen = explode[0].unalias()
        array = gen.this if isinstance(gen, exp.Explode) else gen.expressions[0]
        alias = explode[0].alias_or_name or "col"
        for mark in marks:
            mark.replace(exp.Paren(this=exp.Add(this=exp.column("__pos"), expression=exp.Literal.number(1))))
        sub = sqlglot.parse_one(f"SELECT posexplode({array.sql(dialect='spark')}) AS (__pos, {alias})",
                                read="spark")
        select.set("expressions", [exp.column(alias) if e is explode[0] else e for e in select.expressions])
        select.set("from_", exp.From(this=exp.Subquery(this=sub, alias=exp.TableAlias(
            this=exp.to_identifier("__u")))))


def _portable(node):
    """Rewrites every target dialect needs, whatever the engine (kept apart from Spark's own in `_rewrite`)."""
    exp = _sqlglot()[1]
    if isinstance(node, exp.RegexpReplace) and node.args.get("modifiers") is not None:
        if node.args["modifiers"].name == "g":  # replace every match: the default of Spark, BigQuery, Snowflake
            node = node.copy()
            node.set("modifiers", None)
    return node


def to_dialect(tree, dialect: str) -> str:
    """A DuckDB tree in another engine's dialect (`spark` with its rewrites; `bigquery`, `snowflake` …: the
    generic ones only, the start of those backends)."""
    if dialect == "spark":
        return to_spark(tree)
    tree = tree.copy().transform(_portable)
    _inline_windows(tree)
    if dialect == "bigquery":
        _nulls_last_in_windows(tree)
    return tree.sql(dialect=dialect, unsupported_level=_error_level())


def _nulls_last_in_windows(tree) -> None:
    """BigQuery's window and ARRAY_AGG ORDER BY cannot say NULLS LAST (DuckDB's default for ASC): `ORDER BY x`
    becomes `ORDER BY x IS NULL, x`, nulls last by the first key whatever the second does (ROWS frames and ranking
    only: a RANGE frame needs its one key)."""
    exp = _sqlglot()[1]
    for order in list(tree.find_all(exp.Order)):
        parent = order.parent
        if isinstance(parent, exp.Window):
            spec = parent.args.get("spec")
            if spec is not None and str(spec.args.get("kind", "")).upper() == "RANGE":
                continue
        elif not isinstance(parent, exp.ArrayAgg):
            continue
        keys = []
        for key in order.expressions:
            if not key.args.get("desc") and not key.args.get("nulls_first"):
                keys.append(exp.Ordered(this=exp.Is(this=key.this.copy(), expression=exp.null()), nulls_first=True))
                key = key.copy()
                key.set("nulls_first", True)
            keys.append(key)
        order.set("expressions", keys)


def _inline_windows(tree) -> None:
    """`f() OVER w … WINDOW w AS (…)` with the definition written into each OVER: not every dialect has named
    windows (BigQuery's writer fails on them), and the meaning is the same."""
    exp = _sqlglot()[1]
    for select in list(tree.find_all(exp.Select)):
        named = {w.this.name.lower(): w for w in select.args.get("windows") or []}
        if not named:
            continue
        for window in list(select.find_all(exp.Window)):
            ref = window.args.get("alias")
            if ref is not None and window.args.get("over") and ref.name.lower() in named:
                spec = named[ref.name.lower()]
                window.set("alias", None)
                for part in ("partition_by", "order", "spec"):
                    if spec.args.get(part) is not None:
                        window.set(part, spec.args[part].copy() if part != "partition_by"
                                   else [e.copy() for e in spec.args[part]])
        select.set("windows", None)


def _error_level():
    from sqlglot.errors import ErrorLevel

    return ErrorLevel.RAISE


def as_read_only(tree) -> str:
    """`duckdb_databases()` with readonly = true, for a connection opened read-only (tools check it before saving)."""
    sqlglot, exp, _, _ = _sqlglot()
    view = sqlglot.parse_one("(SELECT * REPLACE (true AS readonly) FROM duckdb_databases())", read="duckdb")
    tree = tree.copy()
    for table in list(tree.find_all(exp.Table)):
        if isinstance(table.this, exp.Anonymous) and table.this.name.lower() == "duckdb_databases":
            table.replace(exp.Subquery(this=view.this.copy(), alias=exp.TableAlias(
                this=exp.to_identifier(table.alias or "duckdb_databases"))))
    return tree.sql(dialect="duckdb")
