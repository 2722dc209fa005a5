"""Agent turns inside the server: each in a worker thread, one at a time per conversation, a few at a time in all.

A turn's events (the runner's `on_event`: nodes, tools starting and finishing with their summary, drafts, the
grounded sentences of a streamed answer) go to an asyncio queue that the SSE response drains. A failure becomes
an `error` event saying what failed; the runner closes a turn that failed or was stopped, so its thread takes
the next question. Lock errors cannot happen here: the process holds the one database instance.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("northstar.server")
DONE = object()


def failure(exc: BaseException) -> tuple[int, str]:
    """HTTP status and the message a user reads, for an exception out of a turn or a decision."""
    from agent.runner import ApprovalError, NotPermitted
    from ui.server.ops import OpError

    if isinstance(exc, NotPermitted | PermissionError):
        return 403, str(exc)
    if isinstance(exc, ApprovalError):
        return 409, str(exc)
    if isinstance(exc, OpError):
        return exc.status, str(exc)
    if isinstance(exc, ValueError):
        return 400, str(exc)
    if type(exc).__name__ == "TurnCancelled":  # agent.control's, should one ever reach this far
        return 499, "The turn was stopped before it finished; nothing was changed. The thread is ready for the " \
                    "next question."
    return 500, (f"The turn failed ({type(exc).__name__}: {str(exc)[:300]}); nothing was changed and the thread "
                 "is ready for the next question. The server log has the details.")


class Turns:
    """Runs turns and decisions for the API: in order within a thread (a later one says it is queued), a few
    at a time in all (NORTHSTAR_SERVER_TURNS worker threads)."""

    def __init__(self, ns, workers: int = 4):
        self.ns = ns
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="northstar-turn")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _lock_of(self, thread_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(thread_id, threading.Lock())

    def cancel(self, thread_id: str, user: str) -> bool:
        """Stop the thread's running turn at its next step (its DuckDB query is interrupted); False when none
        runs. NotPermitted for another user's thread."""
        return bool(self.ns.cancel(thread_id, user=user))

    def run(self, thread_id: str, work: Callable[[Callable[[dict], None] | None], dict],
            emit: Callable[[dict], None] | None = None) -> dict:
        """Run `work(on_event)` for `thread_id` in this thread, after any turn of the same thread (blocking)."""
        lock = self._lock_of(thread_id)
        if not lock.acquire(blocking=False):
            if emit:
                emit({"event": "queued", "reason": "another turn of this thread is running; this one follows"})
            lock.acquire()
        try:
            return work(emit)
        except BaseException as exc:
            if failure(exc)[0] == 500:
                log.exception("turn failed in thread %s", thread_id)
            raise
        finally:
            lock.release()

    async def call(self, thread_id: str, work) -> dict:
        """`run` without events, from async code."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.run, thread_id, work)

    async def stream(self, thread_id: str, work):
        """Yield the turn's events as dicts, then {"event": "result", "result": …} or {"event": "error", …}."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def emit(event: dict) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def job() -> None:
            try:
                out = self.run(thread_id, work, emit)
                emit({"event": "result", "result": out})
            except BaseException as exc:  # noqa: BLE001 - every failure is told to the client
                status, message = failure(exc)
                emit({"event": "error", "status": status, "message": message, "thread_id": thread_id})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, DONE)

        yield {"event": "accepted", "thread_id": thread_id}
        loop.run_in_executor(self.pool, job)
        while (event := await queue.get()) is not DONE:
            yield event
