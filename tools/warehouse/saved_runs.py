"""Which saved run of an output table is the newest: run ids are content hashes (deterministic, so a re-run reuses
its rows), so their order says nothing about time. `save_run` records when each run was saved here; the newest is
chosen by that time, and a run saved by other means (a loader, a test seeding rows) only when none is recorded."""

from __future__ import annotations

from datetime import datetime

import duckdb


def record_run(con: duckdb.DuckDBPyConnection, table: str, run_id: str, when: datetime | None = None) -> None:
    """Mark `run_id` of `table` as saved now (again, when a re-run reuses it: it is the newest result)."""
    con.execute("INSERT OR REPLACE INTO saved_runs VALUES (?, ?, ?)", [table, run_id, when or datetime.now()])


def latest_run(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, datetime | None] | None:
    """(run id, when it was saved) of the newest run of `table` that still has rows; None when it has none."""
    row = con.execute(f"""SELECT r.run_id, r.saved_at FROM saved_runs r
                          WHERE r.output_table = ? AND EXISTS (SELECT 1 FROM "{table}" t WHERE t.run_id = r.run_id)
                          ORDER BY r.saved_at DESC LIMIT 1""", [table]).fetchone()
    if row:
        return row[0], row[1]
    legacy = con.execute(f'SELECT max(run_id) FROM "{table}"').fetchone()[0]  # rows saved without a record
    return (legacy, None) if legacy is not None else None
