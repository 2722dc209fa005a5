"""What a short message means given the thread before it: a change to the action just drafted, or the go-ahead
for the action an analysis prepared.

"Monday at 9, and hold out 15 %" right after a send was drafted changes that draft: the same action with the new
values, and the earlier request leaves the approvals inbox (an approver never sees two versions of one request).
"Perfect, ship it" or "put that split live from Monday" right after a campaign plan or a budget recommendation is
the action that carries that analysis out, with what it recommended (agent/planners/carrying.py carries the values).
Both read the conversation's own messages: the drafted call and its arguments, the analysis and its result.
"""

from __future__ import annotations

import json
import re

from agent.planners.carrying import carry_thread_args, carry_thread_plan
from agent.planners.extract import rx
from agent.planners.extract.args import FREE_TEXT
from agent.planners.extract.instructions import HYPOTHETICAL, mood
from agent.planners.extract.periods import parse_day, parse_time
from agent.planners.steps import action_args, said_verb
from tools.registry import ToolSpec

DRAFTED = "DRAFTED, NOT RUN: "
GO_AHEAD = re.compile(r"\b(?:ship|send|launch|run with|roll out|execute|action|apply|implement|do) (?:it|that|this)"
                      r"\b|\bgo ahead\b|\bgo for it\b|\bmake it (?:so|happen|live)\b|\blet'?s do (?:it|this|that)\b|"
                      r"\b(?:put|set|take|push|make|turn) (?:it|that|this|them|(?:the|that|this) \w+) (?:live|in place|"
                      r"into effect)\b|\bgo live\b", re.I)


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


def may_continue(text: str, state: dict) -> bool:
    """Whether the message can change the draft just made or give the go-ahead for an analysis (cheap, so the
    planner picks a tool for it only then)."""
    return last_draft(state) is not None or (bool(state.get("last_tool")) and GO_AHEAD.search(text) is not None)


def amended_draft(text: str, state: dict, tools: dict[str, ToolSpec], env, picked: str | None) -> list[dict] | None:
    """The draft before with what this message changes, when the message gives the action new values and asks for
    no other tool ("Monday at 9, and hold out 15 %", "make it 20 % instead")."""
    draft = last_draft(state)
    if draft is None or draft["name"] not in tools:
        return None
    inferred = not said_verb(picked, tools[picked], text) if picked else True  # not named by its verb
    if picked not in (None, draft["name"]) and not (inferred and (tools[picked].approval or CHANGE.search(text))):
        return None  # another tool asked for; one only inferred ("make it Monday", "actually make it Friday, and
        # hold back 20 %" fits a plan's words too) is not a new request
    if mood(text) == "hypothetical" or HYPOTHETICAL.search(text):
        return None
    spec = tools[draft["name"]]
    swapped = corrected(text, state)
    said = action_args(swapped or text, spec, env)
    if swapped:  # "actually make it Friday, and hold back 20 %": the swap, and what else the message says
        said.update(action_args(text, spec, env))
    when = draft["args"].get("send_at")
    day, clock = parse_day(text, env.today), parse_time(text)
    if when and clock and day is None:
        said["send_at"] = f"{str(when)[:10]}T{clock[0]:02d}:{clock[1]:02d}:00"  # "make that 11am": the same day
    elif when and day is not None and not clock:
        said["send_at"] = f"{day.isoformat()}T{str(when)[11:19]}"  # "make it Friday, same time": the same time
    new = {k: v for k, v in said.items() if k not in FREE_TEXT and v != draft["args"].get(k)}
    if not new:
        return None
    return [{"name": draft["name"], "args": {**draft["args"], **new}, "replaces": draft["request"]}]


CORRECTION = re.compile(r"(?:\b(?:make it|make that|change (?:it|that) to|do|use|i meant|it should be)\s+)?"
                        r"(?P<new>[\w%.,£$€]+)\s*,?\s*(?:not|instead of|rather than)\s+(?P<old>[\w%.,£$€]+)"
                        r"|\binstead of\s+(?P<old2>[\w%.£$€]+)\s*,?\s*(?:do|use|make it)?\s*(?P<new2>[\w%.£$€]+)", re.I)


