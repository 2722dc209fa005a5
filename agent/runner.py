"""The one entry point the interfaces use: ask, decide on approvals, list threads and pending requests.

The CLI, the web UI and the Slack bot call this, never tools/ directly. State lives in the SQLite
checkpointer under NORTHSTAR_HOME, so a paused turn can be resumed from any process after a restart.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from langgraph.types import Command

from agent.answer import compose_answer
from agent.context import Context
from agent.state import new_turn

THREADS_DDL = """CREATE TABLE IF NOT EXISTS ns_threads (thread_id TEXT PRIMARY KEY, title TEXT, user TEXT,
  created_at TEXT, updated_at TEXT, pending INTEGER DEFAULT 0, provider TEXT)"""


class ApprovalError(Exception):
    """A decision that cannot be taken (wrong role, nothing pending); the message says why."""


class NotPermitted(ApprovalError):
    """The user's role does not allow the decision."""


class Northstar:
    """An agent bound to one home (warehouse + checkpoints)."""

    def __init__(self, ctx: Context):
        from langgraph.checkpoint.sqlite import SqliteSaver

        from agent.graph import compile_graph
        from tools.warehouse import connect

        self.ctx = ctx
        ctx.home.mkdir(parents=True, exist_ok=True)
        connect(ctx.warehouse_path).close()  # create and migrate the warehouse if needed
        self.db = sqlite3.connect(str(ctx.checkpoints_path), check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, no fsync per step
        self.db.execute(THREADS_DDL)
        self.db.commit()
        self.saver = SqliteSaver(self.db)
        self.saver.setup()
        self.graph = compile_graph(self.saver)

    def close(self) -> None:
        self.db.close()

    # ---- turns -------------------------------------------------------------------------------------------
    def ask(self, question: str, thread_id: str | None = None, user: str | None = None,
            on_event: Callable[[dict], None] | None = None) -> dict:
        """Run one turn; returns the CLI JSON shape (answer, tool calls, pending approval, blocked, grounded …)."""
        question = (question or "").strip()
        if not question:
            raise ValueError("Ask a question, e.g. 'How did our channels perform last month?'")
        thread_id = thread_id or new_thread_id()
        user = user or self.ctx.user
        config = self._config(thread_id)
        snapshot = self.graph.get_state(config)
        if snapshot.next:
            raise ApprovalError(f"Thread {thread_id} is waiting for a decision on "
                                f"{self._pending_of(snapshot)['action']}; approve or reject it first.")
        turn = (snapshot.values.get("turn") or 0) + 1
        provider = self.ctx.resolved_provider
        state = {**new_turn(question, user, turn), "provider": provider}
        self._touch(thread_id, question, user, provider)
        self._run(state, config, on_event)
        return self.result(thread_id)

    def decide(self, thread_id: str, decision: str, user: str | None = None, args: dict | None = None,
               message: str | None = None, on_event: Callable[[dict], None] | None = None) -> dict:
        """Approve, edit or reject the pending action of a thread, as `user` (who must be an approver)."""
        user = user or self.ctx.user
        config = self._config(thread_id)
        snapshot = self.graph.get_state(config)
        pending = self._pending_of(snapshot)
        if pending is None:
            if snapshot.next:  # interrupted by a crash mid-turn: carry on where it stopped
                self._run(None, config, on_event)
                return self.result(thread_id)
            raise ApprovalError(f"Nothing is waiting for approval in thread {thread_id}.")
        if decision not in ("approve", "accept", "edit", "reject"):
            raise ApprovalError("decision must be approve, edit or reject")
        if why := self.ctx.refusal(user, "approve"):
            self._audit_refusal(thread_id, user, pending, why)
            raise NotPermitted(why)
        if decision == "edit":
            if not args:
                raise ApprovalError("edit needs the changed arguments (JSON).")
            from pydantic import ValidationError

            from tools.registry import format_validation_error, get_tool

            try:
                args = get_tool(pending["action"]).parse({**pending["args"], **args}).model_dump(mode="json")
            except ValidationError as exc:
                raise ApprovalError(format_validation_error(pending["action"], exc)) from exc
        kind = {"approve": "accept", "accept": "accept", "edit": "edit", "reject": "reject"}[decision]
        self._run(Command(resume={"type": kind, "user": user, "args": args, "message": message}), config, on_event)
        return self.result(thread_id)

    def _run(self, payload, config: dict, on_event) -> None:
        for mode, chunk in self.graph.stream(payload, config, context=self.ctx, stream_mode=["updates", "custom"]):
            if on_event and mode == "custom":
                on_event(chunk)
            elif on_event and mode == "updates":
                for node in chunk:
                    if not node.startswith("__"):
                        on_event({"event": "node", "name": node})
        snapshot = self.graph.get_state(config)
        self.db.execute("UPDATE ns_threads SET pending = ?, updated_at = ? WHERE thread_id = ?",
                        [1 if self._pending_of(snapshot) else 0, _now(), config["configurable"]["thread_id"]])
        self.db.commit()

    # ---- reading state -----------------------------------------------------------------------------------
    def result(self, thread_id: str) -> dict:
        snapshot = self.graph.get_state(self._config(thread_id))
        v = snapshot.values
        pending = self._pending_of(snapshot)
        calls = v.get("calls") or []
        answer = v.get("answer")
        if pending:
            answer = compose_answer([c for c in calls if c["name"] != pending["action"]], v)
            answer = ((answer + "\n\n") if calls else "") + (
                f"I've drafted **{pending['action']}**: {pending['description']} It needs an approver's decision: "
                f"`northstar approve {thread_id}` (or --reject / --edit JSON).")
        return {"thread_id": thread_id, "provider": self._provider_label(v), "answer": answer,
                "tool_calls": [{"name": c["name"], "args": c["args"], "ok": c.get("ok", False),
                                "result": c.get("result"), "error": c.get("error"), "ms": c.get("ms")}
                               for c in calls],
                "pending_approval": pending, "blocked": v.get("blocked"),
                "grounded": True if pending else v.get("grounded"), "fallback": v.get("fallback")}

    def _provider_label(self, values: dict) -> str:
        if values.get("fallback") or values.get("provider", "offline") == "offline":
            return "offline planner"
        return self.ctx.model

    @staticmethod
    def _pending_of(snapshot) -> dict | None:
        for task in snapshot.tasks or ():
            for intr in task.interrupts or ():
                return intr.value
        return None

    def pending(self) -> list[dict]:
        """Pending approval requests across threads."""
        rows = self.db.execute("SELECT thread_id FROM ns_threads WHERE pending = 1 ORDER BY updated_at DESC")
        out = []
        for (tid,) in rows.fetchall():
            req = self._pending_of(self.graph.get_state(self._config(tid)))
            if req:
                out.append({"thread_id": tid, **req})
        return out

    def threads(self, limit: int = 30) -> list[dict]:
        cur = self.db.execute("SELECT thread_id, title, user, created_at, updated_at, pending, provider "
                              "FROM ns_threads ORDER BY updated_at DESC LIMIT ?", [limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def history(self, thread_id: str) -> list[dict]:
        """User questions and assistant answers of a thread (tool traffic left out)."""
        msgs = self.graph.get_state(self._config(thread_id)).values.get("messages") or []
        return [m for m in msgs if m["role"] in ("user", "assistant") and m.get("content")]

    # ---- helpers -----------------------------------------------------------------------------------------
    @staticmethod
    def _config(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 60}

    def _touch(self, thread_id: str, question: str, user: str, provider: str) -> None:
        self.db.execute("INSERT INTO ns_threads VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT(thread_id) DO UPDATE "
                        "SET updated_at = excluded.updated_at", [thread_id, question[:80], user, _now(), _now(),
                                                                  provider])
        self.db.commit()

    def _audit_refusal(self, thread_id: str, user: str, pending: dict, why: str) -> None:
        from tools.warehouse import audit, connect

        con = connect(self.ctx.warehouse_path)
        try:
            audit(con, "approval", pending["action"], user=user, thread=thread_id, args=pending["args"],
                      outcome="refused", detail=why)
        finally:
            con.close()


def new_thread_id() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
