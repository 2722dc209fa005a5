"""query_data: read-only SQL for the long tail of questions, checked, sandboxed, bounded and pseudonymised.

Defence in depth:
1. sqlglot parses the text (DuckDB dialect): exactly one statement, a SELECT (WITH and set operations
   allowed); no DML/DDL/PRAGMA/ATTACH/COPY/SET anywhere in the tree; no file, network or catalogue
   functions; tables only from the allow-list (canonical, output and user tables of the main schema, never
   system tables such as audit_log, outbox or demo_truth, whatever the case or quoting); the LIMIT is capped.
2. The query runs on a separate, throw-away in-memory DuckDB opened with `enable_external_access = false`,
   `lock_configuration = true`, a memory limit, a thread count and no spill directory: it cannot read or write
   files (the home's secret key included), reach the network, change its settings or outgrow its memory. It
   holds copies of only the columns the query reads, streamed in batch by batch; for viewers and analysts
   personal-data columns arrive as keyed pseudonyms (tools/privacy.py), so no expression can unmask them.
3. One deadline covers everything, reading the tables included: when it passes, every connection working on
   the query is interrupted.
4. The output is bounded by rows, cells and bytes, measured inside DuckDB before anything is fetched; a huge
   single value is cut, with a note.
(A second read-only connection to the warehouse file is impossible while this process holds it open: DuckDB
refuses two configurations of one file in one process, hence the copies.)
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools.privacy import LABEL, Pseudonymiser, detect, lineage, quote_ident
from tools.registry import ToolContext, ToolError, ToolResult, jsonable, register
from tools.warehouse import columns_of, is_numeric, table_names
from tools.warehouse.schema import BY_NAME, SYSTEM_TABLES

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
FIXED_SIZE = ("DATE", "TIME", "TIMESTAMP", "INTERVAL", "UUID")


@dataclass(frozen=True)
class SandboxLimits:
    """What one query may use. Memory and threads come from the run's settings when it has them."""

    memory_mb: int = 1024
    threads: int = 2
    max_cells: int = 10_000
    max_bytes: int = 1_000_000
    max_value_chars: int = 10_000

    @classmethod
    def of(cls, ctx: ToolContext) -> SandboxLimits:
        return cls(memory_mb=int(getattr(ctx, "query_memory_mb", None) or cls.memory_mb),
                   threads=int(getattr(ctx, "query_threads", None) or cls.threads))


class QueryParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1, max_length=20_000)
    """One read-only SELECT (WITH allowed) over the warehouse's tables, DuckDB dialect."""
    limit: int = Field(100, ge=1, le=200)
    """Most rows returned; a larger LIMIT in the query is lowered to this."""
    timeout_s: float = Field(10.0, gt=0, le=60)
    """Seconds before the query is stopped (reading its tables included)."""


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
    by_lower, system = {t.lower(): t for t in allowed}, {t.lower() for t in SYSTEM_TABLES}
    tables: list[str] = []
    for t in stmt.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            if isinstance(t.this, exp.GenerateSeries):  # range() / generate_series(): handy for date spines
                continue
            raise refuse(f"table function {t.this.sql(dialect='duckdb')[:60]} is not allowed")
        lower = t.name.strip().lower()  # DuckDB resolves names case-insensitively, quoted or not
        if t.args.get("db") is None and lower in ctes:
            continue
        if t.catalog or (t.db and t.db.lower() != "main"):
            raise refuse(f"{t.sql(dialect='duckdb')} is outside the warehouse's main schema")
        if "/" in lower or "." in lower or "\\" in lower:
            raise refuse(f"reading files ({t.name!r}) is not allowed")
        if lower in system:
            raise refuse(f"{lower} is a system table (audit, actions or secrets) and cannot be queried")
        if lower not in by_lower:
            close = difflib.get_close_matches(lower, sorted(by_lower), n=3)
            hint = (f" Did you mean {', '.join(by_lower[c] for c in close)}?" if close
                    else f" Tables: {', '.join(sorted(allowed))}.")
            raise ToolError(f"Unknown table {t.name!r}.{hint}")
        t.set("this", exp.to_identifier(by_lower[lower], quoted=True))
        t.set("db", None)
        t.set("catalog", None)
        tables.append(by_lower[lower])
    return stmt, sorted(set(tables))


