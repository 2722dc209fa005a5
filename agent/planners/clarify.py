"""Clarifying questions: when an action's required input cannot be resolved, ask one short question; the reply
fills the slot.

The question is an ordinary answer that starts with `ASKING` (or, when no tool fits well enough, names the two
closest tools: "Did you mean …?"). On the next turn the planner finds it as the thread's last answer, takes the
request it answered, and plans that request again with the reply added: the reply supplies the missing name,
amount or choice, and a reply that is a new question of its own is planned as one. Nothing but the conversation is
kept, so a clarification survives restarts like any other turn.
"""

from __future__ import annotations

import re

from agent.planners.extract import mentions, rx
from tools.registry import ToolSpec

ASKING = "To {verb} {title} I need one more detail: "
ASKED = re.compile(r"(?:^|\n)To (?:draft|run) ([a-z ]+) I need one more detail: ")

CHOOSING = re.compile(r"Did you mean \*\*([a-z ]+)\*\* \(.*?\) or \*\*([a-z ]+)\*\* \(.*?\)\?", re.S)
NAMED_AUDIENCE = re.compile(r"\b(?:to|for)\s+(?:the\s+|our\s+)?[\"“'‘]?([A-Z][\w&-]*(?:\s+[A-Z0-9][\w&-]*){0,4})"
                            r"[\"”'’]?\s+(?:audience|list|segment)\b|\b(?:audience|list)\s+(?:called|named)\s+"
                            r"[\"“'‘]?([A-Z][\w&-]*(?:\s+[A-Z0-9][\w&-]*){0,4})"
                            r"|\bto\s+[\"“'‘]([A-Z][^\"”'’]{1,40})[\"”'’]"
                            r"(?=\s+(?:on|at|tomorrow|next|this|with|from)\b)"
                            r"|\bto\s+([A-Z][\w&-]*(?:\s+[A-Z0-9][\w&-]*){1,4})"
                            r"(?=\s+(?:on|at|tomorrow|next|this|with|from|for)\b|\s*[,.;]|\s*$)")


def unknown_audience(text: str, vocab: dict) -> str | None:
    """An audience the text names that the warehouse does not hold ("send it to the Gold VIPs audience")."""
    said = NAMED_AUDIENCE.search(text)
    named = next((g for g in (said.groups() if said else ()) if g), None)
    known = {str(a).lower() for a in vocab.get("audience") or []} | {
        str(s).lower() for s in vocab.get("segment") or []}
    if named is None and (group := GROUP.search(text)):  # "email my newsletter crowd …": a group we cannot resolve
        words = group.group(1).lower()
        if not any(rx.search(rf"\b{re.escape(k)}\b", words) for k in known) and not DESCRIBED.search(words):
            return group.group(1)
    return named if named and named.lower() not in known else None


GROUP = re.compile(r"\b(?:email|e-mail|text|sms|message|push|mail|send (?:it |this |that )?to)\s+(?:all\s+)?"
                   r"(?:my|our|the)\s+((?:[\w-]+\s+){1,3}?(?:crowd|people|subscribers|folks|lot|gang|fans|regulars|"
                   r"mailing list|list))\b", re.I)
DESCRIBED = re.compile(r"\b(?:at[- ]risk|risk|churn\w*|lapsing|lapsed|high[- ]value|valuable|vip|best|top|loyal\w*|"
                       r"new|recent|inactive|dormant|segment)\b", re.I)  # who a score or a segment run can find


def _title(name: str) -> str:
    return name.replace("_", " ")


def _plain(names: list[str]) -> list[str]:
    """Names safe to list in an answer: no digits (the grounding guard checks every number an answer holds)."""
    return [n for n in names if not re.search(r"\d", n)][:5]


def question_for(spec: ToolSpec, missing: str, text: str, vocab: dict) -> str:
    """One short question for the input `missing` of the tool `spec`, naming the choices the warehouse holds."""
    prop = spec.json_schema().get("properties", {}).get(missing, {})
    about = (prop.get("description") or missing.replace("_", " ")).rstrip(".")
    choices = _plain(list(vocab.get("audience" if "audience" in missing else missing) or []))
    lead = ASKING.format(verb="draft" if spec.approval else "run", title=_title(spec.name))
    if missing in ("sql", "query"):
        from tools.warehouse import TABLES

        tables = ", ".join(t.name for t in TABLES if t.kind == "canonical")
        return (lead + "I could not map the question onto the warehouse's tables. Which table, and what should be "
                f"counted or added up? Tables: {tables}.")
    if missing == "audience" or "audience" in about.lower():
        said = NAMED_AUDIENCE.search(text)
        named = next((g for g in (said.groups() if said else ()) if g), None)
        unknown = f"there is no audience called '{named}'. " if named and not re.search(r"\d", named) else ""
        known = (f" Recent audiences: {', '.join(choices)}." if choices
                 else " Create one first with an audience request.")
        return lead + unknown + "Which audience should it go to?" + known
    if prop.get("type") == "object":  # per-channel amounts: the channels that hold one now
        channels = [c for c in (vocab.get("current") or {}).get(missing) or vocab.get("channel") or []
                    if not re.search(r"\d", c)]
        if said := mentions(text, channels):
            return (lead + f"how much should change for {' and '.join(said)}? A share (such as a tenth) or a daily "
                    "amount.")
        return (lead + "which channel should change, and by how much? For example, set a channel to a daily amount, "
                "or move a share of one channel into another" + (f". Channels: {', '.join(channels)}." if channels
                                                                  else "."))
    tail = f" Choices: {', '.join(choices)}." if choices else ""
    return lead + f"{about[0].lower() + about[1:]}?" + tail


def asked(state: dict) -> dict | None:
    """The clarification the thread's last answer asked for, if any: {question, kind, options}."""
    messages = state.get("messages") or []
    answer_at = next((i for i in range(len(messages) - 2, -1, -1)
                      if messages[i].get("role") == "assistant" and messages[i].get("content")), None)
    if answer_at is None:
        return None
    answer = messages[answer_at]["content"]
    request = next((m.get("content") for m in reversed(messages[:answer_at]) if m.get("role") == "user"), None)
    if not request:
        return None
    if m := ASKED.search(answer):
        return {"question": request, "kind": "slot", "options": [m.group(1).replace(" ", "_")]}
    if m := CHOOSING.search(answer):
        return {"question": request, "kind": "tool", "options": [g.replace(" ", "_") for g in m.groups()]}
    return None


def chosen_tool(reply: str, options: list[str]) -> str | None:
    """Which of the offered tools a reply picks: by name, 'the first' / 'the second', or 'yes' (the first)."""
    low = reply.lower()
    for name in options:
        if name.replace("_", " ") in low or name in low:
            return name
    if re.search(r"\b(second|latter|2nd|the other)\b", low) and len(options) > 1:
        return options[1]
    if re.search(r"\b(first|former|1st|yes|yep|yeah|that one)\b", low):
        return options[0]
    return None
