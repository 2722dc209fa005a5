"""The `openai` planner: any OpenAI-compatible endpoint, tools bound from the registry, streamed.

Retries with jittered exponential backoff (tenacity) on 429, 5xx, timeouts and connection errors within a
deadline; after that the turn falls back to the offline planner and says so. Everything sent is PII-masked.
"""

from __future__ import annotations

import json

from agent import guardrails
from agent.planners import PlanStep, call_id
from agent.planners.offline import OfflinePlanner
from prompts import load


class OpenAIPlanner:
    name = "openai"

    def __init__(self, ctx):
        self.ctx = ctx
        self.label = ctx.model

    def client(self):
        import openai

        return openai.OpenAI(api_key=self.ctx.openai_api_key or "not-needed", base_url=self.ctx.openai_base_url,
                             max_retries=0, timeout=max(1.0, min(20.0, self.ctx.llm_deadline_s / 2)))

    def plan(self, state: dict, tools: dict, env) -> PlanStep:
        try:
            reply = self._complete(self._messages(state, env), [s.openai_tool() for s in tools.values()])
        except Exception as exc:  # after the retry budget: the turn goes on offline, and says why
            reason = f"{self.ctx.model} unavailable ({type(exc).__name__}: {str(exc)[:160]}); used the offline planner"
            step = OfflinePlanner().plan(state, tools, env)
            step.fallback = reason
            return step
        calls = []
        for tc in reply.get("tool_calls") or []:
            try:
                args = json.loads(tc["arguments"] or "{}")
            except json.JSONDecodeError:
                args = {"_unparsed": tc["arguments"]}
            calls.append({"id": tc.get("id") or call_id(), "name": tc["name"], "args": args})
        if calls:
            return PlanStep(calls=calls)
        return PlanStep(answer=reply.get("content") or "")

    def _messages(self, state: dict, env) -> list[dict]:
        system = load("system").format(today=env.today.isoformat())
        history = []
        for m in state.get("messages") or []:
            msg = {k: v for k, v in m.items() if v is not None or k == "content"}
            if isinstance(msg.get("content"), str):
                msg["content"] = guardrails.mask_text(msg["content"])
            history.append(msg)
        return [{"role": "system", "content": system}, *history]

    def _complete(self, messages: list[dict], tool_specs: list[dict]) -> dict:
        import openai
        from tenacity import (
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            stop_after_delay,
            wait_random_exponential,
        )

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, openai.RateLimitError | openai.APITimeoutError | openai.APIConnectionError):
                return True
            return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500

        client = self.client()
        for attempt in Retrying(retry=retry_if_exception(retryable), reraise=True,
                                wait=wait_random_exponential(multiplier=0.25, max=4.0),
                                stop=stop_after_delay(self.ctx.llm_deadline_s) | stop_after_attempt(6)):
            with attempt:
                return self._stream(client, messages, tool_specs)
        raise RuntimeError("unreachable")

    def _stream(self, client, messages, tool_specs) -> dict:
        stream = client.chat.completions.create(model=self.ctx.model, messages=messages, tools=tool_specs,
                                                tool_choice="auto", stream=True, temperature=0)
        content, calls = [], {}
        for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                content.append(delta.content)
            for tc in delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    slot["id"] = tc.id
                if tc.function and tc.function.name:
                    slot["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    slot["arguments"] += tc.function.arguments
        return {"content": "".join(content), "tool_calls": [calls[i] for i in sorted(calls)]}
