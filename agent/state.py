"""The graph's state: the thread's messages plus the current turn's scratchpad (plain JSON values only)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


class State(TypedDict, total=False):
    messages: Annotated[list[dict], operator.add]
    """The whole thread in OpenAI chat format (user, assistant with tool_calls, tool)."""
    question: str
    """The current turn's request."""
    user: str
    """Who asked this turn."""
    turn: int
    calls: list[dict]
    """Tool calls executed this turn: {id, name, args, ok, result | error, ms}."""
    planned: list[dict]
    """Tool calls the planner proposed and that have not run yet: {id, name, args}."""
    agenda: list[dict]
    """The offline planner's remaining steps for this turn."""
    answer: str | None
    blocked: dict | None
    grounded: bool | None
    fallback: str | None
    provider: str
    drafts: list[dict]
    """Actions drafted this turn: approval requests now waiting in the inbox (agent/inbox.py), not run."""
    pending: dict | None
    """Unused since drafts wait in the inbox (kept so older checkpoints load)."""
    decision: dict | None
    """Unused since decisions are taken in the inbox (kept so older checkpoints load)."""
    last_tool: dict | None
    """The last analytics call of the thread ({name, args, run_id?}), so follow-ups can change one argument."""
    notes: list[str]


def new_turn(question: str, user: str, turn: int) -> dict[str, Any]:
    """Reset the per-turn fields at the start of a turn."""
    return {"question": question, "user": user, "turn": turn, "calls": [], "planned": [], "agenda": [],
            "answer": None, "blocked": None, "grounded": None, "fallback": None, "pending": None,
            "decision": None, "drafts": [], "notes": []}
