"""Delivering the outbox to the webhook until the work is done.

One attempt at a time under a claim (the row says which process is posting it, so two threads or processes never
post the same item at once, and a claim left by a process that died is taken over); the action id as the
Idempotency-Key on every attempt; exponential backoff between attempts; dead after a limit, or at once when the
webhook refuses the request (4xx); every attempt audited (kind "delivery"). A crash after the webhook's 2xx and
before the outbox row says so is the one window where an item is posted twice: with the same Idempotency-Key, so
the receiver drops the repeat.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from tools.actions.outbox import delivery_word
from tools.warehouse import WarehouseError, audit, connect, transaction

log = logging.getLogger("northstar.delivery")

Scope = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
"""Opens the warehouse for one step (claim, outcome); the webhook is called with no step open."""


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 6
    """Attempts in all, across runs, before an item is marked dead."""
    attempts_now: int | None = None
    """Attempts in this run (None: until delivered or dead)."""
    base_delay_s: float = 0.5
    """Wait after the first failed attempt; doubled after each further one."""
    max_delay_s: float = 30.0
    timeout_s: float = 5.0
    """Per attempt (connect, write and read each)."""
    lease_s: float = 300.0
    """A claim this old is taken over even when the process that holds it looks alive."""

    def delay(self, attempt: int) -> float:
        return min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)


AT_APPROVAL = DeliveryPolicy(attempts_now=3, base_delay_s=0.2)
"""Right after an approval: a few quick attempts, then the item waits for `northstar outbox deliver`."""


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _abandoned(claimed_by: str | None, since: datetime | None, lease_s: float) -> bool:
    """True when the claim's process is gone (same host) or the claim is older than the lease."""
    if since is None or (datetime.now() - since).total_seconds() > lease_s:
        return True
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False  # another host, or this process's own thread: wait for the lease
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _audit(con, ctx, aid: str, action: str, thread: str | None, attempt: int, outcome: str, error: str | None):
    audit(con, "delivery", action, user=getattr(ctx, "user", None), thread=thread,
          args={"action_id": aid, "attempt": attempt}, outcome=outcome, detail=error)


def _claim(con, ctx, aid: str, policy: DeliveryPolicy) -> tuple[int, str, str | None, str] | None:
    """Take the item for one attempt: (attempt number, action, thread, payload), or None when it is not ours to
    deliver (delivered, dead, or being delivered by a live process)."""
    row = con.execute("SELECT action, thread_id, payload, status, coalesce(attempts, 0), claimed_by, last_attempt_at "
                      "FROM outbox WHERE action_id = ?", [aid]).fetchone()
    if row is None:
        return None
    action, thread, payload, status, attempts, claimed_by, since = row
    taking_over = status == "delivering"
    if taking_over and not _abandoned(claimed_by, since, policy.lease_s):
        return None
    if status not in ("recorded", "failed", "delivering"):
        return None
    try:
        with transaction(con):
            got = con.execute("""UPDATE outbox SET status = 'delivering', claimed_by = ?, last_attempt_at = ?,
                attempts = coalesce(attempts, 0) + 1 WHERE action_id = ? AND status = ?
                AND claimed_by IS NOT DISTINCT FROM ? RETURNING attempts""",
                              [_me(), datetime.now(), aid, status, claimed_by]).fetchone()
            if got and taking_over:
                _audit(con, ctx, aid, action, thread, attempts, "interrupted",
                       f"{claimed_by or 'a process'} stopped before recording the outcome of this attempt")
    except duckdb.TransactionException:  # another thread claimed it first
        return None
    return (got[0], action, thread, payload) if got else None


def _post(url: str, aid: str, action: str, payload: str, timeout_s: float) -> tuple[bool, bool, str | None]:
    """(delivered, worth retrying, error)."""
    import httpx

    body = {"action_id": aid, "action": action, "payload": json.loads(payload)}
    try:
        resp = httpx.post(url, json=body, timeout=timeout_s, headers={"Idempotency-Key": aid})
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # retrying cannot help: fix the setting
        return False, False, f"NORTHSTAR_WEBHOOK_URL {url!r} is not a usable http(s) URL ({exc})"[:500]
    except httpx.HTTPError as exc:
        return False, True, f"{type(exc).__name__}: {exc}"[:500]
    if resp.status_code < 300:
        return True, False, None
    retry = resp.status_code >= 500 or resp.status_code in (408, 425, 429)
    return False, retry, f"HTTP {resp.status_code} {resp.reason_phrase}".strip()


