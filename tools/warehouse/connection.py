"""The DuckDB warehouse: open it, migrate it, describe it."""

from __future__ import annotations

import difflib
import re
import threading
import unicodedata
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from tools.warehouse.schema import BY_NAME, SCHEMA_VERSION, SYSTEM_TABLES, TABLES, migrations

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NUMERIC_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                           "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "BOOLEAN"})
"""DuckDB column types that enter a model as numbers (booleans too; DECIMAL(p, s) counts by its name)."""


def is_numeric(type_name: str | None) -> bool:
    return bool(type_name) and type_name.split("(")[0].upper() in NUMERIC_TYPES


class WarehouseError(Exception):
    """A problem with the warehouse the user can fix (the message says how)."""


def connect(path: Path | str, *, read_only: bool = False, migrate_schema: bool = True) -> SharedConnection:
    """Open (and create/migrate, unless read-only) the warehouse at `path`.

    Within one process every caller shares one DuckDB database instance per file and gets its own cursor (its own
    transactions); the file is released when the last caller closes (see `SharedConnection`)."""
    from tools.warehouse.backends import selected_backend  # NORTHSTAR_WAREHOUSE=spark:… (docs/scale-out.md)
    if (backend := selected_backend()) is not None:
        return backend.connect(path, read_only=read_only, migrate_schema=migrate_schema)
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"No warehouse at {path}. Run `northstar init --demo` or `northstar load` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _share(path, read_only, migrate_schema)
    except duckdb.IOException as exc:
        raise WarehouseError(_open_refusal(path, exc)) from exc


def _open_refusal(path: Path, exc: Exception) -> str:
    """What to do when another process holds the file, in words (not DuckDB's lock message)."""
    text = str(exc)
    if "lock" not in text.lower():
        return f"Cannot open {path}: {text}"
    pid = re.search(r"\(PID (\d+)\)", text)
    holder = f"process {pid.group(1)}" if pid else "another process"
    return (f"The warehouse {path} is in use by {holder}. While `northstar serve` runs for this home, `ask`, `chat`, "
            "`approvals`, `approve`, `tool`, `load` and `tables` go through it (NORTHSTAR_SERVER or the home's "
            "server.json); for anything else, stop the other process first, then try again.")


class _Root:
    """The process's one database instance for a file, and how many callers hold a cursor on it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, read_only: bool):
        self.con, self.read_only, self.users, self.migrated = con, read_only, 0, False
        self.writer = threading.RLock()
        """One writer at a time (a statement, or BEGIN … COMMIT); reads never wait for it."""


_ROOTS: dict[str, _Root] = {}
_ROOTS_LOCK = threading.Condition()
UPGRADE_WAIT_S = 30.0
"""How long a writer waits for this process's read-only users to finish before the file is reopened for writing."""


def _share(path: Path, read_only: bool, migrate_schema: bool) -> SharedConnection:
    """A cursor on the shared instance of `path`, opening it (read-write unless only reads were asked) when this
    process holds none. A read-only request gets a cursor of a read-write instance (DuckDB refuses one file opened
    twice with different configurations); a write request waits for the read-only users, then reopens."""
    key = str(path.resolve())
    with _ROOTS_LOCK:
        root = _ROOTS.get(key)
        if root is not None and root.read_only and not read_only:
            _ROOTS_LOCK.wait_for(lambda: _ROOTS.get(key) is not root or root.users == 0, UPGRADE_WAIT_S)
            if _ROOTS.get(key) is root:
                if root.users:
                    raise WarehouseError(f"{path} is open read-only in this process and its readers did not finish "
                                         f"within {UPGRADE_WAIT_S:.0f} s; try again.")
                root.con.close()
                del _ROOTS[key]
            root = _ROOTS.get(key)
        if root is None:
            root = _ROOTS[key] = _Root(_open(path, read_only), read_only)
        root.users += 1  # counted first: a forgotten connection collected meanwhile cannot close it under us
        try:
            if migrate_schema and not root.read_only and not root.migrated:
                migrate(root.con)  # once per instance, not on every connect
                root.migrated = True
            cursor = root.con.cursor()
        except BaseException:
            root.users -= 1
            if not root.users:
                _release_root(key, root)
            raise
    return SharedConnection(cursor, key, root)


