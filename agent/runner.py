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
    """The user may not do this: their role, the four-eyes rule, or another user's private thread."""


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
        self._check_access(thread_id, user, "continue")
        config = self._config(thread_id)
        snapshot = self.graph.get_state(config)
        if snapshot.next:
            if (pending := self._pending_of(snapshot)) is None:
                raise ApprovalError(f"Thread {thread_id} stopped in the middle of a turn (the process ended); an "
                                    "approver can resume it by approving it in the approvals list. Or start a new "
                                    "thread.")
            raise ApprovalError(f"Thread {thread_id} is waiting for a decision on {pending['action']}; approve or "
                                "reject it first.")
        turn = (snapshot.values.get("turn") or 0) + 1
        provider = self.ctx.resolved_provider
        state = {**new_turn(question, user, turn), "provider": provider}
        self._touch(thread_id, question, user, provider)
        self._run(state, config, on_event)
        return self._result(thread_id)

    def decide(self, thread_id: str, decision: str, user: str | None = None, args: dict | None = None,
               message: str | None = None, on_event: Callable[[dict], None] | None = None) -> dict:
        """Approve, edit or reject the pending action of a thread, as `user` (an approver who, under the four-eyes
        rule, did not draft it); or resume a turn a crash interrupted (approvers only).

        The result shows the decided action, not the rest of the drafter's conversation, unless `user` may open
        the thread."""
        user = user or self.ctx.user
        config = self._config(thread_id)
        snapshot = self.graph.get_state(config)
        pending = self._pending_of(snapshot)
        if decision not in ("approve", "accept", "edit", "reject"):
            raise ApprovalError("decision must be approve, edit or reject")
        if pending is None:
            if snapshot.next:  # interrupted by a crash mid-turn
                return self._resume(thread_id, user, decision, snapshot, on_event)
            raise ApprovalError(f"Nothing is waiting for approval in thread {thread_id}.")
        kind = {"approve": "accept", "accept": "accept", "edit": "edit", "reject": "reject"}[decision]
        if why := self.ctx.decision_refusal(user, kind, pending.get("requested_by")):
            self._audit("approval", pending["action"], user, thread_id, pending["args"], "refused", why)
            raise NotPermitted(why)
        if decision == "edit":
            if not args:
                raise ApprovalError("edit needs the changed arguments (JSON).")
            from pydantic import ValidationError

            from tools.registry import format_validation_error, get_tool

            try:
                args = get_tool(pending["action"]).parse({**pending["args"], **args}).model_dump(mode="json")
            except ValidationError as exc:
                why = format_validation_error(pending["action"], exc)
                self._audit("approval", pending["action"], user, thread_id, args, "invalid", why)
                raise ApprovalError(why) from exc
        self._run(Command(resume={"type": kind, "user": user, "args": args, "message": message}), config, on_event)
        return self._result_for(thread_id, user, pending)

    def _resume(self, thread_id: str, user: str, decision: str, snapshot, on_event) -> dict:
        """Carry on a turn that a crash stopped (perhaps in the middle of an approved action), as an approver."""
        request = snapshot.values.get("pending") or None
        name, args = (request or {}).get("action") or "turn", (request or {}).get("args")
        where = f"stopped at {', '.join(snapshot.next)}"
        if why := self.ctx.refusal(user, "resume"):
            self._audit("resume", name, user, thread_id, args, "refused", f"{why} ({where})")
            raise NotPermitted(why)
        if decision not in ("approve", "accept"):
            raise ApprovalError(f"Thread {thread_id} stopped in the middle of a turn ({name}); it can only be "
                                "resumed by approving it, not rejected or edited.")
        self._audit("resume", name, user, thread_id, args, "started", where)  # a second crash still leaves a trace
        try:
            self._run(None, self._config(thread_id), on_event)
        except Exception as exc:
            self._audit("resume", name, user, thread_id, args, "error", f"{type(exc).__name__}: {exc}")
            raise
        self._audit("resume", name, user, thread_id, args, "ok", where)
        return self._result_for(thread_id, user, request)

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
    def result(self, thread_id: str, user: str | None = None) -> dict:
        """The thread's latest turn, for a user who may open it (its owner, or the local user)."""
        self._check_access(thread_id, user or self.ctx.user, "open")
        return self._result(thread_id)

    def _result(self, thread_id: str) -> dict:
        snapshot = self.graph.get_state(self._config(thread_id))
        v = snapshot.values
        pending = self._pending_of(snapshot)
        calls = v.get("calls") or []
        answer = v.get("answer")
        if pending:
            answer = compose_answer([c for c in calls if c["name"] != pending["action"]], v)
            answer = ((answer + "\n\n") if calls else "") + _drafted(thread_id, pending)
        return {"thread_id": thread_id, "provider": self._provider_label(v), "answer": answer,
                "tool_calls": _calls_view(calls), "pending_approval": pending, "blocked": v.get("blocked"),
                "grounded": True if pending else v.get("grounded"), "fallback": v.get("fallback")}

    def _result_for(self, thread_id: str, user: str, request: dict | None) -> dict:
        """After a decision: the whole turn for whoever may open the thread; for another approver only the
        decided action and any new request, never the drafter's conversation."""
        if self.ctx.may_open(user, self._owner(thread_id)):
            return self._result(thread_id)
        snapshot = self.graph.get_state(self._config(thread_id))
        v = snapshot.values
        pending = self._pending_of(snapshot)
        calls = [c for c in v.get("calls") or [] if request and c.get("id") == request.get("id")]
        answer = compose_answer(calls, v)
        if pending:
            answer += "\n\n" + _drafted(thread_id, pending)
        return {"thread_id": thread_id, "provider": self._provider_label(v), "answer": answer,
                "tool_calls": _calls_view(calls), "pending_approval": pending, "blocked": None,
                "grounded": True, "fallback": v.get("fallback")}

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

    def pending(self, user: str | None = None) -> list[dict]:
        """Pending approval requests (action, args, preview, who asked and when): every thread's for an approver,
        the user's own threads' for anyone else. A request whose decision a crash interrupted is listed with
        `interrupted: true`; approving it resumes the turn."""
        user = user or self.ctx.user
        everyone = self.ctx.refusal(user, "approve") is None
        rows = self.db.execute("SELECT thread_id, user FROM ns_threads WHERE pending = 1 ORDER BY updated_at DESC")
        out = []
        for tid, owner in rows.fetchall():
            if not (everyone or self.ctx.may_open(user, owner)):
                continue
            snapshot = self.graph.get_state(self._config(tid))
            if req := self._pending_of(snapshot):
                out.append({"thread_id": tid, **req})
            elif snapshot.next and (req := snapshot.values.get("pending")):
                decided = snapshot.values.get("decision") or {}
                out.append({"thread_id": tid, **req, "interrupted": True, "description": (
                    f"Stopped by a crash{' after ' + decided['user'] + ' decided' if decided.get('user') else ''}; "
                    f"approving resumes it. {req['description']}")})
        return out

    def threads(self, limit: int = 30, user: str | None = None) -> list[dict]:
        """The user's threads, newest first (every thread for the local user)."""
        user = user or self.ctx.user
        where, params = ("WHERE user = ?", [user]) if self.ctx.is_named(user) else ("", [])
        cur = self.db.execute("SELECT thread_id, title, user, created_at, updated_at, pending, provider "
                              f"FROM ns_threads {where} ORDER BY updated_at DESC LIMIT ?", [*params, limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def history(self, thread_id: str, user: str | None = None) -> list[dict]:
        """User questions and assistant answers of a thread (tool traffic left out), for a user who may open it."""
        self._check_access(thread_id, user or self.ctx.user, "open")
        msgs = self.graph.get_state(self._config(thread_id)).values.get("messages") or []
        return [m for m in msgs if m["role"] in ("user", "assistant") and m.get("content")]

    def can_open(self, thread_id: str, user: str | None = None) -> bool:
        """Whether `user` may read and continue the thread (theirs, or any for the local user)."""
        return self.ctx.may_open(user or self.ctx.user, self._owner(thread_id))

    # ---- helpers -----------------------------------------------------------------------------------------
    @staticmethod
    def _config(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 60}

    def _touch(self, thread_id: str, question: str, user: str, provider: str) -> None:
        self.db.execute("INSERT INTO ns_threads VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT(thread_id) DO UPDATE "
                        "SET updated_at = excluded.updated_at", [thread_id, question[:80], user, _now(), _now(),
                                                                  provider])
        self.db.commit()

    def _owner(self, thread_id: str) -> str | None:
        row = self.db.execute("SELECT user FROM ns_threads WHERE thread_id = ?", [thread_id]).fetchone()
        return row[0] if row else None

    def _check_access(self, thread_id: str, user: str, verb: str) -> None:
        """Threads are private to the user who started them; refusals are audited."""
        owner = self._owner(thread_id)
        if self.ctx.may_open(user, owner):
            return
        self._audit("refusal", "private_thread", user, thread_id, None, "refused",
                    f"{user} tried to {verb} a thread started by {owner}")
        raise NotPermitted(f"Thread {thread_id} belongs to another user: conversations are private to the user "
                           "who started them. Start a new thread (approvers decide on its pending action from the "
                           "approvals list).")

    def _audit(self, kind: str, name: str, user: str, thread_id: str, args, outcome: str, detail: str) -> None:
        from tools.warehouse import audit, connect

        con = connect(self.ctx.warehouse_path)
        try:
            audit(con, kind, name, user=user, thread=thread_id, args=args, outcome=outcome, detail=detail)
        finally:
            con.close()


def _drafted(thread_id: str, pending: dict) -> str:
    return (f"I've drafted **{pending['action']}**: {pending['description']} It needs an approver's decision: "
            f"`northstar approve {thread_id}` (or --reject / --edit JSON).")


def _calls_view(calls: list[dict]) -> list[dict]:
    return [{"name": c["name"], "args": c["args"], "ok": c.get("ok", False), "result": c.get("result"),
             "error": c.get("error"), "ms": c.get("ms")} for c in calls]


def new_thread_id() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
