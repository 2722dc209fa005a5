"""Planners: `offline` (deterministic, the default without a key) and `openai` (any compatible endpoint)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date


@dataclass
class PlanStep:
    """What the planner decided: tool calls to make, or the answer."""

    calls: list[dict] = field(default_factory=list)
    answer: str | None = None
    agenda: list[dict] | None = None
    fallback: str | None = None
    provider: str | None = None


@dataclass
class PlanEnv:
    """What a planner may know besides the conversation: today's date and the warehouse's vocabulary
    (loaded on first use: a step that only writes the answer never pays for it)."""

    today: date
    load_vocab: object = None
    role: str = "viewer"
    _vocab: dict | None = field(default=None, repr=False)

    @property
    def vocab(self) -> dict:
        if self._vocab is None:
            self._vocab = self.load_vocab() if callable(self.load_vocab) else {}
        return self._vocab


def call_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


def get_planner(name: str, ctx):
    if name == "openai":
        from agent.planners.openai import OpenAIPlanner

        return OpenAIPlanner(ctx)
    from agent.planners.offline import OfflinePlanner

    return OfflinePlanner()
