"""What a model's reply means, whatever the model: reasoning removed, tool calls read, arguments parsed.

Models differ in small ways that matter: reasoning models put their thinking in `<think>…</think>` or a
`reasoning_content` field (never shown); Hermes- and Qwen-style models write tool calls as text
(`<tool_call>{"name": …, "arguments": …}</tool_call>`), Mistral as `[TOOL_CALLS] [...]`, Llama as
`<|python_tag|>{…}`; some servers put several parallel calls at index 0 (told apart by their ids); arguments
sometimes carry trailing text. A reply that cannot be read is an error, never an answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
OPEN_THINK = re.compile(r"<(think|thinking|reasoning)>", re.I)
CLOSE_THINK = re.compile(r"</(think|thinking|reasoning)>", re.I)
TOOL_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
MARKERS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>", "<function=", "<|tool_call|>")
SHOWN = 160  # characters of a bad reply quoted back in an error


class ReplyError(Exception):
    """The reply cannot be used as it is: retried, then the turn falls back (never shown as an answer)."""


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    """{id, name, arguments} with arguments as the raw text the model sent."""
    finish_reason: str | None = None
    reasoning: str = ""


def quoted(text: str, limit: int = SHOWN) -> str:
    """Part of what a model sent, for an error message: bounded, on one line."""
    text = " ".join(str(text).split())
    return "`" + (text if len(text) <= limit else text[:limit] + "…").replace("`", "'") + "`"


def strip_reasoning(text: str) -> str:
    """The reply without its reasoning: `<think>…</think>` blocks, a closing tag whose opening was in the chat
    template, and an unclosed `<think>` to the end."""
    text = THINK.sub("", text or "")
    closes = list(CLOSE_THINK.finditer(text))
    if closes:
        text = text[closes[-1].end():]
    opened = OPEN_THINK.search(text)
    if opened:
        text = text[: opened.start()]
    return text.strip()


def parse_arguments(raw: str | dict | None) -> dict:
    """A call's arguments as a dict. Trailing prose after one JSON object is ignored; anything else that is not
    a JSON object raises ReplyError saying so, with what was received."""
    if isinstance(raw, dict):
        return raw
    text = (raw or "").strip()
    if not text:
        return {}
    if text.startswith("```"):
        text = re.sub(r"^```\w*\s*|\s*```$", "", text)
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        raise ReplyError(f"arguments were not valid JSON ({exc.msg} at character {exc.pos}; received "
                         f"{len(text)} characters: {quoted(text)})") from None
    if isinstance(value, str):  # arguments encoded twice: "{\"start\": …}"
        return parse_arguments(value)
    if not isinstance(value, dict):
        raise ReplyError(f"arguments were not a JSON object (received {quoted(text)})")
    rest = text[end:].strip()
    if rest.startswith(("{", "[")):
        raise ReplyError(f"arguments held more than one JSON value (received {len(text)} characters: "
                         f"{quoted(text)})")
    return value


def text_tool_calls(content: str, names: set[str]) -> tuple[list[dict], str]:
    """Tool calls a model wrote as text, and the text left around them. Raises ReplyError when the text
    clearly tries to call a tool but cannot be read."""
    found: list[dict] = []
    rest = content
    if "<tool_call>" in content:
        for body in TOOL_TAG.findall(content):
            found += _as_calls(body, names, content)
        rest = TOOL_TAG.sub("", content)
    elif (marker := next((m for m in ("[TOOL_CALLS]", "<|python_tag|>") if m in content), None)):
        head, _, body = content.partition(marker)
        found, rest = _as_calls(body, names, content), head
    else:
        stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", content.strip())
        if stripped.startswith(("{", "[")) and re.search(r'"(name|function)"\s*:', stripped):
            try:
                found, rest = _as_calls(stripped, names, content), ""
            except ReplyError:
                return [], content  # JSON that is not a call of ours: an answer that happens to hold JSON
    if not found and any(m in content for m in MARKERS):
        raise ReplyError(f"the model wrote a tool call as text that could not be read: {quoted(content)}")
    return found, rest.strip()


def _as_calls(body: str, names: set[str], whole: str) -> list[dict]:
    try:
        value, _ = json.JSONDecoder().raw_decode(body.strip())
    except json.JSONDecodeError:
        raise ReplyError(f"the model wrote a tool call as text that was not valid JSON: {quoted(whole)}") from None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            raise ReplyError(f"a tool call written as text was not an object: {quoted(whole)}")
        fn = item.get("function") if isinstance(item.get("function"), dict) else item
        name = fn.get("name")
        if name not in names:
            raise ReplyError(f"the model wrote a call of an unknown tool {name!r} as text")
        args = fn.get("arguments", fn.get("parameters", {}))
        calls.append({"id": item.get("id"), "name": name,
                      "arguments": args if isinstance(args, str) else json.dumps(args)})
    return calls