def _release(key: str, root: _Root) -> None:
    with _ROOTS_LOCK:
        root.users -= 1
        if root.users <= 0:
            _release_root(key, root)
        _ROOTS_LOCK.notify_all()


def _release_root(key: str, root: _Root) -> None:
    if _ROOTS.get(key) is root:
        del _ROOTS[key]
    root.con.close()  # closes its cursors too; the file is free for other processes


WRITE_WAIT_S = 120.0
_READS = frozenset({"SELECT", "WITH", "FROM", "VALUES", "TABLE", "PRAGMA", "DESCRIBE", "SHOW", "EXPLAIN",
                    "SUMMARIZE", "SET", "RESET"})
_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)


def _statement_kind(query) -> str:
    """read, begin, end or write, from a statement's first word (a writing CTE counts as a read: none are used)."""
    if not isinstance(query, str):
        return "write"
    text = query[_COMMENTS.match(query).end():]
    word = text[:12].split(None, 1)[0].rstrip(";").upper() if text.strip() else ""
    if word in _READS:
        return "read"
    if word in ("BEGIN", "START"):
        return "begin"
    if word in ("COMMIT", "END", "ROLLBACK", "ABORT"):
        return "end"
    return "write"


class SharedConnection:
    """One caller's cursor on the shared instance: behaves as a DuckDB connection (every attribute is the
    cursor's); `close()` (or leaving a `with` block, or being garbage-collected) gives the caller's share back.

    Writes go through one writer path per instance: a writing statement, or a transaction from BEGIN to COMMIT,
    holds the instance's writer lock, so two requests never conflict on the same rows; reads run in parallel."""

    __slots__ = ("_cursor", "_key", "_root", "_closed", "_txn", "__weakref__")

    def __init__(self, cursor: duckdb.DuckDBPyConnection, key: str, root: _Root):
        self._cursor, self._key, self._root, self._closed, self._txn = cursor, key, root, False, False

    def __getattr__(self, name: str):
        if name in SharedConnection.__slots__:  # not set yet (a failed __init__): no recursion through _cursor
            raise AttributeError(name)
        return getattr(self._cursor, name)

    def execute(self, query, parameters=None):
        return self._run(self._cursor.execute, query, parameters)

    def executemany(self, query, parameters=None):
        return self._run(self._cursor.executemany, query, parameters)

    def _run(self, method, query, parameters):
        kind = _statement_kind(query)
        args = (query,) if parameters is None else (query, parameters)
        if kind == "read" or (self._txn and kind == "write"):
            return method(*args)
        if kind == "end":
            try:
                return method(*args)
            finally:
                self._end_txn()
        self._acquire()
        if kind == "begin":
            try:
                out = method(*args)
            except BaseException:
                self._root.writer.release()
                raise
            self._txn = True
            return out
        try:  # one writing statement in auto-commit
            return method(*args)
        finally:
            self._root.writer.release()

    def _acquire(self) -> None:
        if not self._root.writer.acquire(timeout=WRITE_WAIT_S):
            raise WarehouseError(f"The warehouse was busy with another write for {WRITE_WAIT_S:.0f} s; nothing was "
                                 "changed. Try again in a moment.")

    def _end_txn(self) -> None:
        if self._txn:
            self._txn = False
            self._root.writer.release()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._cursor.close()  # an open transaction is rolled back
        finally:
            try:
                self._end_txn()
            except RuntimeError:  # collected in another thread than the one that began: the lock is that thread's
                pass
            _release(self._key, self._root)

    def __enter__(self) -> SharedConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release
            pass

    def __repr__(self) -> str:
        return f"<SharedConnection {self._key}{' closed' if self._closed else ''}>"


def _open(path: Path, read_only: bool, wait_s: float = 2.0) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried briefly: opening and closing one file from several threads of a process races
    (ResourceInUseException) for a few milliseconds."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if "ResourceInUse" not in type(exc).__name__ or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


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
    _missing_tables(con)
    return SCHEMA_VERSION


