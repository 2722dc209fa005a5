"""The approvals inbox: every drafted action is its own record in the server's SQLite, next to the checkpoints.

Drafting ends the turn; the conversation goes on; the draft waits here until an approver decides. A record moves
pending → executing (the decision is written first, with who claimed it) → done | failed, or pending → rejected |
responded. A crash while executing leaves the record `executing`: resuming runs the action again through
`run_once`, whose key (action, thread, request id, arguments) replays the recorded result instead of running twice.

Requests follow LangGraph's human-in-the-loop conventions, so other inbox UIs can read them: `action_request`
{action, args}, `config` {allow_accept, allow_edit, allow_respond, allow_ignore}, `description`, and the newer
middleware's `allowed_decisions` (approve, edit, reject, respond).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

DDL = """CREATE TABLE IF NOT EXISTS ns_inbox (id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, call_id TEXT,
  action TEXT NOT NULL, args TEXT NOT NULL, request TEXT NOT NULL, requested_by TEXT, requested_at TEXT,
  status TEXT NOT NULL DEFAULT 'pending', decision TEXT, decided_by TEXT, decided_at TEXT, final_args TEXT,
  message TEXT, claimed_by TEXT, result TEXT, finished_at TEXT, posted INTEGER NOT NULL DEFAULT 0)"""
INDEX = "CREATE INDEX IF NOT EXISTS ns_inbox_thread ON ns_inbox (thread_id, status)"
OPEN = ("pending", "executing")
DECIDED = ("done", "failed", "rejected", "responded")
CONFIG = {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True}
ALLOWED = ["approve", "edit", "reject", "respond"]


def request_id(thread_id: str, turn: int, index: int, call: dict) -> str:
    """Deterministic, so a node re-run after a crash records the same draft once (INSERT OR IGNORE); the draft's
    place in the turn and its arguments are in it because some servers reuse call ids ("call_0") every reply."""
    key = json.dumps([thread_id, turn, index, call.get("id"), call["name"], call.get("args")], sort_keys=True,
                     default=str)
    return "a-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class InFlight:
    """Records this process is deciding or executing right now (a claim of ours not in here was left by an
    exception). Counted per record: two threads deciding the same record at once must not, by one of them
    finishing, make the other's claim look abandoned."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, rid: str) -> None:
        with self._lock:
            self._count[rid] = self._count.get(rid, 0) + 1

    def discard(self, rid: str) -> None:
        with self._lock:
            if self._count.get(rid, 0) <= 1:
                self._count.pop(rid, None)
            else:
                self._count[rid] -= 1

    def __contains__(self, rid: object) -> bool:
        return rid in self._count


INFLIGHT = InFlight()


