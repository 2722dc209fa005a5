"""The model's answer as it streams, sentence by sentence, each sentence grounded before anyone sees it.

The planner calls the hook with every piece of content it receives (`content`), when a tool call starts
(`tool_call`: this reply is not the answer) and before each attempt (`reset`: a retry starts over). Reasoning
(`<think>…</think>`) and text-form tool calls are never shown. A sentence is shown only when the grounding check
accepts it whole; after the first that it does not, nothing more is streamed and the checked answer arrives at
the end of the turn (guard_output) as usual. Events: `answer_delta` {text}, `answer_reset`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from agent import control

THINK = re.compile(r"<think>.*?</think>", re.S | re.I)
UNIT_END = re.compile(r"\n+|(?<=[^\d\s][.!?])\s+|(?<=[.!?][\"')\]])\s+")
"""A unit ends at a line break, or at . ! ? after a non-digit followed by space (so 2.3 never splits)."""


class AnswerStream:
    def __init__(self, emit: Callable[[dict], None], accepts: Callable[[str], bool], thread_id: str | None = None):
        self.emit, self.accepts, self.thread_id = emit, accepts, thread_id
        self.buffer, self.shown, self.stopped = "", 0, False

    def __call__(self, kind: str, text: str | None = None) -> None:
        control.check(self.thread_id)  # a stopped turn drops the reply at its next chunk
        if kind == "reset" or kind == "tool_call":
            self.reset()
            self.stopped = kind == "tool_call"
            return
        if kind != "content" or not text or self.stopped:
            return
        self.buffer += text
        self._flush()

    def finish(self) -> None:
        """The reply is complete: its last sentence (no separator after it) is shown too, if grounded."""
        if not self.stopped:
            self.buffer += "\n"
            self._flush()

    def reset(self) -> None:
        if self.shown:
            self.emit({"event": "answer_reset"})
        self.buffer, self.shown, self.stopped = "", 0, False

    def _flush(self) -> None:
        visible = THINK.sub("", self.buffer)
        if re.search(r"<think>|<tool_call|```tool|\{\s*\"name\"", visible, re.I):
            return  # reasoning still open, or a call written as text: hold it all
        for unit, sep in _units(visible[self.shown:]):
            if not unit.strip():
                self._advance(unit + sep)
                continue
            if not self.accepts(unit):
                self.stopped = True  # the checked answer comes at the end of the turn
                return
            self.emit({"event": "answer_delta", "text": unit + sep})
            self._advance(unit + sep)

    def _advance(self, text: str) -> None:
        self.shown += len(text)


def _units(text: str) -> list[tuple[str, str]]:
    """The complete units of `text` as (text, separator); the unfinished rest waits for more."""
    units, start = [], 0
    for m in UNIT_END.finditer(text):
        units.append((text[start:m.start()], m.group(0)))
        start = m.end()
    return units


def grounding_check(state: dict, ctx, env) -> Callable[[str], bool]:
    """A sentence passes when the thread's evidence supports every figure in it (agent/grounding.py)."""
    from agent import grounding
    from agent.answer import compose_answer

    evidence = None

    def accepts(sentence: str) -> bool:
        nonlocal evidence
        if evidence is None:
            calls = state.get("calls") or []
            drafted = [{"name": d["action"], "args": d["args"], "ok": False, "error": f"drafted: {d['description']}"}
                       for d in state.get("drafts") or []]
            evidence = grounding.thread_evidence({**state, "calls": [*calls, *drafted]}, ctx, env,
                                                 compose_answer(calls, state))
        verdict = grounding.check_answer(sentence, evidence)
        return bool(verdict.grounded) and not verdict.removed and verdict.text.strip() == sentence.strip()

    return accepts
