"""Turn control: which turns run in this process, stopping one, and the DuckDB queries a stop interrupts.

A turn is keyed by its thread. `Northstar.cancel(thread)` marks it stopped: the runner leaves the graph at the next
step, a DuckDB query the turn is running is interrupted (`connection.interrupt()`), and a model reply being
streamed is dropped at its next chunk (`TurnCancelled` is a BaseException, so no retry loop swallows it).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class TurnCancelled(BaseException):  # noqa: N818 - a control-flow signal like KeyboardInterrupt, not an error
    """The user stopped the turn."""


class _Turn:
    __slots__ = ("cancelled", "connections")

    def __init__(self):
        self.cancelled = threading.Event()
        self.connections: list = []


_TURNS: dict[str, _Turn] = {}
_LOCK = threading.Lock()


def begin(thread_id: str) -> None:
    with _LOCK:
        _TURNS[thread_id] = _Turn()


def end(thread_id: str) -> None:
    with _LOCK:
        _TURNS.pop(thread_id, None)


def running(thread_id: str) -> bool:
    with _LOCK:
        return thread_id in _TURNS


def cancel(thread_id: str) -> bool:
    """Stop the thread's running turn; False when none runs here. Interrupts its DuckDB queries at once."""
    with _LOCK:
        turn = _TURNS.get(thread_id)
        if turn is None:
            return False
        turn.cancelled.set()
        cons = list(turn.connections)
    for con in cons:
        try:
            con.interrupt()
        except Exception:  # already closed: nothing to interrupt
            pass
    return True


def cancelled(thread_id: str | None) -> bool:
    if not thread_id:
        return False
    with _LOCK:
        turn = _TURNS.get(thread_id)
    return bool(turn and turn.cancelled.is_set())


def check(thread_id: str | None) -> None:
    """Raise TurnCancelled when the thread's turn was stopped."""
    if cancelled(thread_id):
        raise TurnCancelled()


@contextmanager
def watching(thread_id: str | None, con):
    """While the block runs, a stop of the thread's turn interrupts `con`'s query."""
    with _LOCK:
        turn = _TURNS.get(thread_id) if thread_id else None
        if turn is not None:
            turn.connections.append(con)
    try:
        if turn is not None and turn.cancelled.is_set():
            raise TurnCancelled()
        yield con
    finally:
        if turn is not None:
            with _LOCK:
                if con in turn.connections:
                    turn.connections.remove(con)