def _cap_limit(stmt, limit: int):
    exp = _sqlglot()[1]
    current = stmt.args.get("limit")
    value = current.expression if isinstance(current, exp.Limit) else None
    if isinstance(value, exp.Literal) and value.is_int and int(value.this) <= limit:
        return stmt
    return stmt.limit(limit + 1, copy=False)


class Deadline:
    """Interrupts every connection working on the query once `seconds` have passed."""

    def __init__(self, seconds: float):
        self.seconds, self.fired, self._watched, self._lock = seconds, False, [], threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        with self._lock:
            self._watched.clear()  # the connections are closed by their owners; hold no reference to them

    def watch(self, con):
        with self._lock:
            if self.fired:
                raise duckdb.InterruptException("deadline passed")
            self._watched.append(con)
        return con

    def unwatch(self, con) -> None:
        with self._lock:
            self._watched = [c for c in self._watched if c is not con]

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for con in self._watched:
                try:
                    con.interrupt()
                except duckdb.Error:  # closed meanwhile
                    pass


def inspect(con, table: str, columns: dict[str, str]) -> dict[str, str | None]:
    """The kind of personal data in each of these columns of `table` (None: none)."""
    declared = {c.name: c.pii for c in BY_NAME[table].columns} if table in BY_NAME else None
    found = detect(con, table, columns, declared=declared) if columns else {}
    return {c: found.get(c) for c in columns}


def _sandbox(con, tables: list[str], mask: bool, *, limits: SandboxLimits = SandboxLimits(),
             needed: dict[str, list[str]] | None = None, kinds: dict[str, dict[str, str | None]] | None = None,
             deadline: Deadline | None = None) -> tuple[duckdb.DuckDBPyConnection, list[tuple[str, str, str]]]:
    """A locked in-memory DuckDB holding the columns the query reads (`needed`; None: all), personal data masked
    when `mask`. Every column copied is inspected first (`kinds` holds those already inspected).

    `con` is read through a cursor of its own (interruptible on its own); returns the box and the masked
    (table, column, kind)."""
    cursor = deadline.watch(con.cursor()) if deadline else con.cursor()
    kinds, box = {t: dict((kinds or {}).get(t, {})) for t in tables}, None
    try:
        box = duckdb.connect(":memory:", config={
            "enable_external_access": False, "lock_configuration": True, "autoload_known_extensions": False,
            "autoinstall_known_extensions": False, "memory_limit": f"{limits.memory_mb}MB",
            "threads": limits.threads, "temp_directory": ""})
        if deadline:
            deadline.watch(box)
        pseudo, masked = Pseudonymiser.for_connection(con), []
        for t in tables:
            types = columns_of(cursor, t)
            cols = list(types) if needed is None else (needed.get(t) or list(types)[:1])  # count(*) reads none
            if mask and (unseen := {c: types[c] for c in cols if c not in kinds[t]}):
                kinds[t] |= inspect(cursor, t, unseen)
            exprs, keyed = [], False
            for c in cols:
                kind, q = kinds[t].get(c) if mask else None, quote_ident(c)
                if not kind:
                    exprs.append(q)
                    continue
                masked.append((t, c, kind))
                keyed |= kind == "text" or pseudo.keyed(kind, types[c])
                exprs.append(f"{pseudo.text_sql(q) if kind == 'text' else pseudo.sql(kind, q, types[c])} AS {q}")
            sql = f"SELECT {', '.join(exprs)} FROM {quote_ident(t)}"
            reader = cursor.sql(sql, params=pseudo.params if keyed else None).to_arrow_reader(100_000)
            box.register("__incoming", reader)  # streamed batch by batch into the box, under its memory limit
            box.execute(f"CREATE TABLE {quote_ident(t)} AS SELECT * FROM __incoming")
            box.unregister("__incoming")
        return box, masked
    except BaseException:
        if box is not None:
            box.close()
        raise
    finally:
        if deadline:
            deadline.unwatch(cursor)
        cursor.close()


@dataclass
class Output:
    names: list[str]
    rows: list[dict]
    more: bool
    """More rows exist than were returned."""
    capped_by: str | None
    """`cells` or `bytes` when that cap, not the row limit, ended the rows."""
    notes: list[str]


