"""The `openai` planner: any OpenAI-compatible endpoint, tools bound from the registry.

Each step sends the thread within a token budget (`conversation.py`), reads the reply whatever the model's
habits (`replies.py`) and accepts it only when complete (`chat.py`). Transient failures and broken replies are
retried within the deadline, honouring `Retry-After`; a context overflow is compacted and tried once more;
anything else ends in the offline planner with a notice the interfaces show. A broken reply is never an answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from agent.planners import PlanStep, call_id
from agent.planners.briefing import system_prompt
from agent.planners.chat import ContextTooLong, LLMError, Unsupported, complete, with_retries
from agent.planners.context_budget import compact_tools, request_tokens, tools_for
from agent.planners.conversation import build
from agent.planners.offline import OfflinePlanner
from agent.planners.replies import (
    Reply,
    ReplyError,
    parse_arguments,
    quoted,
    strip_reasoning,
    text_tool_calls,
)

LEARNED_LIMITS: dict[tuple[str | None, str], int] = {}
"""(base URL, model) → a budget that fitted after a context overflow, for the rest of the process."""
DROPPED_PARAMS: dict[tuple[str | None, str], set[str]] = {}
"""(base URL, model) → optional parameters the server refused (e.g. `temperature` on reasoning models)."""


@dataclass(frozen=True)
class LLMSettings:
    """The provider's settings, read from the Context (defaults until a Context names them)."""

    deadline_s: float = 30.0
    """The most one planning step may take, retries and waits included."""
    idle_timeout_s: float = 15.0
    """The longest silence between two chunks of a reply (or before a non-streamed reply); default: half the
    deadline, at most 15 s."""
    context_tokens: int = 12_000
    """The most one request may carry, tool schemas included (estimated: see context_budget)."""
    stream: bool = True

    @classmethod
    def of(cls, ctx) -> LLMSettings:
        deadline = float(ctx.llm_deadline_s)
        return cls(deadline_s=deadline,
                   idle_timeout_s=float(getattr(ctx, "llm_idle_timeout_s", None) or min(15.0, max(1.0, deadline / 2))),
                   context_tokens=int(getattr(ctx, "llm_context_tokens", None) or cls.context_tokens),
                   stream=bool(getattr(ctx, "llm_stream", True)))


