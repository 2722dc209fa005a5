"""The audit log: every tool call, load, approval decision, refusal, delivery attempt and provider fallback, append-only.

It lives with the warehouse so that every layer can write to it: the agent, the adapters (loads, `northstar tool`)
and the actions (webhook deliveries)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import duckdb

from tools.registry import jsonable


def audit(con: duckdb.DuckDBPyConnection, kind: str, name: str | None, *, user: str | None, thread: str | None,
        args=None, outcome: str | None = None, detail: str | None = None) -> None:
    con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [uuid.uuid4().hex, datetime.now(), user, thread, kind, name,
                 json.dumps(jsonable(args)) if args is not None else None, outcome, (detail or "")[:2000]])


def audit_entries(con: duckdb.DuckDBPyConnection, thread: str | None = None, limit: int = 200) -> list[dict]:
    where, params = ("WHERE thread_id = ?", [thread]) if thread else ("", [])
    cur = con.execute(f"SELECT * FROM audit_log {where} ORDER BY ts DESC LIMIT {int(limit)}", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
