"""What the planner may know about the warehouse: its "today" and the names it holds, cached per process.

The cache is refreshed after every tool that names things (a segment run, an audience, a budget plan) and at least
every TTL_S for other processes' changes, so a refresh must be cheap (issue 19 goal 4). It opens the file once, counts
the rows of the few tables whose scans cost (one query; DuckDB answers a bare count from metadata) and scans one
again only when its row count or columns changed; the small tables (experiments, audiences, campaigns, saved runs,
budget plans) are read every time. Segment names are kept per run: a new run costs a count of its own rows (DuckDB
skips the row groups of the other runs), never a scan of every run's rows (millions at 1M customers). A tool that
says what it named (`invalidate(tool, result, path)`) updates the cache without opening the file at all. What a row
count cannot see (an UPDATE in place, a table replaced by one of the same size) is re-read after FULL_S at most.

(Keying on the file's modification time would reload on every turn: each turn writes the audit log.)
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime

from agent.context import Context
from tools.warehouse import BY_NAME, SYSTEM_TABLES

TTL_S = 30.0
"""How stale another process's names may be (this process's own changes are seen on the next step)."""
FULL_S = 600.0
"""How stale a change a row count cannot see may be: every scan is redone after this."""
WATCHED = ("orders", "ad_spend", "events", "touchpoints", "customer_segments")
"""Tables scanned for the vocabulary; anything read from another table is read on every refresh."""
EPOCH = datetime(1970, 1, 1)
MAX_SEGMENTS = 100

_clock = time.monotonic  # tests move time forward here
_generation = 0
_tables_generation = 0
_LOCK = threading.Lock()
_CACHE: dict[str, _Entry] = {}


@dataclass
class _Entry:
    generation: int
    window: int
    full: int
    today: date
    vocab: dict
    stamps: dict[str, tuple | None] = field(default_factory=dict)
    """Watched table → (rows, definition) when its scans were made; None: changed by this process, count again."""
    channels: list[str] = field(default_factory=list)
    runs: dict[str, dict[str, int]] = field(default_factory=dict)
    """customer_segments: run id → segment name → rows."""
    saved_at: dict[str, datetime] = field(default_factory=dict)


def generation() -> int:
    """Bumped whenever tables may have changed in this process as the date facts show them (briefing.py keys on
    it): every change but a segment run saved into a non-empty customer_segments (its line has no dates)."""
    return _tables_generation


def invalidate(tool: str | None = None, result: dict | None = None, path=None) -> None:
    """Names changed in this process (an audience, a segment run, a loaded table): refresh on next use.

    With the tool, its result and the warehouse path, a change the result fully describes (a saved segment run)
    is applied to the cached names at once, so the next step opens nothing; anything else refreshes."""
    global _generation, _tables_generation
    with _LOCK:
        _generation += 1
        entry = _CACHE.get(str(path)) if path is not None else None
        if entry is not None and tool == "segment_customers" and entry.generation == _generation - 1:
            before = entry.stamps.get("customer_segments")  # None: a run was applied since it was counted
            if _apply_segment_run(entry, result or {}):
                entry.generation = _generation
                if before is None or before[0]:
                    return
        _tables_generation += 1


def today_and_vocab(ctx: Context) -> tuple[date, dict]:
    """The warehouse's today (its last day with data, unless the context fixes one) and its names."""
    path, now = str(ctx.warehouse_path), _clock()
    window, full = int(now // TTL_S), int(now // FULL_S)
    with _LOCK:
        entry = _CACHE.get(path)
        if entry is None or (entry.generation, entry.window, entry.full) != (_generation, window, full):
            entry = _CACHE[path] = _refresh(path, entry if entry is not None and entry.full == full else None,
                                            _generation, window, full)
    return ctx.as_of or entry.today, entry.vocab


def _refresh(path: str, old: _Entry | None, gen: int, window: int, full: int) -> _Entry:
    from tools.warehouse import connect, data_end

    con = connect(path, migrate_schema=False)
    try:
        names, stamps = _catalog(con)
        changed = {t for t in WATCHED if old is None or old.stamps.get(t) != stamps.get(t)}
        entry = _Entry(gen, window, full, old.today if old else date.today(), {}, stamps,
                       old.channels if old else [], dict(old.runs) if old else {})
        if old is None or changed & {"orders", "ad_spend", "events"}:
            entry.today = data_end(con) or date.today()
        if old is None or changed & {"ad_spend", "touchpoints"}:
            entry.channels = sorted(set(_col(con, "SELECT DISTINCT channel FROM ad_spend")) | set(_col(
                con, "SELECT DISTINCT channel FROM touchpoints WHERE touchpoint_id < 100000")) | {"email", "sms", "push"})
        if old is None or "customer_segments" in changed:
            entry.runs = _segment_runs(con, entry.runs)
        experiments, audiences, campaigns, saved = _small(con)
        entry.saved_at = dict(saved or [])
        entry.vocab = {
            "channel": entry.channels,
            "experiment_id": [e for e, _ in experiments or []],
            "experiment_name": {name: e for e, name in experiments or []},
            **_segment_names(entry.runs, entry.saved_at),
            "audience": list(audiences or []),
            "user_table": [n for n in names if n not in BY_NAME and n not in SYSTEM_TABLES],
            "campaign_id": list(campaigns or []),
            "current": current_values(con, entry.channels),
        }
        facts = sys.modules.get("agent.planners.briefing")  # loaded: this process reads the date facts too
        if facts is not None:
            facts.refresh(path, con, _tables_generation)  # on this open, rather than an open of its own later
    finally:
        con.close()
    return entry


SMALL = """SELECT (SELECT list((experiment_id, lower(name))) FROM experiments),
    (SELECT list(name ORDER BY created_at DESC)[1:50] FROM audiences),
    (SELECT list(campaign_id ORDER BY campaign_id) FROM (SELECT campaign_id FROM campaigns
                                                         UNION SELECT campaign_id FROM campaign_launches)),
    (SELECT list((run_id, saved_at)) FROM saved_runs WHERE output_table = 'customer_segments')"""
"""The small tables, read on every refresh in one statement."""


def _small(con) -> tuple:
    """The small tables: one statement on DuckDB; on another engine (Spark has no DuckDB lists and tuples), one
    portable statement each."""
    from tools.warehouse import engine_of

    if engine_of(con) == "duckdb":
        return con.execute(SMALL).fetchone()
    return (con.execute("SELECT experiment_id, lower(name) FROM experiments").fetchall(),
            _col(con, "SELECT name FROM audiences ORDER BY created_at DESC LIMIT 50"),
            _col(con, "SELECT campaign_id FROM campaigns UNION SELECT campaign_id FROM campaign_launches ORDER BY 1"),
            con.execute("SELECT run_id, saved_at FROM saved_runs WHERE output_table = 'customer_segments'").fetchall())


def _col(con, sql: str) -> list:
    return [r[0] for r in con.execute(sql).fetchall()]


def _catalog(con) -> tuple[list[str], dict[str, tuple]]:
    """The tables and views (as `table_names`, from DuckDB's own catalog functions: information_schema costs 5× more)
    and the (rows, definition) of each watched table (a bare count(*) is answered from metadata)."""
    catalog = con.execute("SELECT table_name, sql, false FROM duckdb_tables() WHERE database_name = current_database() "
                          "AND schema_name = 'main' UNION ALL SELECT view_name, sql, true FROM duckdb_views() WHERE "
                          "database_name = current_database() AND schema_name = 'main' AND NOT internal").fetchall()
    tables = {name: sql for name, sql, view in catalog if not view}
    present = [t for t in WATCHED if t in tables]
    rows = dict(con.execute(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in present)).fetchall()
                ) if present else {}
    return sorted(name for name, _, _ in catalog), {t: (rows[t], tables[t]) for t in present}