class OpenAIPlanner:
    name = "openai"

    def __init__(self, ctx):
        self.ctx = ctx
        self.label = ctx.model
        self.settings = LLMSettings.of(ctx)
        self.on_text = None
        """Streaming hook: called with ("reset", None) before each attempt, then as chat.complete's `on_delta`."""

    def client(self):
        import openai

        return openai.OpenAI(api_key=self.ctx.openai_api_key or "not-needed", base_url=self.ctx.openai_base_url,
                             max_retries=0)

    @property
    def budget(self) -> int:
        learned = LEARNED_LIMITS.get((self.ctx.openai_base_url, self.ctx.model))
        return min(self.settings.context_tokens, learned or self.settings.context_tokens)

    def plan(self, state: dict, tools: dict, env) -> PlanStep:
        deadline = time.monotonic() + self.settings.deadline_s
        deferred = [c for c in state.get("agenda") or [] if c.get("deferred")]
        try:
            calls, answer = self._ask(state, tools, env, deadline, deferred)
        except LLMError as err:
            return self._fallback(state, tools, env, err.notice)
        return self._step(calls, answer, tools, deferred, had_agenda=bool(state.get("agenda")))

    # ---- one step -------------------------------------------------------------------------------------------
    def _ask(self, state, tools, env, deadline, deferred) -> tuple[list[dict], str]:
        bound = tools_for(state.get("question") or "", state.get("messages") or [], tools,
                          keep=tuple(c.get("name") for c in deferred))
        schemas = compact_tools(bound.values())
        system = system_prompt(self.ctx, env, tools)
        notes = [_deferred_note(deferred)] if deferred else []
        with self.client() as client:
            messages = build(state, system, schemas, self.budget, notes)
            try:
                reply = self._send(client, messages, schemas, tools, deadline)
            except ContextTooLong as err:  # compact harder, once, and remember what fits for this endpoint
                messages = build(state, system, schemas, self._learn_limit(err, messages, schemas), notes)
                try:
                    reply = self._send(client, messages, schemas, tools, deadline)
                except ContextTooLong as again:
                    raise LLMError(f"{again.notice}, even after compacting the conversation to "
                                   f"{request_tokens(messages, schemas):,} tokens") from again
            calls, bad = self._calls(reply)
            if bad:  # say what was wrong, once, and let the model correct itself
                messages = [*messages, _assistant_calls([c for c, _ in bad]),
                            *({"role": "tool", "tool_call_id": c["id"], "content": f"ERROR: {why}"} for c, why in bad)]
                reply = self._send(client, messages, schemas, tools, deadline)
                calls, bad = self._calls(reply)
                if bad:
                    raise LLMError(f"the model's tool call {bad[0][0]['name']}: {bad[0][1]}")
        return calls, strip_reasoning(reply.content)

    def _learn_limit(self, err: ContextTooLong, messages: list[dict], schemas: list[dict]) -> int:
        """A budget that should fit, from the server's own figures when it gives them; kept for this endpoint."""
        size = request_tokens(messages, schemas)
        if err.limit and err.used:  # scale our estimate by the server's count, less a margin
            smaller = int(size * min(1.0, err.limit / err.used)) - 256
        else:
            smaller = int(min(size, err.limit or size) * 0.6)
        LEARNED_LIMITS[(self.ctx.openai_base_url, self.ctx.model)] = smaller
        return smaller

    def _send(self, client, messages, schemas, tools, deadline) -> Reply:
        endpoint = (self.ctx.openai_base_url, self.ctx.model)
        request = {"model": self.ctx.model, "messages": messages, "tools": schemas, "tool_choice": "auto",
                   "temperature": 0, "stream": self.settings.stream}

        def attempt() -> Reply:
            for param in DROPPED_PARAMS.get(endpoint, ()):
                request.pop(param, None)
            if self.on_text is not None:
                self.on_text("reset", None)
            reply = complete(client, request, deadline, self.settings.idle_timeout_s, self.on_text)
            try:
                return _read(reply, set(tools))
            except ReplyError as err:
                raise LLMError(str(err)) from err

        for _ in range(3):  # each refused optional parameter is left out once, and for the rest of the process
            try:
                return with_retries(attempt, deadline)
            except Unsupported as err:
                if err.param not in request:
                    raise
                DROPPED_PARAMS.setdefault(endpoint, set()).add(err.param)
        return with_retries(attempt, deadline)

    @staticmethod
    def _calls(reply: Reply) -> tuple[list[dict], list[tuple[dict, str]]]:
        calls, bad = [], []
        for tc in reply.tool_calls:
            tc["id"] = tc.get("id") or call_id()
            try:
                calls.append({"id": tc["id"], "name": tc["name"], "args": parse_arguments(tc["arguments"])})
            except ReplyError as err:
                bad.append((tc, str(err)))
        return calls, bad

    def _step(self, calls, answer, tools, deferred, had_agenda) -> PlanStep:
        """Read-only calls run now; actions wait for them and go one at a time (the rest is kept, not dropped)."""
        is_action = lambda c: c["name"] in tools and tools[c["name"]].approval  # noqa: E731
        if not calls:
            if deferred:  # the model answered but an action it asked for was never drafted
                first, *rest = deferred
                return PlanStep(calls=[_undeferred(first)], agenda=rest)
            return PlanStep(answer=answer, agenda=[] if had_agenda else None)
        reads = [c for c in calls if not is_action(c)]
        actions = [{**c, "deferred": True} for c in calls if is_action(c)]
        if reads:
            return PlanStep(calls=reads, agenda=actions if actions or had_agenda else None)
        return PlanStep(calls=[_undeferred(actions[0])], agenda=actions[1:] if len(actions) > 1 or had_agenda
                        else None)

    def _fallback(self, state, tools, env, notice: str) -> PlanStep:
        step = OfflinePlanner().plan(state, tools, env)
        step.fallback = f"{self.ctx.model} unavailable ({notice}); used the offline planner"
        return step


def _read(reply: Reply, names: set[str]) -> Reply:
    """Reasoning out, text-form calls read; a reply with neither a call nor an answer is broken."""
    if not reply.tool_calls and reply.content:
        text = strip_reasoning(reply.content)
        found, rest = text_tool_calls(text, names)
        if found:
            return Reply(rest, found, reply.finish_reason, reply.reasoning)
        reply = Reply(text, [], reply.finish_reason, reply.reasoning)
    if not reply.tool_calls and not strip_reasoning(reply.content):
        raise ReplyError("the model returned neither an answer nor a tool call"
                         + (" (only reasoning)" if reply.reasoning or reply.content else ""))
    return reply


def _assistant_calls(tool_calls: list[dict]) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": tc["id"], "type": "function", "function": {"name": tc["name"], "arguments": tc["arguments"]}}
        for tc in tool_calls]}


def _deferred_note(deferred: list[dict]) -> str:
    listed = "; ".join(f"{c['name']} {quoted(json.dumps(c['args']), 200)}" for c in deferred)
    return (f"Not drafted yet from your earlier message: {listed}. One action waits for approval at a time, "
            "after the analyses it reads. Call it again now if it is still wanted, with what the results show.")


def _undeferred(call: dict) -> dict:
    return {"id": call.get("id") or call_id(), "name": call["name"], "args": call["args"]}
