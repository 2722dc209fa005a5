"""Run-time settings: one typed `Context`, read from the environment, explicit values win."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Literal

Provider = Literal["offline", "openai"]
Role = Literal["viewer", "analyst", "approver"]

ENV = {
    "home": "NORTHSTAR_HOME",
    "provider": "NORTHSTAR_PROVIDER",
    "model": "NORTHSTAR_MODEL",
    "user": "NORTHSTAR_USER",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "webhook_url": "NORTHSTAR_WEBHOOK_URL",
    "as_of": "NORTHSTAR_AS_OF",
    "roles": "NORTHSTAR_ROLES",
    "max_budget_change": "NORTHSTAR_MAX_BUDGET_CHANGE",
    "llm_deadline_s": "NORTHSTAR_LLM_DEADLINE_S",
}


Permission = Literal["ask", "draft", "approve"]
PERMITTED: dict[str, tuple[str, ...]] = {"ask": ("viewer", "analyst", "approver"), "draft": ("analyst", "approver"),
                                         "approve": ("approver",)}
REFUSED = {"ask": "asking needs a role", "draft": "drafting actions needs the analyst or approver role",
           "approve": "only an approver can decide on actions"}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def parse_roles(text: str) -> dict[str, Role]:
    """`"ana:approver,ben:analyst"` → {"ana": "approver", "ben": "analyst"}."""
    roles: dict[str, Role] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        user, _, role = item.partition(":")
        if role not in ("viewer", "analyst", "approver"):
            raise ValueError(f"NORTHSTAR_ROLES: role for {user!r} must be viewer, analyst or approver, got {role!r}")
        roles[user.strip()] = role  # type: ignore[assignment]
    return roles


@dataclass(kw_only=True)
class Context:
    """Everything a run needs besides the question: where state lives, which model, who asks."""

    home: Path = Path(".northstar")
    provider: Provider | None = None
    model: str = "gpt-4o-mini"
    user: str = "local"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    webhook_url: str | None = None
    as_of: date | None = None
    """Pinned "today" for relative dates (tests and evals); default: the warehouse's last day of data."""
    roles: dict[str, Role] = field(default_factory=lambda: {"local": "approver"})
    """User → role. Unknown users are viewers. The local CLI user is an approver by default."""
    max_budget_change: float = 0.25
    """Largest relative change of any channel's budget that one approval may make."""
    llm_deadline_s: float = 30.0

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def checkpoints_path(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def outbox_path(self) -> Path:
        return self.home / "outbox"

    @property
    def resolved_provider(self) -> Provider:
        if self.provider:
            return self.provider
        return "openai" if self.openai_api_key else "offline"

    def role_of(self, user: str | None = None) -> Role:
        return self.roles.get(user or self.user, "viewer")

    def refusal(self, user: str | None, permission: Permission) -> str | None:
        """Why `user` may not do this (None when they may): the one place roles are checked."""
        role = self.role_of(user)
        if role in PERMITTED[permission]:
            return None
        return f"{user or self.user} is {_article(role)} {role}; {REFUSED[permission]}."

    def with_overrides(self, **values) -> Context:
        """A copy with the given non-None values (explicit flags win over the environment)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Context:
        env = os.environ if environ is None else environ
        values: dict = {}
        kinds = {f.name: f for f in fields(cls)}
        for name, var in ENV.items():
            raw = env.get(var)
            if raw in (None, ""):
                continue
            if name == "home":
                values[name] = Path(raw)
            elif name == "as_of":
                values[name] = date.fromisoformat(raw)
            elif name == "roles":
                values[name] = {"local": "approver", **parse_roles(raw)}
            elif name in ("max_budget_change", "llm_deadline_s"):
                values[name] = float(raw)
            elif name == "provider":
                if raw not in ("offline", "openai"):
                    raise ValueError(f"NORTHSTAR_PROVIDER must be 'offline' or 'openai', got {raw!r}")
                values[name] = raw
            else:
                assert name in kinds
                values[name] = raw
        ctx = cls(**values)
        return ctx.with_overrides(**overrides)