def alive(claimant: str | None, rid: str | None = None) -> bool:
    """Whether the claim on a record still stands: this process executing it now, or another live process
    (a claim from another host counts as alive)."""
    if claimant == me():
        return rid in INFLIGHT
    host, _, pid = (claimant or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(claimant) and host != socket.gethostname()
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class Inbox:
    """The ns_inbox table; a short connection per call, so threads and processes share it safely."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        with self._db() as db:
            db.execute(DDL)
            db.execute(INDEX)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _run(self, sql: str, args=()) -> int:
        db = self._db()
        try:
            with db:
                return db.execute(sql, list(args)).rowcount
        finally:
            db.close()

    def _rows(self, sql: str, args=()) -> list[dict]:
        db = self._db()
        try:
            return [_item(r) for r in db.execute(sql, list(args)).fetchall()]
        finally:
            db.close()

    # ---- writing --------------------------------------------------------------------------------------------
    def add(self, request: dict) -> None:
        self._run("INSERT OR IGNORE INTO ns_inbox (id, thread_id, call_id, action, args, request, requested_by, "
                  "requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [request["id"], request["thread_id"], request.get("call_id"), request["action"],
                   json.dumps(request["args"], default=str), json.dumps(request, default=str),
                   request.get("requested_by"), request.get("requested_at")])

    def claim(self, rid: str, decision: str, user: str, args: dict | None, message: str | None) -> bool:
        """Record the decision before anything runs; False when another decision got there first."""
        status = {"accept": "executing", "edit": "executing", "reject": "rejected", "respond": "responded"}[decision]
        return self._run("UPDATE ns_inbox SET status = ?, decision = ?, decided_by = ?, decided_at = ?, "
                         "final_args = ?, message = ?, claimed_by = ? WHERE id = ? AND status = 'pending'",
                         [status, decision, user, _now(), json.dumps(args, default=str) if args is not None
                          else None, message, me() if status == "executing" else None, rid]) == 1

    def reclaim(self, rid: str, claimant: str | None) -> bool:
        """Take over an `executing` record whose claimant is gone (a resume)."""
        return self._run("UPDATE ns_inbox SET claimed_by = ? WHERE id = ? AND status = 'executing' AND "
                         "claimed_by IS ?", [me(), rid, claimant]) == 1

    def finish(self, rid: str, ok: bool, result: dict) -> None:
        self._run("UPDATE ns_inbox SET status = ?, result = ?, finished_at = ? WHERE id = ? AND status = 'executing'",
                  ["done" if ok else "failed", json.dumps(result, default=str), _now(), rid])

    def supersede(self, rid: str, by: str, thread_id: str) -> bool:
        """A pending request the user changed in the conversation (`by` is the new one): closed as rejected with the
        reason, so no approver decides the old version; nothing to post, the thread already shows the new draft."""
        return self._run("UPDATE ns_inbox SET status = 'rejected', decision = 'superseded', decided_by = 'northstar', "
                         "decided_at = ?, message = ?, posted = 1 WHERE id = ? AND thread_id = ? AND status = 'pending' "
                         "AND id != ?", [_now(), f"replaced by {by}: the request was changed in the conversation",
                                         rid, thread_id, by]) == 1

    def mark_posted(self, rid: str) -> None:
        self._run("UPDATE ns_inbox SET posted = 1 WHERE id = ?", [rid])

    # ---- reading --------------------------------------------------------------------------------------------
    def get(self, rid: str) -> dict | None:
        rows = self._rows("SELECT * FROM ns_inbox WHERE id = ?", [rid])
        return rows[0] if rows else None

    def of_thread(self, thread_id: str, statuses: tuple[str, ...] = OPEN) -> list[dict]:
        marks = ", ".join("?" * len(statuses))
        return self._rows(f"SELECT * FROM ns_inbox WHERE thread_id = ? AND status IN ({marks}) "
                          "ORDER BY requested_at, rowid", [thread_id, *statuses])

    def listing(self, statuses: tuple[str, ...] = OPEN, limit: int = 200) -> list[dict]:
        marks = ", ".join("?" * len(statuses))
        return self._rows(f"SELECT * FROM ns_inbox WHERE status IN ({marks}) ORDER BY requested_at DESC, "
                          "rowid DESC LIMIT ?", [*statuses, limit])

    def unposted(self, thread_id: str) -> list[dict]:
        return self._rows("SELECT * FROM ns_inbox WHERE thread_id = ? AND posted = 0 AND status IN "
                          f"({', '.join('?' * len(DECIDED))}) ORDER BY decided_at, rowid", [thread_id, *DECIDED])

    def open_count(self, thread_id: str) -> int:
        return len(self.of_thread(thread_id))


def _item(row: sqlite3.Row) -> dict:
    """The request as drafted, with its state in the inbox (and `interrupted` when a crash left it executing)."""
    item = json.loads(row["request"])
    item.update(status=row["status"], decision=row["decision"], decided_by=row["decided_by"],
                decided_at=row["decided_at"], message=row["message"], claimed_by=row["claimed_by"],
                posted=bool(row["posted"]), finished_at=row["finished_at"])
    item["final_args"] = json.loads(row["final_args"]) if row["final_args"] else None
    item["result"] = json.loads(row["result"]) if row["result"] else None
    item["interrupted"] = row["status"] == "executing" and not alive(row["claimed_by"], row["id"])
    return item


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
