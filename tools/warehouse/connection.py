"""The DuckDB warehouse: open it, migrate it, describe it."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from tools.warehouse.schema import BY_NAME, SCHEMA_VERSION, SYSTEM_TABLES, migrations

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NUMERIC_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                           "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "BOOLEAN"})
"""DuckDB column types that enter a model as numbers (booleans too; DECIMAL(p, s) counts by its name)."""


def is_numeric(type_name: str | None) -> bool:
    return bool(type_name) and type_name.split("(")[0].upper() in NUMERIC_TYPES


class WarehouseError(Exception):
    """A problem with the warehouse the user can fix (the message says how)."""


def connect(path: Path | str, *, read_only: bool = False, migrate_schema: bool = True) -> duckdb.DuckDBPyConnection:
    """Open (and create/migrate, unless read-only) the warehouse at `path`."""
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"No warehouse at {path}. Run `northstar init --demo` or `northstar load` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise WarehouseError(f"Cannot open {path}: {exc}. Is another Northstar process writing to it?") from exc
    if migrate_schema and not read_only:
        migrate(con)
    return con


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'").fetchone()
    if not row[0]:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply pending migrations in one transaction each; returns the version reached."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    current = schema_version(con)
    for m in migrations():
        if m.version <= current:
            continue
        con.execute("BEGIN")
        try:
            for stmt in m.statements:
                con.execute(stmt)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [m.version])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection):
    """All or nothing: commit on success, roll back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return name in table_names(con)


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
    return dict(rows)


def quote(name: str) -> str:
    """Quote an identifier after checking it is a plain name (no injection through table names)."""
    if not IDENT.match(name):
        raise WarehouseError(f"{name!r} is not a valid table or column name (letters, digits and _ only).")
    return f'"{name}"'


def table_summary(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every table with its kind and row count."""
    out = []
    for name in table_names(con):
        kind = BY_NAME[name].kind if name in BY_NAME else ("system" if name in SYSTEM_TABLES else "user")
        rows = con.execute(f"SELECT count(*) FROM {quote(name)}").fetchone()[0]
        out.append({"table": name, "kind": kind, "rows": rows})
    return out


def require_table(con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | tuple[str, ...] = ()) -> None:
    """Raise a helpful error when a table or some of its columns are missing."""
    import difflib

    names = table_names(con)
    if table not in names:
        close = difflib.get_close_matches(table, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Tables: {', '.join(names) or 'none'}."
        raise WarehouseError(f"Table {table!r} does not exist.{hint} Load it with `northstar load {table} FILE`.")
    have = columns_of(con, table)
    for col in columns:
        if col not in have:
            close = difflib.get_close_matches(col, list(have), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else f" Columns: {', '.join(have)}."
            raise WarehouseError(f"Table {table!r} has no column {col!r}.{hint}")


def data_end(con: duckdb.DuckDBPyConnection) -> date | None:
    """The last day with data (orders, ad spend or events): the default "today" of the warehouse."""
    row = con.execute(
        "SELECT greatest((SELECT max(order_date) FROM orders), (SELECT max(date) FROM ad_spend), "
        "(SELECT max(event_time)::DATE FROM events))").fetchone()
    return row[0]
