"""The outbox: every executed action is a row (plus an export file), delivered to a webhook when configured."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import duckdb

from tools.registry import ToolContext, jsonable


def action_id(action: str, thread_id: str | None, key: str) -> str:
    """Deterministic id: the same approved request never executes twice (also the webhook idempotency key)."""
    return "act_" + hashlib.sha256(f"{action}|{thread_id}|{key}".encode()).hexdigest()[:16]


def recorded(con: duckdb.DuckDBPyConnection, aid: str) -> dict | None:
    row = con.execute("SELECT payload FROM outbox WHERE action_id = ?", [aid]).fetchone()
    return json.loads(row[0]) if row else None


def record(con: duckdb.DuckDBPyConnection, ctx: ToolContext, aid: str, action: str, payload: dict,
           export_path: Path | None) -> None:
    con.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, 'recorded', 0, NULL, ?, ?)",
                [aid, action, ctx.thread_id, json.dumps(jsonable(payload)), str(export_path) if export_path else None,
                 ctx.now or datetime.now(), ctx.user])


def deliver(con: duckdb.DuckDBPyConnection, ctx: ToolContext, aid: str, attempts: int = 4,
            timeout_s: float = 5.0) -> str:
    """POST the outbox row to the webhook with retries; the outbox records the outcome. Returns the status."""
    if not ctx.webhook_url:
        return "recorded"
    import httpx

    action, payload = con.execute("SELECT action, payload FROM outbox WHERE action_id = ?", [aid]).fetchone()
    body = {"action_id": aid, "action": action, "payload": json.loads(payload)}
    error = None
    for attempt in range(1, attempts + 1):
        try:
            resp = httpx.post(ctx.webhook_url, json=body, timeout=timeout_s, headers={"Idempotency-Key": aid})
            if resp.status_code < 300:
                con.execute("UPDATE outbox SET status = 'delivered', attempts = ?, last_error = NULL "
                            "WHERE action_id = ?", [attempt, aid])
                return "delivered"
            error = f"HTTP {resp.status_code}"
            if resp.status_code < 500 and resp.status_code != 429:
                break
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
    con.execute("UPDATE outbox SET status = 'failed', attempts = ?, last_error = ? WHERE action_id = ?",
                [attempt, error, aid])
    return "failed"