def _missing_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Tables of the current schema that a warehouse at this version lacks (one built by a development build that
    recorded a version before all of its tables existed) are created; existing tables are never touched."""
    from tools.warehouse.schema import ddl

    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = current_schema()").fetchall()}
    for table in TABLES:
        if table.name not in have:
            con.execute(ddl(table))


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
    """Whether `name` names a table, in any case (DuckDB resolves names case-insensitively)."""
    return _existing(con, name) is not None


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column → type of `table` (named in any case), in table order; empty when there is no such table."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND lower(table_name) = lower(?) ORDER BY ordinal_position", [table]).fetchall()
    return dict(rows)


# ---- names, as DuckDB resolves them ---------------------------------------------------------------------------

PROTECTED: frozenset[str] = frozenset(
    {t.name for t in TABLES if t.kind != "canonical"} | SYSTEM_TABLES | {"schema_version", "checkpoints"})
"""Tables Northstar owns (saved runs, actions, the audit log, the outbox, schema version, demo truth; LangGraph's
checkpoints): never a load target, never a tool's `table`, in any spelling. Names starting with _ are reserved too."""
_OWNED = {"schema_version": "the schema's migration history", "checkpoints": "the conversations' saved state"}
MAX_NAME = 128
_QUOTES = {'"': '"', "'": "'", "`": "`", "[": "]"}
Purpose = Literal["load", "read"]


def plain_name(name: str) -> str:
    """The table name a user meant, spelled as typed: NFKC-normalised (full-width letters become ASCII), invisible
    characters and surrounding spaces dropped, quotes and a `main.` qualifier taken off. Raises WarehouseError for
    anything that is not a plain name (letters, digits and _)."""
    shown = repr(name if len(str(name)) <= 80 else f"{str(name)[:80]}…")
    if len(str(name)) > 4 * MAX_NAME:
        raise WarehouseError(f"{shown} is too long for a table name ({MAX_NAME} characters at most).")
    text = unicodedata.normalize("NFKC", str(name))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()
    parts = [_unquote(part.strip()) for part in re.findall(r'"(?:[^"]|"")*"|[^.]+', text)] or [""]
    last = parts[-1]
    if last and last.lower() in PROTECTED or last.startswith("_"):
        return last  # refused by the caller, which names the table
    if len(parts) > 1 and not (parts[-2].lower() == "main" and len(parts) <= 3):
        raise WarehouseError(f"{shown} is not a table of the warehouse; use a plain table name like {last[:80]!r}.")
    if not IDENT.match(last) or len(last) > MAX_NAME:
        looks = _skeleton(last)
        hint = (f" (it looks like {looks}, a table Northstar keeps for itself)" if looks in PROTECTED else "")
        raise WarehouseError(f"{shown} is not a valid table name: use ASCII letters, digits and _, starting with a "
                             f"letter, at most {MAX_NAME} characters{hint}.")
    return last


def _unquote(part: str) -> str:
    if len(part) >= 2 and _QUOTES.get(part[0]) == part[-1]:
        return part[1:-1].replace(part[0] * 2, part[0]).strip()
    return part


def _skeleton(text: str) -> str:
    """Look-alike letters (Cyrillic а, Greek ο …) as the ASCII letter they imitate, for the error message."""
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        word = unicodedata.name(ch, "").rsplit(" ", 1)[-1]
        out.append(word.lower() if len(word) == 1 else ch)
    return "".join(out).lower()


def protected_refusal(name: str, purpose: Purpose = "read") -> str | None:
    """Why `name` (in any spelling) may not be loaded into or passed as a tool's table; None when it may."""
    try:
        plain = plain_name(name)
    except WarehouseError:
        return None  # not a name at all: the caller's own check says so
    key = plain.lower()
    if key not in PROTECTED and not key.startswith("_"):
        return None
    if key.startswith("_"):
        what = f"{plain} is reserved: names starting with _ are Northstar's working tables"
    else:
        desc = BY_NAME[key].description.rstrip(".") if key in BY_NAME else _OWNED.get(key, "")
        what = f"{key} is a system table written by Northstar itself ({desc[:1].lower() + desc[1:]})"
    canonical = ", ".join(t.name for t in TABLES if t.kind == "canonical")
    if purpose == "load":
        return (f"{what}; no file can be loaded into it. Load your file under a name of your own (e.g. "
                f"my_{key.lstrip('_')}) or into one of the tables you own: {canonical}.")
    return (f"{what}, not data to analyse. Pass one of your tables instead ({canonical}, or one you loaded); "
            "saved results are read by their run_id.")