def _finish(con, ctx, aid: str, action: str, thread: str | None, attempt: int, delivered: bool, retry: bool,
            error: str | None, policy: DeliveryPolicy) -> str:
    status = "delivered" if delivered else ("failed" if retry and attempt < policy.max_attempts else "dead")
    with transaction(con):
        mine = con.execute("UPDATE outbox SET status = ?, last_error = ?, claimed_by = NULL WHERE action_id = ? "
                           "AND claimed_by = ? RETURNING status", [status, error, aid, _me()]).fetchone()
        _audit(con, ctx, aid, action, thread, attempt, status, error)
    return status if mine else (status_of(con, aid)[0] or status)  # taken over meanwhile (lease): theirs now


def status_of(con, aid: str) -> tuple[str | None, int, str | None]:
    """(status, attempts, last error) of an outbox item."""
    row = con.execute("SELECT status, coalesce(attempts, 0), last_error FROM outbox WHERE action_id = ?",
                      [aid]).fetchone()
    return tuple(row) if row else (None, 0, None)


def deliver(scope: Scope, ctx, aid: str, policy: DeliveryPolicy = DeliveryPolicy()) -> str:
    """Post one outbox item until it is delivered or dead, or this run's attempts are spent; the status after."""
    tried = 0
    while True:
        with scope() as con:
            claim = _claim(con, ctx, aid, policy)
            if claim is None:
                return status_of(con, aid)[0] or "recorded"
        attempt, action, thread, payload = claim
        try:
            delivered, retry, error = _post(ctx.webhook_url, aid, action, payload, policy.timeout_s)
        except BaseException as exc:  # Ctrl-C or a bug: never leave a claim behind
            with scope() as con:
                _finish(con, ctx, aid, action, thread, attempt, False, True, f"interrupted ({type(exc).__name__})",
                        policy)
            raise
        tried += 1
        with scope() as con:
            status = _finish(con, ctx, aid, action, thread, attempt, delivered, retry, error, policy)
        if status != "failed" or (policy.attempts_now is not None and tried >= policy.attempts_now):
            return status
        time.sleep(policy.delay(attempt))


def _open(path: Path, patience_s: float = 15.0) -> duckdb.DuckDBPyConnection:
    """A short connection, waiting while another process holds the file or another thread of this one is closing
    it (DuckDB refuses both for a moment)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return connect(path)
        except (WarehouseError, duckdb.ResourceInUseException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _warehouse(ctx) -> Path:
    return Path(getattr(ctx, "warehouse_path", None) or Path(ctx.home) / "warehouse.duckdb")


def deliver_pending(ctx, policy: DeliveryPolicy = DeliveryPolicy(), *, include_dead: bool = False) -> list[dict]:
    """Deliver every outbox item still waiting (recorded, failed, or left mid-delivery by a process that stopped)
    to `ctx.webhook_url`; with `include_dead`, dead items too, with a fresh attempt budget. One row per item."""
    path = _warehouse(ctx)
    if not ctx.webhook_url or not path.exists():
        return []

    @contextmanager
    def scope():
        con = _open(path)
        try:
            yield con
        finally:
            con.close()

    with scope() as con:
        if include_dead:
            con.execute("UPDATE outbox SET status = 'failed', attempts = 0 WHERE status = 'dead'")
        ids = [r[0] for r in con.execute("SELECT action_id FROM outbox WHERE status IN ('recorded', 'failed', "
                                         "'delivering') ORDER BY created_at, action_id").fetchall()]
    done = []
    for aid in ids:
        deliver(scope, ctx, aid, policy)
        with scope() as con:
            status, attempts, error = status_of(con, aid)
            action = con.execute("SELECT action FROM outbox WHERE action_id = ?", [aid]).fetchone()[0]
        done.append({"action_id": aid, "action": action, "status": status, "delivery": delivery_word(status),
                     "attempts": attempts, "last_error": error})
    return done


def deliver_in_background(ctx, policy: DeliveryPolicy = DeliveryPolicy()) -> threading.Thread | None:
    """Start `deliver_pending(ctx)` in a daemon thread (for long-running processes: never blocks start-up)."""
    if not getattr(ctx, "webhook_url", None):
        return None

    def run() -> None:
        try:
            done = deliver_pending(ctx, policy)
        except Exception as exc:  # a locked or missing warehouse: the next start, or the CLI, tries again
            log.warning("outbox delivery at start-up did not run (%s); run `northstar outbox deliver`", exc)
            return
        if done:
            log.info("outbox: %s", ", ".join(f"{d['action_id']} {d['status']}" for d in done))

    thread = threading.Thread(target=run, name="northstar-outbox-delivery", daemon=True)
    thread.start()
    return thread
