"""`northstar init --demo` and `northstar load` into a Spark warehouse, with the DuckDB code doing the work.

The demo world and a file's validation are DuckDB programs (vectorised generators; read_csv with rejects, typed
checks by row and line). Rather than a second copy of either, they run unchanged on a scratch in-memory DuckDB,
and the checked rows are then written to Spark as Parquet: same seed → the same rows on both backends, and the
same refusals, word for word. What needs the target's rows (keys already present, counts before and after) is
asked of Spark; the audit entry goes to the home's DuckDB file like every other.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from tools.warehouse.audit_log import audit
from tools.warehouse.backends.base import duck_arrow
from tools.warehouse.connection import WarehouseError, migrate, quote, resolve_table
from tools.warehouse.schema import BY_NAME


def _scratch() -> duckdb.DuckDBPyConnection:
    scratch = duckdb.connect(":memory:")
    migrate(scratch)
    return scratch


def generate_demo(con, customers: int, seed: int) -> dict[str, int]:
    """The demo world built by the DuckDB generator, then written table by table to the Spark warehouse."""
    from tools.warehouse.backends.spark import _VERSION, LOCAL
    from tools.warehouse.demo.build import DERIVED, TABLES, generate
    from tools.warehouse.schema import TABLES as SCHEMA

    if con.read_only:
        raise WarehouseError("The warehouse is open read-only; the demo cannot be written.")
    scratch = _scratch()
    try:
        counts = generate(scratch, customers, seed)
        for table in [t.name for t in SCHEMA]:
            rows = duck_arrow(scratch, f'SELECT * FROM "{table}"')
            if table not in TABLES + DERIVED and not rows.num_rows:
                continue  # not the demo's (audit log, saved state): left as it is
            if table in LOCAL:  # governance state of the old world goes; the demo's own (planted) rows come in
                con.local.execute(f'DELETE FROM "{table}"')
                if rows.num_rows:
                    con.local.register("__demo_rows", rows)
                    con.local.execute(f'INSERT INTO "{table}" SELECT * FROM __demo_rows')
                    con.local.unregister("__demo_rows")
                continue
            con.store.write_arrow(table, rows)
    finally:
        scratch.close()
    _VERSION["n"] += 1
    return counts


def load_file(con, table: str, path, mode: str = "append", *, user: str | None = None,
              refusal: str | None = None, **options):
    """Load one file into a Spark warehouse table, validated exactly as `tools.warehouse.loader.load_file`."""
    from tools.warehouse.backends.spark import _VERSION, LOCAL
    from tools.warehouse.loader import LoadError, _audit_failure
    from tools.warehouse.loader import load_file as duck_load

    if con.read_only and not refusal:
        refusal = "The warehouse is open read-only; nothing can be loaded."
    args = {"table": str(table or "")[:200], "file": str(path), "mode": mode}
    try:
        target = resolve_table(con, table, "load") if not refusal else str(table)
    except WarehouseError as exc:
        target, refusal = str(table), str(exc)
    scratch = _scratch()
    try:
        if refusal or target.lower() in LOCAL:  # the loader words the refusal and audits it (here: to scratch)
            duck_load(scratch, table, path, mode, user=user, refusal=refusal, **options)
        before = _count(con, target)
        report = duck_load(scratch, target, path, "replace", user=user, **options)
        staged = duck_arrow(scratch, f"SELECT * FROM {quote(target)}")
        spec = BY_NAME.get(target)
        if mode == "append" and spec and spec.primary_key and before:
            _refuse_existing_keys(con, target, spec.primary_key, staged, Path(path).name)
        if mode == "append" and before:
            con.register("_load_new", staged)
            try:
                con.execute(f"INSERT INTO {quote(target)} BY NAME SELECT * FROM _load_new")
            finally:
                con.unregister("_load_new")
        else:
            con.store.write_arrow(target, staged, "replace")
        _VERSION["n"] += 1
        report.mode, report.rows_before, report.rows_after = mode, before, _count(con, target)
        audit(con, "load", target, user=user, thread=None, outcome="ok",
              args={**args, "table": target, "rows": report.rows_in_file, "rows_before": before,
                    "rows_after": report.rows_after})
        return report
    except LoadError as exc:  # audited as the DuckDB loader does (a protected table under its own name)
        _audit_failure(con, args, user, "refused" if exc.refused else "failed", str(exc))
        raise
    finally:
        scratch.close()


def _count(con, table: str) -> int:
    if not con.store.has(table):
        return 0
    return con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]


def _refuse_existing_keys(con, table: str, key: tuple[str, ...], staged, file: str) -> None:
    from tools.warehouse.loader import MAX_LISTED, LoadError

    con.register("_load_keys", staged.select(list(key)))
    try:
        on = " AND ".join(f's."{k}" = t."{k}"' for k in key)
        clash = con.execute(f"SELECT count(*) FROM _load_keys s WHERE EXISTS (SELECT 1 FROM {quote(table)} t "
                            f"WHERE {on})").fetchone()[0]
    finally:
        con.unregister("_load_keys")
    if clash:
        raise LoadError(f"{file}: {clash} row(s) have keys that already exist in {table} (at most {MAX_LISTED} are "
                        "listed on DuckDB). Use --mode replace to replace the table, or remove those rows.")


def create_engine_table(con, table) -> None:
    """A table the engine lacks, created empty; or, in a home made when action results were kept in the local
    file, with those rows (moved, so that existing audiences and campaigns stay known)."""
    found = con.local.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND "
                              "table_name = ?", [table.name]).fetchone()[0]
    rows = duck_arrow(con.local, f'SELECT * FROM "{table.name}"') if found else None
    if rows is not None and rows.num_rows:
        con.store.write_arrow(table.name, rows)
    else:
        con.store.empty(table.name, [(c.name, c.type) for c in table.columns])