def _existing(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    key = name.lower()
    return next((t for t in table_names(con) if t.lower() == key), None)


def resolve_table(con: duckdb.DuckDBPyConnection, name: str, purpose: Purpose = "read") -> str:
    """The warehouse's spelling of the table `name` means, as DuckDB resolves it (case-insensitively, quotes and a
    `main.` qualifier taken off). Refuses Northstar's own tables (WarehouseError naming the table and what to do).
    For "load", a new table keeps the user's spelling; for "read", a missing table is an error with suggestions."""
    if why := protected_refusal(name, purpose):
        raise WarehouseError(why)
    plain = plain_name(name)
    found = _existing(con, plain)
    if found is not None:
        return found
    if plain.lower() in BY_NAME:
        return plain.lower()
    if purpose == "load":
        return plain
    names = [t for t in table_names(con) if t.lower() not in PROTECTED and not t.startswith("_")]
    close = difflib.get_close_matches(plain.lower(), [t.lower() for t in names], n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else f" Tables: {', '.join(names) or 'none'}."
    raise WarehouseError(f"Table {plain!r} does not exist.{hint} Load it with `northstar load {plain} FILE`.")


def clean_name(name: str) -> str:
    """How the loader names a file's column: `Total Charges` → total_charges, `customerID` → customerid."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", unicodedata.normalize("NFKC", str(name)).strip()).strip("_").lower()
    out = out or "column"
    return out if IDENT.match(out) else f"c_{out}"


def resolve_columns(con: duckdb.DuckDBPyConnection, table: str, names: list[str] | tuple[str, ...]) -> list[str]:
    """The table's spelling of each column as a user types it: exactly, in any case, or as it was in their file
    before loading (`Total Charges` for total_charges). WarehouseError with suggestions for a missing one."""
    have = list(columns_of(con, table))
    by_lower = {c.lower(): c for c in have}
    by_clean = {clean_name(c): c for c in have}
    out = []
    for name in names:
        text = str(name).strip()
        found = (text if text in have else by_lower.get(text.lower()) or by_clean.get(clean_name(text)))
        if found is None:
            close = difflib.get_close_matches(text.lower(), list(by_lower), n=3)
            hint = (f" Did you mean {', '.join(by_lower[c] for c in close)}?" if close
                    else f" Columns: {', '.join(have)}.")
            raise WarehouseError(f"Table {table!r} has no column {str(name)!r}.{hint}")
        out.append(found)
    return out


def resolve_params(con: duckdb.DuckDBPyConnection, params, *, table_field: str | None = "table",
                   table: str | None = None, columns: tuple[str, ...] = ()):
    """A copy of a tool's params with its table (the `table_field`, or the fixed `table` its columns belong to) and
    the named column fields (a name or a list of names; None left alone) spelled as in the warehouse."""
    update = {}
    if table_field is not None and getattr(params, table_field) is not None:
        table = update[table_field] = resolve_table(con, getattr(params, table_field), "read")
    for field_name in columns:
        value = getattr(params, field_name)
        if value is None or table is None:
            continue
        if isinstance(value, str):
            update[field_name] = resolve_columns(con, table, [value])[0]
        else:
            update[field_name] = resolve_columns(con, table, list(value))
    return params.model_copy(update=update) if update else params


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
    """Raise a helpful error when a table or some of its columns are missing (names in any case, as in DuckDB).

    For Northstar's own lookups (saved runs included); a table a user names goes through `resolve_table`."""
    if _existing(con, table) is None:
        names = table_names(con)
        close = difflib.get_close_matches(table, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Tables: {', '.join(names) or 'none'}."
        raise WarehouseError(f"Table {table!r} does not exist.{hint} Load it with `northstar load {table} FILE`.")
    resolve_columns(con, table, columns)


def data_end(con: duckdb.DuckDBPyConnection) -> date | None:
    """The last day with data (orders, ad spend or events): the default "today" of the warehouse."""
    row = con.execute(
        "SELECT greatest((SELECT max(order_date) FROM orders), (SELECT max(date) FROM ad_spend), "
        "(SELECT max(event_time)::DATE FROM events))").fetchone()
    return row[0]
