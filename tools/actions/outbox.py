"""The outbox: every executed action is a row (plus an export file), delivered to a webhook by `delivery.py`.

A row's status: recorded (waiting for delivery), delivering (a process is posting it now), delivered, failed (an
attempt failed; it is retried), dead (the attempt limit was reached or the webhook refused it; retried only on
request). What the approver is told is one of three words: delivered, pending delivery, failed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import duckdb

from tools.registry import ToolContext, jsonable

STATUSES = ("recorded", "delivering", "delivered", "failed", "dead")


def action_id(action: str, thread_id: str | None, key: str) -> str:
    """Deterministic id: the same approved request never executes twice (also the webhook idempotency key)."""
    return "act_" + hashlib.sha256(f"{action}|{thread_id}|{key}".encode()).hexdigest()[:16]


def recorded(con: duckdb.DuckDBPyConnection, aid: str) -> dict | None:
    row = con.execute("SELECT payload FROM outbox WHERE action_id = ?", [aid]).fetchone()
    return json.loads(row[0]) if row else None


def record(con: duckdb.DuckDBPyConnection, ctx: ToolContext, aid: str, action: str, payload: dict,
           export_path: Path | None) -> None:
    con.execute("INSERT INTO outbox (action_id, action, thread_id, payload, export_path, status, attempts, "
                "last_error, created_at, approved_by) VALUES (?, ?, ?, ?, ?, 'recorded', 0, NULL, ?, ?)",
                [aid, action, ctx.thread_id, json.dumps(jsonable(payload)), str(export_path) if export_path else None,
                 ctx.now or datetime.now(), ctx.user])


def delivery_word(status: str | None) -> str:
    """What the approver is told: delivered, pending delivery or failed."""
    return {"delivered": "delivered", "dead": "failed"}.get(status or "", "pending delivery")


def outbox_items(con: duckdb.DuckDBPyConnection, status: str | None = None, limit: int = 200) -> list[dict]:
    """The newest outbox rows (optionally of one status) with their delivery state, newest first."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; choose from {', '.join(STATUSES)}")
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    cur = con.execute(f"""SELECT action_id, action, status, attempts, last_error, created_at, last_attempt_at,
        approved_by, thread_id, export_path FROM outbox {where} ORDER BY created_at DESC, action_id
        LIMIT {int(limit)}""", args)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return [{**row, "delivery": delivery_word(row["status"])} for row in rows]
