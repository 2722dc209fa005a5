"""The thread as the model sees it, within a token budget.

The system prompt and the tool schemas come first (fixed). Earlier turns are compacted: the question, the calls
made, each result's summary, metrics and warnings (data rows dropped) and the answer given, newest first while
they fit in an eighth of the budget; older turns are left out with a note. The current turn's tool results
share what is left, each cut as valid JSON (summary, metrics and warnings first). Text written by people is
masked again here; tool messages were masked when they were recorded.
"""

from __future__ import annotations

import json

from agent import guardrails
from agent.planners.context_budget import (
    PREFIX,
    message_tokens,
    read_tool_content,
    request_tokens,
    tool_content,
)

HISTORY_SHARE = 8          # earlier turns get at most budget / HISTORY_SHARE tokens
RESULT_MAX = 3000          # the most one current result may take
RESULT_MIN = 150           # a summary, at least
EARLIER_LEVELS = ((400, 1200), (160, 500))   # (tokens per earlier result, characters of an earlier answer)


def split_turns(messages: list[dict]) -> list[list[dict]]:
    """Messages grouped by turn: each turn starts with the user's message."""
    turns: list[list[dict]] = []
    for m in messages:
        if m.get("role") == "user" or not turns:
            turns.append([])
        turns[-1].append(m)
    return turns


def build(state: dict, system: str, tools: list[dict], budget: int, notes: list[str] = ()) -> list[dict]:
    """The messages of one request, within `budget` tokens (with the tools) whenever that is possible."""
    turns = split_turns(state.get("messages") or [])
    current = turns.pop() if turns else [{"role": "user", "content": state.get("question", "")}]
    head = [{"role": "system", "content": system}]
    tail = [{"role": "system", "content": n} for n in notes]
    fixed = request_tokens(head + tail, tools)
    history = earlier_turns(turns, max(0, min(budget // HISTORY_SHARE, budget - fixed - 500)))
    used = fixed + sum(message_tokens(m) for m in history)
    return head + history + current_turn(current, budget - used) + tail


def earlier_turns(turns: list[list[dict]], budget: int) -> list[dict]:
    """The newest earlier turns that fit, compacted; a note says how many older ones were left out."""
    kept: list[list[dict]] = []
    used = 0
    for turn in reversed(turns):
        for per_result, answer_chars in EARLIER_LEVELS:
            compact = _compact_turn(turn, per_result, answer_chars)
            size = sum(message_tokens(m) for m in compact)
            if used + size <= budget:
                break
        else:
            break
        kept.insert(0, compact)
        used += size
    left_out = len(turns) - len(kept)
    note = ([{"role": "system", "content": f"({left_out} earlier turn{'s' if left_out > 1 else ''} of this "
                                           "conversation left out to fit the context.)"}] if left_out else [])
    return note + [m for turn in kept for m in turn]


def _compact_turn(turn: list[dict], per_result: int, answer_chars: int) -> list[dict]:
    out = []
    for m in turn:
        role = m.get("role")
        if role == "tool":
            out.append({**m, "content": _bounded_tool(m.get("content") or "", per_result, keep_data=False)})
        elif role == "assistant" and m.get("tool_calls"):
            out.append({"role": "assistant", "content": None, "tool_calls": [_short_call(tc) for tc in m["tool_calls"]]})
        else:
            out.append({"role": role, "content": _text(m.get("content"), answer_chars if role == "assistant" else 600)})
    return out


def current_turn(turn: list[dict], room: int) -> list[dict]:
    """The current turn, its tool results sharing `room` tokens (after the question and the calls)."""
    results = [m for m in turn if m.get("role") == "tool"]
    others = [m for m in turn if m.get("role") != "tool"]
    room -= sum(message_tokens(_plain(m)) for m in others) + 8 * len(results)
    per = max(RESULT_MIN, min(RESULT_MAX, room // max(1, len(results))))
    out = []
    for m in turn:
        if m.get("role") == "tool":
            out.append({**m, "content": _bounded_tool(m.get("content") or "", per)})
        else:
            out.append(_plain(m))
    return out


def _plain(m: dict) -> dict:
    msg = {k: v for k, v in m.items() if v is not None or k == "content"}
    if isinstance(msg.get("content"), str) and msg.get("role") in ("user", "assistant"):
        msg["content"] = guardrails.mask_text(msg["content"])
    return msg


def _text(content, limit: int) -> str:
    text = guardrails.mask_text(content or "")
    return text if len(text) <= limit else text[:limit] + " …(cut)"


def _short_call(tc: dict) -> dict:
    args = tc["function"].get("arguments") or "{}"
    if len(args) > 600:
        args = json.dumps({"_cut": f"arguments of {len(args)} characters left out"})
    return {**tc, "function": {**tc["function"], "arguments": args}}


def _bounded_tool(content: str, max_tokens: int, keep_data: bool = True) -> str:
    result = read_tool_content(content)
    if result is None:  # an error message, or something that is not a result
        return content if len(content) <= max_tokens * 4 else content[: max_tokens * 4] + " …(cut)"
    return tool_content(result, max_tokens, keep_data=keep_data) if result else PREFIX + "{}"
