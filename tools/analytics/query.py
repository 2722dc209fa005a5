"""query_data: read-only SQL for the long tail of questions, checked, sandboxed, limited and PII-masked.

Defence in depth:
1. sqlglot parses the text (DuckDB dialect): exactly one statement, a SELECT (WITH and set operations
   allowed); no DML/DDL/PRAGMA/ATTACH/COPY/SET anywhere in the tree; no file, network or catalogue
   functions; tables only from the allow-list (canonical, output and user tables of the main schema, never
   system tables such as audit_log, outbox or demo_truth); the LIMIT is capped.
2. The query runs on a separate, throw-away in-memory DuckDB connection opened with
   `enable_external_access = false` and `lock_configuration = true`: it cannot read or write files, reach
   the network or change its settings. It sees only the referenced tables, as read-only Arrow snapshots
   in which PII columns are already masked (unless the user is an approver), so no expression can unmask
   them and no statement can change the warehouse.
3. A timer thread interrupts the sandbox after `timeout_s`.
(A second read-only connection to the warehouse file is impossible while this process holds it open: DuckDB
refuses two configurations of one file in one process, hence the snapshot.)
"""

from __future__ import annotations

import difflib
import re
import threading
import time
from functools import lru_cache

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from tools.registry import ToolContext, ToolError, ToolResult, jsonable, register
from tools.warehouse import columns_of, quote, table_names
from tools.warehouse.schema import BY_NAME, PII_COLUMNS, SYSTEM_TABLES

FORBIDDEN_NODE_NAMES = (
    "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterTable", "Command", "Copy", "Pragma",
    "Attach", "Detach", "Set", "Use", "Transaction", "Commit", "Rollback", "Install", "Describe", "Show",
    "Summarize", "Analyze", "Grant", "Revoke", "TruncateTable", "Export", "LoadData", "Into")
FORBIDDEN_FUNCTIONS = {"glob", "query", "query_table", "read_text", "read_blob", "getenv", "sniff_csv",
                       "json_execute_serialized_sql", "load_extension", "current_setting", "which_secret",
                       "enable_profiling", "checkpoint", "force_checkpoint", "export_database", "system"}
FORBIDDEN_PREFIXES = ("read_", "duckdb_", "pragma_", "parquet_", "iceberg_", "delta_", "postgres_", "sqlite_",
                      "mysql_", "http", "s3", "pg_", "icu_", "test_")
FORBIDDEN_SUFFIXES = ("_scan", "_attach", "_query", "_metadata")
PII_NAME = re.compile(r"^(e_?mail|.*_e_?mail|e_?mail_.*|phone|.*_phone|mobile|.*_mobile|first_?name|last_?name|"
                      r"full_?name|surname|customer_name|contact_name|.*address.*|street|post_?code|zip(_code)?)$", re.I)


class QueryParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=20_000)
    """One read-only SELECT (WITH allowed) over the warehouse's tables, DuckDB dialect."""
    limit: int = Field(100, ge=1, le=200)
    """Most rows returned; a larger LIMIT in the query is lowered to this."""
    timeout_s: float = Field(10.0, gt=0, le=60)
    """Seconds before the query is stopped."""


class QueryResult(ToolResult):
    pass


def refuse(reason: str) -> ToolError:
    return ToolError(f"Refused: {reason}. query_data runs one read-only SELECT over the warehouse's tables.")


@lru_cache(maxsize=1)
def _sqlglot():
    """sqlglot and the node classes to refuse (imported on first use: it costs the CLI ~0.8 s to start)."""
    import sqlglot
    from sqlglot import exp

    forbidden = tuple(getattr(exp, n) for n in FORBIDDEN_NODE_NAMES if hasattr(exp, n))
    queries = tuple(t for t in (getattr(exp, "SetOperation", None), exp.Union, exp.Select) if t)
    return sqlglot, exp, forbidden, queries


def _func_name(node) -> str:
    exp = _sqlglot()[1]
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def validate(sql: str, allowed: set[str]):
    """Parse and check one statement; returns the AST (qualifiers stripped) and the tables it reads."""
    sqlglot, exp, forbidden, query_types = _sqlglot()
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise ToolError(f"Could not parse the SQL: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        kinds = ", ".join(type(s).__name__.upper() for s in statements) or "none"
        raise refuse(f"exactly one statement is allowed, found {len(statements)} ({kinds})")
    stmt = statements[0]
    if not isinstance(stmt, query_types):
        raise refuse(f"only SELECT queries are allowed, not {type(stmt).__name__.upper()}")
    for node in stmt.walk():
        if isinstance(node, forbidden):
            raise refuse(f"{type(node).__name__.upper()} is not allowed inside a query")
        if isinstance(node, exp.Func):
            name = _func_name(node)
            if (name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES)
                    or name.endswith(FORBIDDEN_SUFFIXES)):
                raise refuse(f"function {name}() reads files, the network or the database's internals")
    ctes = {c.alias_or_name.lower() for c in stmt.find_all(exp.CTE)}
    tables: list[str] = []
    for t in stmt.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            if isinstance(t.this, exp.GenerateSeries):  # range() / generate_series(): handy for date spines
                continue
            raise refuse(f"table function {t.this.sql(dialect='duckdb')[:60]} is not allowed")
        name = t.name.lower() if t.name.lower() in allowed | SYSTEM_TABLES else t.name
        if t.args.get("db") is None and name.lower() in ctes:
            continue
        if t.catalog or (t.db and t.db.lower() != "main"):
            raise refuse(f"{t.sql(dialect='duckdb')} is outside the warehouse's main schema")
        if "/" in name or "." in name or "\\" in name:
            raise refuse(f"reading files ({name!r}) is not allowed")
        if name in SYSTEM_TABLES:
            raise refuse(f"{name} is a system table (audit, actions or secrets) and cannot be queried")
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else f" Tables: {', '.join(sorted(allowed))}."
            raise ToolError(f"Unknown table {name!r}.{hint}")
        t.set("this", exp.to_identifier(name, quoted=True))
        t.set("db", None)
        t.set("catalog", None)
        tables.append(name)
    return stmt, sorted(set(tables))