CHANGE = re.compile(r"\b(?:actually|sorry|meant|should be|change (?:it|that)|make (?:it|that)|instead|correction|"
                    r"rather)\b", re.I)
PERCENT = re.compile(r"\d+(?:\.\d+)?\s?%")


def corrected(text: str, state: dict) -> str | None:
    """The request before, with what this message swaps in it: "actually make it 5 %, not 10" or "do affiliate
    instead of video" → the earlier instruction with 10 → 5 or video → affiliate (None: no such swap)."""
    users = [str(msg.get("content") or "") for msg in state.get("messages") or [] if msg.get("role") == "user"]
    before = next((u for u in reversed(users) if u.strip() != text.strip()), None)
    if not before:
        return None
    m = CORRECTION.search(text)
    if m:
        new, old = (m.group("new"), m.group("old")) if m.group("new") else (m.group("new2"), m.group("old2"))
    elif CHANGE.search(text) and len(now := PERCENT.findall(text)) == 1 and len(was := PERCENT.findall(before)) == 1:
        new, old = now[0], was[0]  # "I think my manager actually said 20% - could you change that?"
    else:
        return None
    new, old = new.strip(".,"), old.strip(".,")
    if old.endswith("%") and re.fullmatch(r"[\d.]+", new):
        new += "%"  # "make it 5, not 10 %": the unit said once
    quoted = [m.span() for m in re.finditer(r"(?<!\w)[\"“'‘][^\"”’]{2,300}?[\"”'’](?!\w)", before)]
    spots = [m for m in rx.finditer(rf"(?<![\w.]){re.escape(old)}(?:\s?[ap]\.?m\b)?(?![\w.])", before, re.I)
             if not any(a <= m.start() < b for a, b in quoted)]  # never inside the message to send
    if re.search(r"\d\s?[ap]\.?m\b|:\d\d", new, re.I):  # "make it 9am, not 10": the time said before
        spots = [m for m in spots if re.search(r"[ap]\.?m$", m.group(0), re.I)] or spots
    if not spots:
        return None
    m = spots[0]
    swapped = before[:m.start()] + new + before[m.end():]
    return re.sub(r"([%£$€])\s*\1|£\s*£", r"\1", swapped)  # "5%" in for "10" of "10%": one sign


def go_ahead(text: str, state: dict, tools: dict[str, ToolSpec], env, picked: str | None) -> str | None:
    """The action that carries out the thread's last analysis, for an instruction that refers back to it and names
    no tool of its own ("perfect, ship it" after a campaign plan, "put that split live" after an allocation): the
    action the analysis' inputs and result fill most (its arguments, its recommended plan, a run it needs)."""
    last = (state.get("last_tool") or {}).get("name")
    if last not in tools or tools[last].approval or last_draft(state) is not None:
        return None
    if not GO_AHEAD.search(text) or mood(text) == "hypothetical" or text.rstrip().endswith("?"):
        return None  # ("make them more premium" changes the analysis; it does not carry it out; "ok, do it" does)
    if picked is not None:  # "Looks right. Launch it.": the action it names, carrying the analysis out
        return picked if tools[picked].approval and said_verb(picked, tools[picked], text) else None
    shared = set(tools[last].json_schema().get("properties", {}))
    best, best_carried = None, (0, 0)
    for name, spec in tools.items():
        if not spec.approval:
            continue
        step = {"name": name, "args": action_args(text, spec, env)}
        said = len(step["args"])
        carry_thread_plan(step, spec, state, text, [])
        carry_thread_args(step, spec, state, text, [])
        needs = any(last in choices.values() for choices in spec.requires.values())
        carried = (len(step["args"]) - said + needs,  # what it fills, then how many inputs it shares with the analysis
                   len(shared & set(spec.json_schema().get("properties", {}))))
        if carried[0] and carried > best_carried:
            best, best_carried = name, carried
    return best
