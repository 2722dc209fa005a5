"""The one skeleton every action runs through, and what an action returns.

An action is registered with `approval=True` and a `preview`; its tool function calls `run_once`, which makes the
same approved request execute exactly once: an outbox key derived from (action, thread, request, arguments), the
recorded result returned when that key already ran, the writes and the outbox row in one transaction, then delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb
from pydantic import BaseModel

from tools.actions.outbox import action_id, deliver, record, recorded
from tools.registry import ToolContext, ToolError, ToolResult
from tools.warehouse import transaction

CONSENTED = """customer_id IN (SELECT customer_id FROM customers WHERE marketing_opt_in IS TRUE)
  AND customer_id NOT IN (SELECT customer_id FROM (SELECT customer_id, opted_in, row_number() OVER
      (PARTITION BY customer_id ORDER BY updated_at DESC) AS rn FROM consent WHERE channel = 'email')
    WHERE rn = 1 AND NOT opted_in)"""
"""Customers who may receive marketing: opted in, and no later e-mail withdrawal in `consent`."""


class ActionResult(ToolResult):
    action_id: str | None = None
    """Outbox key (also the webhook idempotency key)."""


Prepared = TypeVar("Prepared")
Write = Callable[[duckdb.DuckDBPyConnection, str, Prepared], tuple[dict[str, Any], Path | None]]
"""Inside the transaction: given the outbox key and what `prepare` returned, make the action's writes; return its
payload (with `summary`) and the export file it wrote, if any."""


def params_key(params: BaseModel) -> str:
    return json.dumps(params.model_dump(mode="json"), sort_keys=True)


def refuse_problems(preview: dict, key: str, refusal: str) -> dict:
    """The preview, unless it lists problems under `key`: then the action is refused with them, nothing written."""
    if preview[key]:
        raise ToolError(f"{refusal}: " + "; ".join(preview[key]))
    return preview


def run_once(con: duckdb.DuckDBPyConnection, ctx: ToolContext, action: str, params: BaseModel,
             prepare: Callable[[], Prepared], write: Write) -> ActionResult:
    """Execute an approved action exactly once: replay the recorded result, else prepare (validate; raises
    ToolError before anything is written), write and record in one transaction, then deliver."""
    aid = action_id(action, ctx.thread_id, f"{ctx.request_id}|{params_key(params)}")
    if done := recorded(con, aid):
        return ActionResult(summary=done["summary"], metrics=done, action_id=aid)
    prepared = prepare()
    with transaction(con):
        payload, export = write(con, aid, prepared)
        record(con, ctx, aid, action, payload, export)
    status = deliver(con, ctx, aid)
    note = "" if status in ("recorded", "delivered") else f" Webhook: {status}."
    return ActionResult(summary=payload["summary"] + note, metrics={**payload, "delivery": status}, action_id=aid)