def _size_sql(column: str, type_: str, cap: int) -> str:
    """Characters of a value as text, measured in DuckDB; a list longer than `cap` items is not cast at all (-1)."""
    if type_.endswith("[]") or type_.startswith("LIST"):
        return f"CASE WHEN len({column}) > {cap} THEN -1 ELSE coalesce(strlen({column}::VARCHAR), 4) END"
    return f"coalesce(strlen({column}::VARCHAR), 4)"


def _cut_sql(column: str, type_: str, cap: int) -> str:
    if type_.endswith("[]") or type_.startswith("LIST"):
        return f"left({column}[1:{cap}]::VARCHAR, {cap})"
    return f"left({column}::VARCHAR, {cap})"


def _run(box, stmt, limit: int, limits: SandboxLimits) -> Output:
    """Run the query into a temporary table, then fetch what fits the caps (sizes measured in DuckDB)."""
    ncols = len(box.sql(stmt.sql(dialect="duckdb")).columns)  # binds, does not run
    if ncols > limits.max_cells:
        raise ToolError(f"The query returns {ncols:,} columns, more than the {limits.max_cells:,} cells a result "
                        "may hold. Select the columns you need.")
    rows_cap = min(limit, limits.max_cells // ncols)
    box.execute(f"CREATE TEMP TABLE __result AS {_cap_limit(stmt, rows_cap).sql(dialect='duckdb')}")
    described = box.execute("SELECT * FROM __result LIMIT 0").description
    names, types = [d[0] for d in described], [str(d[1]).upper() for d in described]
    variable = [i for i, t in enumerate(types) if not (is_numeric(t) or t.startswith(FIXED_SIZE))]
    q = [quote_ident(n) for n in names]
    cap = max(100, min(limits.max_value_chars, limits.max_bytes // max(1, 2 * len(variable))))
    box.execute("CREATE TEMP TABLE __sizes AS SELECT rowid AS r" + "".join(
        f", {_size_sql(q[i], types[i], cap)} AS s{i}" for i in variable) + " FROM __result")
    n = box.execute("SELECT count(*) FROM __result").fetchall()[0][0]
    sizes = (np.array(box.execute("SELECT * EXCLUDE (r) FROM __sizes ORDER BY r").fetchall(), dtype=np.int64)
             if variable and n else np.zeros((n, len(variable)), dtype=np.int64))
    over = (sizes > cap) | (sizes < 0)
    row_bytes = np.where(over, cap, sizes).sum(axis=1) + 24 * (ncols - len(variable)) + 8 * ncols
    fits = int(np.searchsorted(np.cumsum(row_bytes[:rows_cap]), limits.max_bytes, side="right"))
    keep = max(1, min(fits, rows_cap, n)) if n else 0
    cut = [i for j, i in enumerate(variable) if over[:keep, j].any()]
    select = [f"CASE WHEN s{i} > {cap} OR s{i} < 0 THEN NULL ELSE {q[i]} END" if i in cut else q[i]
              for i in range(ncols)]
    select += [f"CASE WHEN s{i} > {cap} OR s{i} < 0 THEN {_cut_sql(q[i], types[i], cap)} END" for i in cut]
    sized = " JOIN __sizes ON __sizes.r = __result.rowid" if cut else ""
    fetched = box.execute(f"SELECT {', '.join(select + ['0'])} FROM __result{sized} ORDER BY __result.rowid "
                          f"LIMIT {keep}").fetchall()
    rows, notes = [], []
    for r, values in enumerate(fetched):
        row = {name: (v if isinstance(jsonable(v), str | int | float | bool | list | dict | type(None)) else str(v))
               for name, v in zip(names, values[:ncols], strict=True)}
        for k, i in enumerate(cut):
            if (prefix := values[ncols + k]) is not None:
                size = int(sizes[r, variable.index(i)])
                whole = f"{size:,} characters" if size >= 0 else "a list of more than " + f"{cap:,} items"
                row[names[i]] = f"{prefix}… [cut: {whole} in all]"
                notes.append(f"{names[i]} in row {r + 1} holds {whole}; only the first {cap:,} characters are "
                             "shown. Return a count, a length or a slice (len(x), x[1:10], left(x, 200)) instead.")
        rows.append(row)
    while len(rows) > 1 and len(json.dumps(rows, default=str)) > limits.max_bytes:
        rows.pop()
    capped_by = None
    if len(rows) < min(n, limit):
        capped_by = "cells" if len(rows) == rows_cap < limit else "bytes"
    return Output(names, rows, n > len(rows), capped_by, notes)


def _explain(exc: duckdb.Error, cols_by_table: dict) -> str:
    msg = re.sub(r"(string|value) '[^']*'", r"\1 '…'", str(exc).splitlines()[0])  # values never echo back
    m = re.search(r'column "?([^"\s]+)"? not found|does not have a column named "([^"]+)"', str(exc))
    if m:
        bad = m.group(1) or m.group(2)
        every = sorted({c for cols in cols_by_table.values() for c in cols})
        close = difflib.get_close_matches(bad.split(".")[-1], every, n=3, cutoff=0.5)
        where = "; ".join(f"{t}: {', '.join(c)}" for t, c in cols_by_table.items())
        hint = f" Closest columns: {', '.join(close)}." if close else ""
        return f"Unknown column {bad!r}.{hint} Columns of the tables in the query: {where}."
    return f"The query failed: {msg}"


def _privacy_note(role: str, masked: list[tuple[str, str, str]], outputs: dict[str, str]) -> str:
    if role == "approver":
        if not outputs:
            return ""
        return (f" Personal data shown in clear for your role (approver): {', '.join(outputs)}; the assistant's "
                "model receives these columns pseudonymised.")
    if not masked:
        return ""
    listed = ", ".join(f"{t}.{c} ({LABEL[k]})" for t, c, k in masked)
    coarse = " Birth dates show only their year." if any(k == "birth_date" for *_, k in masked) else ""
    return (f" Personal data pseudonymised for your role ({role}): {listed}. Codes are keyed to this warehouse: "
            f"equal values share a code, so counts and joins still work, but a code cannot be turned back into "
            f"the value.{coarse}")


def _execute(con, stmt, tables: list[str], mask: bool, limits: SandboxLimits, deadline: Deadline, p: QueryParams):
    """Trace, inspect, copy, run: the output, the masked input columns, the personal-data output columns."""
    box, columns = None, {}
    try:
        reader = deadline.watch(con.cursor())
        try:
            columns = {t: columns_of(reader, t) for t in tables}
            shape = lineage(stmt, {t: dict.fromkeys(cols) for t, cols in columns.items()})  # what it reads
            reads = shape.needed if shape else {t: list(cols) for t, cols in columns.items()}
            kinds = {t: inspect(reader, t, {c: columns[t][c] for c in reads.get(t, [])}) for t in tables}
        finally:
            deadline.unwatch(reader)
            reader.close()
        personal = any(k and k != "text" for ks in kinds.values() for k in ks.values())
        traced = lineage(stmt, {t: {c: kinds[t].get(c) for c in columns[t]} for t in tables}) if personal else shape
        box, masked = _sandbox(con, tables, mask, limits=limits, needed=shape and shape.needed, kinds=kinds,
                               deadline=deadline)
        try:
            out = _run(box, stmt, p.limit, limits)
        except duckdb.BinderException:
            if shape is None:
                raise
            box.close()  # the lineage missed a column the query needs: copy whole tables and run again
            box, masked = _sandbox(con, tables, mask, limits=limits, kinds=kinds, deadline=deadline)
            out, traced = _run(box, stmt, p.limit, limits), None
            if not mask:  # an approver's clear rows: what the model must not see is judged on every column
                reader = deadline.watch(con.cursor())
                try:
                    personal = any(k not in (None, "text") for t, cols in columns.items()
                                   for k in inspect(reader, t, cols).values())
                finally:
                    deadline.unwatch(reader)
                    reader.close()
    except duckdb.OutOfMemoryException as exc:
        raise ToolError(f"The query needed more than the sandbox's {limits.memory_mb:,} MB of memory and was "
                        "stopped. Aggregate before collecting (count() or sum() rather than list() or "
                        "string_agg() over many rows), filter by date, or select fewer columns.") from exc
    except duckdb.Error as exc:
        if deadline.fired:
            raise ToolError(f"The query ran longer than {p.timeout_s:g} s (reading {', '.join(tables) or 'no table'}"
                            " included) and was stopped. Aggregate more, filter by date, or raise timeout_s "
                            "(at most 60).") from exc
        raise ToolError(_explain(exc, {t: list(c) for t, c in columns.items()})) from exc
    finally:
        if box is not None:
            box.close()
    if traced is not None and len(traced.outputs) == len(out.names):
        outputs = {n: k for n, k in zip(out.names, traced.outputs, strict=True) if k}
    else:  # beyond the lineage: every text output of a query over personal data counts as personal data
        personal = personal or any(k not in (None, "text") for _, _, k in masked)
        outputs = {n: "pii" for n in out.names if personal and any(isinstance(r.get(n), str | list | dict)
                                                                    for r in out.rows)}
    return out, masked, outputs


@register(example=QueryParams(sql="SELECT country, count(*) AS customers FROM customers GROUP BY country "
                                  "ORDER BY customers DESC"),
          key_metrics=("rows",),
          concepts={"counts": ["how many", "number of", "count", "total number", "share of", "percentage of",
                               "proportion of"],
                    "aggregates": ["average", "sum of", "median", "per country", "by country", "per category",
                                   "by category", "aov", "average order value", "orders", "order count"],
                    "tables": ["table", "tables", "sql", "select", "query", "rows", "column", "columns",
                               "support tickets", "tickets", "opted out", "opt-in", "opted in", "consent status",
                               "loyalty"]},
          requests=["How many customers do we have per country?", "run this SQL: select count(*) from orders",
                    "What is the average order value by category?",
                    "Which 10 customers spent the most last year?", "How many leads came from webinars in 2025?",
                    "count reviews by source and rating", "Show me the campaigns table",
                    "What share of customers are loyalty members?",
                    "How many support tickets were logged each month?",
                    "list the ten biggest orders of the year", "how many reviews mention a refund?"])
def query_data(con: duckdb.DuckDBPyConnection, p: QueryParams, ctx: ToolContext) -> QueryResult:
    """Answer a question no other tool covers with one read-only SQL SELECT over allow-listed warehouse tables."""
    allowed = {t for t in table_names(con) if t not in SYSTEM_TABLES and not t.startswith("_")}
    stmt, tables = validate(p.sql, allowed)
    mask, limits = ctx.role != "approver", SandboxLimits.of(ctx)
    t0 = time.perf_counter()
    with Deadline(p.timeout_s) as deadline:
        out, masked, outputs = _execute(con, stmt, tables, mask, limits, deadline, p)
    elapsed = time.perf_counter() - t0
    summary = (f"{len(out.rows)} row(s) × {len(out.names)} column(s) from {', '.join(tables) or 'no table'} "
               f"in {elapsed * 1000:.0f} ms.")
    warnings = list(out.notes)
    if out.capped_by == "cells":
        warnings.append(f"Only {len(out.rows)} rows are shown: a result holds at most {limits.max_cells:,} cells "
                        f"({len(out.names)} columns). Select fewer columns or aggregate.")
    elif out.capped_by == "bytes":
        warnings.append(f"Only {len(out.rows)} rows are shown: a result holds at most {limits.max_bytes:,} bytes. "
                        "Select fewer or shorter columns, or aggregate.")
    elif out.more:
        warnings.append(f"More rows exist; only the first {p.limit} are shown (aggregate, or raise limit to 200).")
    summary += _privacy_note(ctx.role, masked if mask else [], outputs)
    if len(out.rows) == 1 and len(out.names) <= 6:
        shown = {n: ("(personal data)" if n in outputs and not mask else v) for n, v in out.rows[0].items()}
        summary += " Result: " + ", ".join(f"{n} = {v}" for n, v in shown.items()) + "."
    return QueryResult(summary=summary, data=out.rows, warnings=warnings,
                       metrics={"rows": len(out.rows), "columns": out.names, "tables": tables,
                                "truncated": out.more, "masked_columns": [f"{t}.{c}" for t, c, _ in masked], "pii_columns": outputs,
                                "elapsed_ms": round(elapsed * 1000, 1), "sql": stmt.sql(dialect="duckdb")})
