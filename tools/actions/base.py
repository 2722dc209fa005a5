"""The one skeleton every action runs through, and what an action returns.

An action is registered with `approval=True` and a `preview`; its tool function calls `run_once`, which makes the
same approved request execute exactly once: an outbox key derived from (action, thread, request, arguments), the
recorded result returned when that key already ran, the writes and the outbox row in one transaction, then delivery
(`delivery.py`). The result says whether it was delivered, is pending delivery, or failed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import duckdb
from pydantic import BaseModel

from tools.actions.delivery import AT_APPROVAL, deliver, status_of
from tools.actions.outbox import action_id, delivery_word, record, recorded
from tools.registry import ToolContext, ToolError, ToolResult
from tools.warehouse import transaction


class ActionResult(ToolResult):
    action_id: str | None = None
    """Outbox key (also the webhook idempotency key)."""


Prepared = TypeVar("Prepared")
Write = Callable[[duckdb.DuckDBPyConnection, str, Prepared], tuple[dict[str, Any], Path | None]]
"""Inside the transaction: given the outbox key and what `prepare` returned, make the action's writes; return its
payload (with `summary`) and the export file it wrote, if any."""


def held_out_sql(column: str, salt: str, share: float) -> str:
    """SQL that is true for the members of `column` held out: those whose md5('<salt>:<id>') starts (8 hex digits)
    below `share` of the range, a pseudo-random draw fixed by `salt` (a campaign or action id: each campaign draws
    its own). md5, substr and the comparison of equal-length hex strings mean the same in DuckDB, Spark and the
    other engines, so every engine holds out the same customers; an engine's own hash() differs by engine."""
    cut = math.ceil(max(0.0, min(1.0, share)) * 16 ** 8)
    prefix = "'" + salt.replace("'", "''") + ":'"
    return f"substr(md5({prefix} || CAST({column} AS VARCHAR)), 1, 8) < '{cut:08x}'"


def params_key(params: BaseModel) -> str:
    return json.dumps(params.model_dump(mode="json"), sort_keys=True)


def refuse_problems(preview: dict, key: str, refusal: str) -> dict:
    """The preview, unless it lists problems under `key`: then the action is refused with them, nothing written."""
    if preview[key]:
        raise ToolError(f"{refusal}: " + "; ".join(preview[key]))
    return preview


def delivery_note(con: duckdb.DuckDBPyConnection, ctx: ToolContext, aid: str) -> tuple[str, str]:
    """(delivered | pending delivery | failed, the sentence that says so and what happens next)."""
    status, attempts, error = status_of(con, aid)
    word = delivery_word(status)
    if word == "delivered":
        return word, "Delivered to the webhook."
    if word == "failed":
        return word, (f"Delivery failed after {attempts} attempt(s): {error}. Fix the webhook, then run "
                      "`northstar outbox deliver --include-dead`.")
    if not ctx.webhook_url:
        return word, ("Pending delivery: no webhook is configured (NORTHSTAR_WEBHOOK_URL); `northstar outbox "
                      "deliver` sends it once one is.")
    why = (f"the webhook failed {attempts} time(s) (last error: {error})" if error
           else "another process is posting it now" if status == "delivering" else "not posted yet")
    return word, (f"Pending delivery: {why}; `northstar outbox deliver` retries it, as does the next start of the "
                  "web UI or the Slack bot.")


def run_once(con: duckdb.DuckDBPyConnection, ctx: ToolContext, action: str, params: BaseModel,
             prepare: Callable[[], Prepared], write: Write) -> ActionResult:
    """Execute an approved action exactly once: replay the recorded result, else prepare (validate; raises
    ToolError before anything is written), write and record in one transaction; then deliver (a replay delivers
    what is still pending, e.g. after a crash)."""
    aid = action_id(action, ctx.thread_id, f"{ctx.request_id}|{params_key(params)}")
    payload = recorded(con, aid)
    if payload is None:
        prepared = prepare()
        with transaction(con):
            payload, export = write(con, aid, prepared)
            record(con, ctx, aid, action, payload, export)
    if ctx.webhook_url:
        deliver(lambda: nullcontext(con), ctx, aid, AT_APPROVAL)
    word, note = delivery_note(con, ctx, aid)
    return ActionResult(summary=f"{payload['summary']} {note}", metrics={**payload, "delivery": word}, action_id=aid)
