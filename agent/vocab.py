"""What the planner may know about the warehouse: its "today" and the names it holds (cached per file state)."""

from __future__ import annotations

import time
from datetime import date
from functools import lru_cache

from agent.context import Context
from tools.warehouse import BY_NAME, SYSTEM_TABLES

TTL_S = 10.0
_generation = 0


def invalidate() -> None:
    """Names changed in this process (an audience, a segment run, a loaded table): reload on next use."""
    global _generation
    _generation += 1


def today_and_vocab(ctx: Context) -> tuple[date, dict]:
    """Cached per process; refreshed after this process changes names and at least every 10 s for others'.

    (Keying on the file's modification time would reload on every turn: each turn writes the audit log.)"""
    today, vocab = _load(str(ctx.warehouse_path), _generation, int(time.monotonic() // TTL_S))
    return ctx.as_of or today, vocab


@lru_cache(maxsize=8)
def _load(path: str, generation: int, window: int) -> tuple[date, dict]:
    from tools.warehouse import connect, data_end, table_names

    con = connect(path, migrate_schema=False)
    try:
        names = table_names(con)
        today = data_end(con) or date.today()
        q = lambda sql: [r[0] for r in con.execute(sql).fetchall()]  # noqa: E731
        vocab = {
            "channel": sorted(set(q("SELECT DISTINCT channel FROM ad_spend")) | set(q(
                "SELECT DISTINCT channel FROM touchpoints WHERE touchpoint_id < 100000")) | {"email", "sms", "push"}),
            "experiment_id": q("SELECT experiment_id FROM experiments"),
            "experiment_name": dict(con.execute("SELECT lower(name), experiment_id FROM experiments").fetchall()),
            "segment": q("SELECT segment_name FROM customer_segments GROUP BY 1 ORDER BY count(*) DESC LIMIT 100"),
            "segment_run": dict(con.execute(  # a segment's newest run by when it was saved (run ids are hashes)
                "SELECT s.segment_name, arg_max(s.run_id, coalesce(r.saved_at, TIMESTAMP '1970-01-01')) "
                "FROM (SELECT DISTINCT segment_name, run_id FROM customer_segments) s LEFT JOIN saved_runs r "
                "ON r.output_table = 'customer_segments' AND r.run_id = s.run_id GROUP BY 1 LIMIT 100").fetchall()),
            "audience": q("SELECT name FROM audiences ORDER BY created_at DESC LIMIT 50"),
            "user_table": [n for n in names if n not in BY_NAME and n not in SYSTEM_TABLES],
            "campaign_id": q("SELECT campaign_id FROM campaigns UNION SELECT campaign_id FROM campaign_launches "
                             "ORDER BY 1"),
            "current": current_values(con, vocab_channels(con)),
        }
    finally:
        con.close()
    return today, vocab


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