def _segment_runs(con, known: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Segment sizes per run of customer_segments: the runs and their row counts in one pass over the run_id column,
    then the names of only the runs not known with that many rows (one pruned scan each)."""
    sizes = dict(con.execute("SELECT run_id, count(*) FROM customer_segments GROUP BY 1").fetchall())
    out = {}
    for run_id, rows in sizes.items():
        if run_id in known and sum(known[run_id].values()) == rows:  # run ids are content hashes
            out[run_id] = known[run_id]
        else:
            out[run_id] = dict(con.execute("SELECT segment_name, count(*) FROM customer_segments WHERE run_id = ? "
                                           "GROUP BY 1", [run_id]).fetchall())
    return out


def _segment_names(runs: dict[str, dict[str, int]], saved_at: dict[str, datetime]) -> dict:
    """`segment`: names by rows over all runs, most first; `segment_run`: each name's newest run by when it was
    saved (run ids are hashes; a run saved without a record counts as oldest)."""
    totals: dict[str, int] = {}
    newest: dict[str, tuple[datetime, str]] = {}
    for run_id, segments in runs.items():
        when = (saved_at.get(run_id) or EPOCH, run_id)
        for name, rows in segments.items():
            totals[name] = totals.get(name, 0) + rows
            newest[name] = max(newest.get(name, when), when)
    ranked = sorted(totals, key=lambda n: (-totals[n], str(n)))[:MAX_SEGMENTS]
    return {"segment": ranked, "segment_run": {n: newest[n][1] for n in ranked}}


def _apply_segment_run(entry: _Entry, result: dict) -> bool:
    """A saved segment_customers run, from its result: its segments and sizes are the rows it saved."""
    run_id = (result.get("metrics") or {}).get("run_id")
    profiles = result.get("data") or []
    summary = str(result.get("summary") or "")
    if not run_id or f"saved as run {run_id}" not in summary:
        return bool(run_id) and "was not saved" in summary  # read-only: nothing was named
    try:
        segments = {str(p["segment_name"]): int(p["customers"]) for p in profiles}
    except (KeyError, TypeError, ValueError):
        return False
    entry.runs = {**entry.runs, run_id: segments}
    entry.saved_at = {**entry.saved_at, run_id: datetime.now()}
    entry.stamps = {**entry.stamps, "customer_segments": None}  # counted again at the next refresh
    entry.vocab = {**entry.vocab, **_segment_names(entry.runs, entry.saved_at)}
    return True


def vocab_channels(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT channel FROM ad_spend ORDER BY 1").fetchall()]


def current_values(con, channels: list[str]) -> dict[str, dict]:
    """What the actions' parameters hold now (parameter → value), read by the readers they declare (`current`), so
    a relative instruction ("cut video by a tenth") is computed against today's values, never guessed."""
    from tools.registry import load_tools

    out: dict[str, dict] = {}
    for spec in load_tools().values():
        for param, reader in spec.current.items():
            out[param] = dict(reader(con))
    return out
