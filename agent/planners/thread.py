"""What a short message means given the thread before it: a change to the action just drafted, or the go-ahead
for the action an analysis prepared.

"Monday at 9, and hold out 15 %" right after a send was drafted changes that draft: the same action with the new
values, and the earlier request leaves the approvals inbox (an approver never sees two versions of one request).
"Perfect, ship it" or "put that split live from Monday" right after a campaign plan or a budget recommendation is
the action that carries that analysis out, with what it recommended (agent/planners/steps.py carries the values).
Both read the conversation's own messages: the drafted call and its arguments, the analysis and its result.
"""

from __future__ import annotations

import json
import re

from agent.planners.extract.args import FREE_TEXT
from agent.planners.extract.instructions import HYPOTHETICAL, mood
from agent.planners.steps import action_args, carry_thread_args, carry_thread_plan
from tools.registry import ToolSpec

DRAFTED = "DRAFTED, NOT RUN: "
GO_AHEAD = re.compile(r"\b(?:ship|send|launch|run with|roll out|execute|action|apply|implement|do) (?:it|that|this)"
                      r"\b|\bgo ahead\b|\bgo for it\b|\bmake it (?:so|happen|live)\b|\blet'?s do (?:it|this|that)\b|"
                      r"\b(?:put|set|take|push|make|turn) (?:it|that|this|them|(?:the|that|this) \w+) (?:live|in place|"
                      r"into effect)\b|\bgo live\b", re.I)


def named(tool: str, text: str) -> bool:
    """Whether the text says the tool's verb ("launch" for launch_campaign)."""
    return re.search(rf"\b{tool.split('_')[0]}", text, re.I) is not None


def last_draft(state: dict) -> dict | None:
    """The action drafted last in the thread when nothing has run since: {"name", "args", "request"}."""
    messages = state.get("messages") or []
    calls = {c["id"]: c["function"] for m in messages for c in m.get("tool_calls") or []
             if isinstance(c, dict) and "function" in c}
    for message in reversed(messages):
        if message.get("role") != "tool":
            continue
        content = str(message.get("content") or "")
        call = calls.get(message.get("tool_call_id"))
        if not content.startswith(DRAFTED) or call is None:
            return None
        try:
            note, args = json.loads(content[len(DRAFTED):]), json.loads(call.get("arguments") or "{}")
        except (TypeError, ValueError):
            return None
        return {"name": call["name"], "args": args, "request": note.get("request")}
    return None


def amended_draft(text: str, state: dict, tools: dict[str, ToolSpec], env, picked: str | None) -> list[dict] | None:
    """The draft before with what this message changes, when the message gives the action new values and asks for
    no other tool ("Monday at 9, and hold out 15 %", "make it 20 % instead")."""
    draft = last_draft(state)
    if draft is None or draft["name"] not in tools:
        return None
    if picked not in (None, draft["name"]) and not (tools[picked].approval and not named(picked, text)):
        return None  # another tool asked for; an action only inferred ("make it Monday") is not a new request
    if mood(text) == "hypothetical" or HYPOTHETICAL.search(text):
        return None
    spec = tools[draft["name"]]
    new = {k: v for k, v in action_args(text, spec, env).items()
           if k not in FREE_TEXT and v != draft["args"].get(k)}
    if not new:
        return None
    return [{"name": draft["name"], "args": {**draft["args"], **new}, "replaces": draft["request"]}]


def go_ahead(text: str, state: dict, tools: dict[str, ToolSpec], env, picked: str | None) -> str | None:
    """The action that carries out the thread's last analysis, for an instruction that refers back to it and names
    no tool of its own ("perfect, ship it" after a campaign plan, "put that split live" after an allocation): the
    action the analysis' inputs and result fill most (its arguments, its recommended plan, a run it needs)."""
    last = (state.get("last_tool") or {}).get("name")
    if picked is not None or last not in tools or tools[last].approval or last_draft(state) is not None:
        return None
    if mood(text) != "instruction" or not GO_AHEAD.search(text):
        return None  # ("make them more premium" changes the analysis; it does not carry it out)
    best, best_carried = None, 0
    for name, spec in tools.items():
        if not spec.approval:
            continue
        step = {"name": name, "args": action_args(text, spec, env)}
        said = len(step["args"])
        carry_thread_plan(step, spec, state, text, [])
        carry_thread_args(step, spec, state, text, [])
        needs = any(last in choices.values() for choices in spec.requires.values())
        carried = len(step["args"]) - said + needs
        if carried > best_carried:
            best, best_carried = name, carried
    return best