def _cap_limit(stmt, limit: int):
    exp = _sqlglot()[1]
    current = stmt.args.get("limit")
    value = current.expression if isinstance(current, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= limit:
        return stmt
    return stmt.limit(limit + 1, copy=False)


def pii_columns(table: str, columns: list[str]) -> list[str]:
    """Columns to mask: the schema's PII columns for canonical tables, PII-looking names in user tables."""
    if table in BY_NAME:
        return [c for c in columns if (table, c) in PII_COLUMNS]
    return [c for c in columns if PII_NAME.match(c)]


def _sandbox(con, tables: list[str], mask: bool) -> tuple[duckdb.DuckDBPyConnection, list[str], dict]:
    box = duckdb.connect(":memory:", config={"enable_external_access": False, "lock_configuration": True,
                                             "autoload_known_extensions": False, "autoinstall_known_extensions":
                                                 False})
    masked, cols_by_table = [], {}
    for t in tables:
        cols = list(columns_of(con, t))
        cols_by_table[t] = cols
        hide = set(pii_columns(t, cols)) if mask else set()
        masked += [f"{t}.{c}" for c in cols if c in hide]
        select = ", ".join(f"CASE WHEN {quote(c)} IS NULL THEN NULL ELSE 'masked:' || left(md5({quote(c)}::VARCHAR), "
                           f"8) END AS {quote(c)}" if c in hide else quote(c) for c in cols)
        box.register(t, con.sql(f"SELECT {select} FROM {quote(t)}").to_arrow_table())
    return box, masked, cols_by_table


def _explain(exc: duckdb.Error, cols_by_table: dict) -> str:
    msg = str(exc).splitlines()[0]
    m = re.search(r'column "?([^"\s]+)"? not found|does not have a column named "([^"]+)"', str(exc))
    if m:
        bad = m.group(1) or m.group(2)
        every = sorted({c for cols in cols_by_table.values() for c in cols})
        close = difflib.get_close_matches(bad.split(".")[-1], every, n=3, cutoff=0.5)
        where = "; ".join(f"{t}: {', '.join(c)}" for t, c in cols_by_table.items())
        hint = f" Closest columns: {', '.join(close)}." if close else ""
        return f"Unknown column {bad!r}.{hint} Columns of the tables in the query: {where}."
    return f"The query failed: {msg}"


@register(example=QueryParams(sql="SELECT country, count(*) AS customers FROM customers GROUP BY country "
                                  "ORDER BY customers DESC"),
          key_metrics=("rows",),
          requests=["How many customers do we have per country?", "run this SQL: select count(*) from orders",
                    "What is the average order value by category?",
                    "Which 10 customers spent the most last year?", "How many leads came from webinars in 2025?",
                    "count reviews by source and rating", "Show me the campaigns table",
                    "What share of customers are loyalty members?",
                    "How many support tickets were logged each month?"])
def query_data(con: duckdb.DuckDBPyConnection, p: QueryParams, ctx: ToolContext) -> QueryResult:
    """Answer a question no other tool covers with one read-only SQL SELECT over allow-listed warehouse tables."""
    allowed = {t for t in table_names(con) if t not in SYSTEM_TABLES and not t.startswith("_")}
    stmt, tables = validate(p.sql, allowed)
    sql = _cap_limit(stmt, p.limit).sql(dialect="duckdb")
    mask = ctx.role != "approver"
    t0 = time.perf_counter()
    box, masked, cols_by_table = _sandbox(con, tables, mask)
    timer = threading.Timer(p.timeout_s, box.interrupt)
    timer.start()
    try:
        cur = box.execute(sql)
        names = [d[0] for d in cur.description]
        rows = cur.fetchmany(p.limit + 1)
    except duckdb.InterruptException as exc:
        raise ToolError(f"The query ran longer than {p.timeout_s:g} s and was stopped. Aggregate more, filter "
                        "by date, or raise timeout_s (at most 60).") from exc
    except duckdb.Error as exc:
        raise ToolError(_explain(exc, cols_by_table)) from exc
    finally:
        timer.cancel()
        box.close()
    elapsed = time.perf_counter() - t0
    truncated = len(rows) > p.limit
    rows = rows[: p.limit]
    data = [{n: (v if isinstance(jsonable(v), str | int | float | bool | list | dict | type(None)) else str(v))
             for n, v in zip(names, r, strict=True)} for r in rows]
    summary = (f"{len(rows)} row(s) × {len(names)} column(s) from {', '.join(tables) or 'no table'} "
               f"in {elapsed * 1000:.0f} ms.")
    warnings = []
    if truncated:
        warnings.append(f"More rows exist; only the first {p.limit} are shown (aggregate, or raise limit to 200).")
    shown = [m for m in masked if m.split(".", 1)[1] in names]
    if shown:
        summary += f" PII masked (your role is {ctx.role}): {', '.join(shown)}."
    if len(rows) == 1 and len(names) <= 6:
        summary += " Result: " + ", ".join(f"{n} = {v}" for n, v in data[0].items()) + "."
    return QueryResult(summary=summary, data=data, warnings=warnings,
                       metrics={"rows": len(rows), "columns": names, "tables": tables, "truncated": truncated,
                                "masked_columns": masked, "elapsed_ms": round(elapsed * 1000, 1),
                                "sql": sql})
