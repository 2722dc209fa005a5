"""Run-time settings: one typed `Context`, read from the environment, explicit values win."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Literal

Provider = Literal["offline", "openai"]
Role = Literal["viewer", "analyst", "approver"]
FourEyes = Literal["on", "off", "named"]

LOCAL_USER = "local"
"""The anonymous user of the local CLI (no --user, no NORTHSTAR_USER): whoever holds the home's files. Every other
user is a named user: their threads are private and the four-eyes rule applies to their drafts by default."""

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
    "llm_idle_timeout_s": "NORTHSTAR_LLM_IDLE_TIMEOUT_S",
    "llm_context_tokens": "NORTHSTAR_LLM_CONTEXT_TOKENS",
    "llm_stream": "NORTHSTAR_LLM_STREAM",
    "currency": "NORTHSTAR_CURRENCY",
    "four_eyes": "NORTHSTAR_FOUR_EYES",
    "query_memory_mb": "NORTHSTAR_QUERY_MEMORY_MB",
    "query_threads": "NORTHSTAR_QUERY_THREADS",
    "link_hosts": "NORTHSTAR_LINK_HOSTS",
}


Permission = Literal["ask", "draft", "load", "approve", "resume"]
PERMITTED: dict[str, tuple[str, ...]] = {"ask": ("viewer", "analyst", "approver"), "draft": ("analyst", "approver"),
                                         "load": ("analyst", "approver"), "approve": ("approver",),
                                         "resume": ("approver",)}
REFUSED = {"ask": "asking needs a role", "draft": "drafting actions needs the analyst or approver role",
           "load": "loading data needs the analyst or approver role",
           "approve": "only an approver can decide on actions",
           "resume": "only an approver can resume an interrupted turn (it may be carrying out an approved action)"}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _same_person(a: str, b: str) -> bool:
    """Names compared as a person would read them: case, width and surrounding spaces ignored."""
    def norm(name: str) -> str:
        return unicodedata.normalize("NFKC", name).casefold().strip()
    return norm(a) == norm(b)


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
    user: str = LOCAL_USER
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    webhook_url: str | None = None
    as_of: date | None = None
    """Pinned "today" for relative dates (tests and evals); default: the warehouse's last day of data."""
    roles: dict[str, Role] = field(default_factory=lambda: {LOCAL_USER: "approver"})
    """User → role. Unknown users are viewers. The local CLI user is an approver by default."""
    max_budget_change: float = 0.25
    """Largest relative change of any channel's budget that one approval may make."""
    llm_deadline_s: float = 30.0
    """The most one planning step may take with the model, retries and Retry-After waits included."""
    llm_idle_timeout_s: float | None = None
    """The longest silence between two chunks of a model's reply (default: half the deadline, at most 15 s)."""
    llm_context_tokens: int = 12_000
    """The most one request to the model may carry, tool schemas included (estimated: docs/llm.md)."""
    llm_stream: bool = True
    """Stream the model's replies (false for servers that cannot stream tool calls)."""
    currency: str | None = None
    """What money is in, as the system prompt says it (default: "the account currency")."""
    link_hosts: tuple[str, ...] = ()
    """Hosts whose links stay clickable in answers (`docs.example.com`; `*.example.com` adds its subdomains);
    links to any other host are shown as plain text. Default: none."""
    query_memory_mb: int = 1024
    """Memory limit of query_data's sandbox (MB)."""
    query_threads: int = 2
    """DuckDB threads of query_data's sandbox."""
    four_eyes: FourEyes = "named"
    """Whether the user who drafted an action may not approve or edit it (rejecting is always allowed): `on` for
    everyone, `off`, or `named` (default): for every drafter except the anonymous local CLI user."""

    def __post_init__(self):
        if self.four_eyes not in ("on", "off", "named"):  # an unknown value must not quietly turn the rule off
            raise ValueError(f"four_eyes must be on, off or named, got {self.four_eyes!r}")

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

    def is_named(self, user: str | None) -> bool:
        return (user or self.user) != LOCAL_USER

    def decision_refusal(self, user: str | None, decision: str, drafter: str | None) -> str | None:
        """Why `user` may not take `decision` (accept, edit or reject) on a request `drafter` made (None: they may)."""
        if why := self.refusal(user, "approve"):
            return why
        user = user or self.user
        rule = self.four_eyes == "on" or (self.four_eyes == "named" and drafter != LOCAL_USER)
        if decision != "reject" and rule and drafter and _same_person(user, drafter):
            return (f"{user} drafted this action and cannot approve it: under the four-eyes rule another "
                    f"approver must approve or edit it ({user} may still reject it).")
        return None

    def may_open(self, user: str | None, owner: str | None) -> bool:
        """Whether `user` may read or continue a thread `owner` started: their own, or any for the local user."""
        user = user or self.user
        return owner is None or user == owner or not self.is_named(user)

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
                values[name] = {LOCAL_USER: "approver", **parse_roles(raw)}
            elif name in ("max_budget_change", "llm_deadline_s", "llm_idle_timeout_s"):
                values[name] = float(raw)
            elif name == "llm_context_tokens":
                values[name] = int(raw)
            elif name == "llm_stream":
                values[name] = raw.strip().lower() not in ("0", "false", "no", "off")
            elif name == "link_hosts":
                values[name] = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
            elif name in ("query_memory_mb", "query_threads"):
                values[name] = int(raw)
            elif name == "four_eyes":
                if raw.strip().lower() not in ("on", "off", "named"):
                    raise ValueError(f"NORTHSTAR_FOUR_EYES must be on, off or named, got {raw!r}")
                values[name] = raw.strip().lower()
            elif name == "provider":
                if raw not in ("offline", "openai"):
                    raise ValueError(f"NORTHSTAR_PROVIDER must be 'offline' or 'openai', got {raw!r}")
                values[name] = raw
            else:
                assert name in kinds
                values[name] = raw
        ctx = cls(**values)
        return ctx.with_overrides(**overrides)
