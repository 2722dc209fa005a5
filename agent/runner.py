"""The one entry point the interfaces use: ask (streamed), stop, the approvals inbox, threads and history.

The CLI, the web UI, the Slack bot and the HTTP server call this, never tools/ directly. State lives in SQLite under
NORTHSTAR_HOME: the checkpointer's threads and the approvals inbox (agent/inbox.py). Drafting an action ends the
turn and the conversation goes on; `decide` executes or refuses one draft and posts the outcome into its thread.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent import control
from agent.context import Context
from agent.decisions import ApprovalError, Decisions, NotPermitted, calls_view
from agent.inbox import Inbox
from agent.outcomes import hint, outcome_text
from agent.state import new_turn

THREADS_DDL = """CREATE TABLE IF NOT EXISTS ns_threads (thread_id TEXT PRIMARY KEY, title TEXT, user TEXT,
  created_at TEXT, updated_at TEXT, pending INTEGER DEFAULT 0, provider TEXT)"""
STOPPED = "⏹ Stopped before the answer was complete. Nothing was changed; ask again or ask something else."


class Northstar(Decisions):
    """An agent bound to one home (warehouse + checkpoints + inbox). Turns of one thread run one at a time."""

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
        self.meta = sqlite3.connect(str(ctx.checkpoints_path), check_same_thread=False, timeout=30)
        self.meta.execute(THREADS_DDL)  # the threads list: its own connection, so its commits never cut the saver's
        self.meta.commit()
        self.dblock = threading.Lock()
        self.saver = SqliteSaver(self.db)
        self.saver.setup()
        self.graph = compile_graph(self.saver)
        self.store = Inbox(ctx.checkpoints_path)
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        self.db.close()
        self.meta.close()

    def warm_up(self, question: str = "How did our channels perform last month?", freeze: bool = False) -> None:
        """Do once what a process's first turn would otherwise pay for (seconds: every tool module imported, the
        planner's tool index and embedding model loaded, the vocabulary read) by planning a question and running
        nothing: no checkpoint, no audit row, no tool call. For a server, in a background thread at start-up.
        Best effort: a failure here is the first turn's to report.

        `freeze` (a long-lived process: `northstar serve`, which has imported the tools' libraries before it serves,
        `tools.registry.load_first_use`): let the collector stop scanning what start-up built, which lives as long
        as the process (`gc.freeze`). Otherwise each full collection walks the ~230k objects of the imports: 90-145
        ms each, four of them in whichever of the agent bench's 50 turns triggered them (issue 19 goal 4). Not in
        tests or short commands, where frozen garbage would never be freed."""
        from agent.nodes import plan_env
        from agent.planners import get_planner
        from agent.state import new_turn
        from tools.registry import load_tools

        state = {**new_turn(question, self.ctx.user, 1), "messages": [{"role": "user", "content": question}]}
        try:
            get_planner("offline", self.ctx).plan(state, load_tools(), plan_env(self.ctx, state))
        except Exception:  # noqa: BLE001 - warming is optional
            pass
        if freeze:
            import gc

            gc.collect()  # what is garbage now is freed, not kept for good
            gc.freeze()

    def _lock(self, thread_id: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(thread_id, threading.RLock())

    # ---- turns -------------------------------------------------------------------------------------------
    def ask(self, question: str, thread_id: str | None = None, user: str | None = None,
            on_event: Callable[[dict], None] | None = None) -> dict:
        """Run one turn; returns the CLI JSON shape (answer, tool calls, pending approval(s), blocked, grounded …).
        `on_event` receives each step as it happens: node, tool_start, tool_end (with a one-line summary), draft,
        answer_delta (grounded sentences of a streamed answer), answer_reset, answer."""
        question = (question or "").strip()
        if not question:
            raise ValueError("Ask a question, e.g. 'How did our channels perform last month?'")
        thread_id = thread_id or new_thread_id()
        user = user or self.ctx.user
        self._check_access(thread_id, user, "continue")
        config = self._config(thread_id)
        with self._lock(thread_id):
            snapshot = self.graph.get_state(config)
            if snapshot.next:  # a turn a crash or a kill left unfinished: close it, the thread goes on
                self._close_turn(thread_id, "⚠ This turn was interrupted (the process stopped); nothing of it "
                                            "is pending.")
            self._post_outcomes(thread_id)
            turn = (snapshot.values.get("turn") or 0) + 1
            provider = self.ctx.resolved_provider
            self._touch(thread_id, question, user, provider)
            control.begin(thread_id)
            try:
                stopped = self._run({**new_turn(question, user, turn), "provider": provider}, config, on_event,
                                    thread_id)
            except Exception as exc:  # the thread stays usable and says what failed
                self._close_turn(thread_id, f"⚠ This turn failed ({type(exc).__name__}: {str(exc)[:200]}). Nothing "
                                            "was changed; the conversation can go on.")
                raise
            finally:
                control.end(thread_id)
            if stopped:
                self._close_turn(thread_id, STOPPED)
            self._post_outcomes(thread_id)
            self._count_open(thread_id)
            return {**self._result(thread_id), "stopped": stopped}

    def stream(self, question: str, thread_id: str | None = None, user: str | None = None):
        """ask() as a generator: yields each event, then {"event": "result", "result": …} (same thread)."""
        import queue

        events: queue.Queue = queue.Queue()
        thread_id = thread_id or new_thread_id()

        def work():
            try:
                events.put({"event": "result", "result": self.ask(question, thread_id, user, events.put)})
            except BaseException as exc:  # handed to the consumer, raised there
                events.put({"event": "error", "error": exc})

        threading.Thread(target=work, daemon=True, name=f"northstar-{thread_id}").start()
        while True:
            event = events.get()
            if event["event"] == "error":
                raise event["error"]
            yield event
            if event["event"] == "result":
                return

    def cancel(self, thread_id: str, user: str | None = None) -> bool:
        """Stop the thread's running turn (its DuckDB query is interrupted); False when none runs here."""
        self._check_access(thread_id, user or self.ctx.user, "stop")
        return control.cancel(thread_id)

    def _run(self, payload, config: dict, on_event, thread_id: str) -> bool:
        """Run the graph; True when the turn was stopped (it leaves at the next step)."""
        stream = self.graph.stream(payload, config, context=self.ctx, stream_mode=["updates", "custom"])
        try:
            for mode, chunk in stream:
                if on_event and mode == "custom":
                    on_event(chunk)
                elif on_event and mode == "updates":
                    for node in chunk:
                        if not node.startswith("__"):
                            on_event({"event": "node", "name": node})
                if control.cancelled(thread_id):
                    return True
        except control.TurnCancelled:
            return True
        finally:
            stream.close()
        return False

    def _close_turn(self, thread_id: str, text: str) -> None:
        """End an unfinished turn with `text` as its answer (drafts it made stay in the inbox)."""
        from agent.nodes import drafted_line

        values = self.graph.get_state(self._config(thread_id)).values
        answer = "\n\n".join([text, *map(drafted_line, values.get("drafts") or [])])
        self.graph.update_state(self._config(thread_id), {
            "answer": answer, "planned": [], "agenda": [], "grounded": None,
            "messages": [{"role": "assistant", "content": answer}]}, as_node="guard_output")

    # ---- reading state -----------------------------------------------------------------------------------
    def result(self, thread_id: str, user: str | None = None) -> dict:
        """The thread's latest turn, for a user who may open it (its owner, or the local user)."""
        self._check_access(thread_id, user or self.ctx.user, "open")
        return self._result(thread_id)

    def _result(self, thread_id: str) -> dict:
        v = self.graph.get_state(self._config(thread_id)).values
        drafts = [self.store.get(d["id"]) or d for d in v.get("drafts") or []]  # picked by id, never by name
        waiting = [d for d in drafts if d.get("status", "pending") in ("pending", "executing")]
        parts = [v.get("answer") or ""]
        parts += [outcome_text(d) for d in drafts if d.get("status") not in (None, "pending", "executing")]
        if waiting:
            parts.append(hint(waiting))
        return {"thread_id": thread_id, "provider": self._provider_label(v),
                "answer": "\n\n".join(p for p in parts if p).strip() or None,
                "tool_calls": calls_view(v.get("calls") or []), "pending_approval": waiting[0] if waiting else None,
                "pending_approvals": self.store.of_thread(thread_id), "drafts": drafts, "blocked": v.get("blocked"),
                "grounded": v.get("grounded"), "fallback": v.get("fallback")}

    def _provider_label(self, values: dict) -> str:
        if values.get("fallback") or values.get("provider", "offline") == "offline":
            return "offline planner"
        return self.ctx.model

    def threads(self, limit: int = 30, user: str | None = None) -> list[dict]:
        """The user's threads, newest first (every thread for the local user)."""
        user = user or self.ctx.user
        where, params = ("WHERE user = ?", [user]) if self.ctx.is_named(user) else ("", [])
        with self.dblock:
            cur = self.meta.execute("SELECT thread_id, title, user, created_at, updated_at, pending, provider "
                                  f"FROM ns_threads {where} ORDER BY updated_at DESC LIMIT ?", [*params, limit])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def history(self, thread_id: str, user: str | None = None) -> list[dict]:
        """User questions and assistant answers of a thread (tool traffic left out), decisions' outcomes included,
        for a user who may open it."""
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

    def _sql(self, sql: str, params=()) -> list[tuple]:
        with self.dblock:
            rows = self.meta.execute(sql, list(params)).fetchall()
            self.meta.commit()
            return rows

    def _touch(self, thread_id: str, question: str, user: str, provider: str) -> None:
        self._sql("INSERT INTO ns_threads VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT(thread_id) DO UPDATE "
                  "SET updated_at = excluded.updated_at", [thread_id, question[:80], user, _now(), _now(), provider])

    def _count_open(self, thread_id: str) -> None:
        self._sql("UPDATE ns_threads SET pending = ?, updated_at = ? WHERE thread_id = ?",
                  [self.store.open_count(thread_id), _now(), thread_id])

    def _owner(self, thread_id: str) -> str | None:
        rows = self._sql("SELECT user FROM ns_threads WHERE thread_id = ?", [thread_id])
        return rows[0][0] if rows else None

    def _check_access(self, thread_id: str, user: str, verb: str) -> None:
        """Threads are private to the user who started them; refusals are audited."""
        owner = self._owner(thread_id)
        if self.ctx.may_open(user, owner):
            return
        self._audit("refusal", "private_thread", user, thread_id, None, "refused",
                    f"{user} tried to {verb} a thread started by {owner}")
        raise NotPermitted(f"Thread {thread_id} belongs to another user: conversations are private to the user "
                           "who started them. Start a new thread (approvers decide on its drafts from the "
                           "approvals inbox).")

    def _audit(self, kind: str, name: str, user: str, thread_id: str, args, outcome: str, detail: str | None) -> None:
        from tools.warehouse import audit, connect

        con = connect(self.ctx.warehouse_path)
        try:
            audit(con, kind, name, user=user, thread=thread_id, args=args, outcome=outcome, detail=detail)
        finally:
            con.close()


def names_changed() -> None:
    """A table was loaded (or names changed) outside a tool call in this process: the planner reloads the
    warehouse's names at its next step instead of up to `agent.vocab.TTL_S` later."""
    from agent.vocab import invalidate

    invalidate()


def new_thread_id() -> str:
    return "t-" + uuid.uuid4().hex[:10]


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


__all__ = ["ApprovalError", "NotPermitted", "Northstar", "new_thread_id"]
