"""One chat completion from an OpenAI-compatible endpoint, checked before anyone sees it.

A reply counts only when it is complete: a stream that ends without a finish_reason (cut before `[DONE]`), a
200 whose body is not JSON (a proxy's HTML error page, a truncated body) or a reply cut at the output limit is
an error, retried like a 429 or a 5xx. The server's `Retry-After` is honoured when it fits the deadline; each
chunk must arrive within the idle timeout and the whole call within the deadline. Permanent errors (401, 403,
404, a 400 other than context length) are not retried; `context_length_exceeded` is its own error so the
caller can compact and try once more.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Callable

from agent.planners.replies import Reply, quoted

MAX_ATTEMPTS = 5
CONTEXT = re.compile(r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long|"
                     r"exceeds? the (available )?context|reduce the length|ContextWindowExceeded", re.I)
LIMIT = re.compile(r"maximum context length is (\d+)|context (?:window|size)(?: is| of)? (\d+)", re.I)
OPTIONAL = ("temperature", "tool_choice", "parallel_tool_calls", "stream_options", "top_p")
REFUSED = re.compile(r"unsupported|not support|unrecognized|unknown|extra (inputs|fields)|not (permitted|allowed)|"
                     r"invalid (value|parameter)|only the default", re.I)
USED = re.compile(r"resulted in (\d+) tokens|requested (\d+) tokens|prompt (?:has|is) (\d+) tokens|"
                  r"(\d+) tokens in the messages", re.I)


class LLMError(Exception):
    """Why a completion failed, said for the user (`notice`), and whether trying again may help."""

    retry = True

    def __init__(self, notice: str, retry_after: float | None = None):
        super().__init__(notice)
        self.notice = notice
        self.retry_after = retry_after


class Permanent(LLMError):
    retry = False


class Unsupported(LLMError):
    """The server refused an optional parameter (`temperature` on reasoning models, `tool_choice` on some
    servers): the caller leaves it out and tries again."""

    retry = False

    def __init__(self, notice: str, param: str):
        super().__init__(notice)
        self.param = param


class ContextTooLong(LLMError):
    retry = False

    def __init__(self, notice: str, limit: int | None = None, used: int | None = None):
        super().__init__(notice)
        self.limit = limit
        self.used = used


def complete(client, request: dict, deadline: float, idle_s: float,
             on_delta: Callable[[str, str | None], None] | None = None) -> Reply:
    """One attempt; raises LLMError (classified) on anything but a complete reply. `on_delta(kind, text)` sees a
    streamed reply as it arrives ("content" pieces, "tool_call" when a call starts); it changes nothing else."""
    import openai

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise LLMError("no time left within the turn's deadline")
    timeout = openai.Timeout(remaining, connect=min(5.0, remaining), read=min(idle_s, remaining))
    try:
        response = client.chat.completions.create(**request, timeout=timeout)
        if request.get("stream"):
            return _from_stream(response, deadline, on_delta)
        return _from_completion(response)
    except LLMError:
        raise
    except Exception as exc:  # the openai client's errors, JSON errors from a broken body, socket errors
        raise classify(exc, idle_s) from exc


def with_retries(attempt: Callable[[], Reply], deadline: float, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[LLMError, float], None] | None = None) -> Reply:
    """`attempt()` until it returns, an error is permanent, or the next wait would pass the deadline."""
    tries = 0
    while True:
        try:
            return attempt()
        except LLMError as err:
            tries += 1
            if not err.retry or tries >= MAX_ATTEMPTS:
                raise
            wait = err.retry_after if err.retry_after is not None else backoff(tries)
            left = deadline - time.monotonic()
            if wait >= left:
                asked = f"; the server asked to retry after {wait:.0f} s" if err.retry_after else ""
                raise LLMError(f"{err.notice}{asked}, beyond the {max(left, 0):.0f} s left of the turn's "
                               f"deadline") from err
            if on_retry:
                on_retry(err, wait)
            sleep(wait)


def backoff(tries: int) -> float:
    """Jittered exponential backoff when the server names no wait: about 0.25, 0.5, 1, 2 s."""
    return min(4.0, 0.25 * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)


def classify(exc: Exception, idle_s: float) -> LLMError:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return LLMError(f"no reply within {idle_s:.0f} s (timeout)")
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(f"could not reach the endpoint ({type(exc.__cause__ or exc).__name__})")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, json.JSONDecodeError | openai.APIResponseValidationError):
        return LLMError("the endpoint's reply was not valid JSON (cut short, or not an API response)")
    return LLMError(f"unexpected error ({type(exc).__name__}: {str(exc)[:120]})")


def _status_error(exc) -> LLMError:
    status, message = exc.status_code, _message(exc)
    if status in (400, 413, 422) and CONTEXT.search(message + " " + str(getattr(exc, "code", "") or "")):
        limit, used = (int(next(g for g in m.groups() if g)) if (m := pattern.search(message)) else None
                       for pattern in (LIMIT, USED))
        return ContextTooLong(f"the request was longer than the model's context ({message[:120]})", limit, used)
    if status in (400, 422) and REFUSED.search(message):
        param = next((p for p in OPTIONAL if p in message), None)
        if param:
            return Unsupported(f"the endpoint does not accept `{param}` ({message[:100]})", param)
    if status == 429 and "quota" in message.lower():
        return Permanent(f"the account's quota is used up (429: {message[:120]})")
    if status in (408, 409, 429) or status >= 500:
        return LLMError(f"the endpoint answered {status} ({message[:100]})", retry_after(exc.response.headers))
    hints = {401: "the API key was refused; check OPENAI_API_KEY", 403: "the API key may not use this model",
             404: "no such model or endpoint; check NORTHSTAR_MODEL and OPENAI_BASE_URL"}
    return Permanent(f"{hints.get(status, 'the endpoint rejected the request')} ({status}: {message[:120]})")


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner.get("message"), str):
            return inner["message"]
    return str(getattr(exc, "message", exc))


def retry_after(headers) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `retry-after` in seconds or as an HTTP date)."""
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# ---- reading the reply ------------------------------------------------------------------------------------

def _extra(obj, *names: str) -> str:
    for name in names:
        value = getattr(obj, name, None) or (getattr(obj, "model_extra", None) or {}).get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _from_stream(stream, deadline: float, on_delta=None) -> Reply:
    content, reasoning, slots, by_index = [], [], [], {}
    finish, chunks = None, 0
    try:
        for chunk in stream:
            chunks += 1
            if time.monotonic() > deadline:
                raise LLMError("the reply was still streaming at the turn's deadline")
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            delta = choice.delta
            if delta is not None:
                content.append(delta.content or "")
                reasoning.append(_extra(delta, "reasoning_content", "reasoning"))
                if on_delta is not None and (delta.content or delta.tool_calls):
                    on_delta("tool_call" if delta.tool_calls else "content", delta.content)
                for tc in delta.tool_calls or []:
                    _add_call_piece(slots, by_index, tc)
            finish = choice.finish_reason or finish
    finally:
        stream.close()
    reply = Reply("".join(content), [s for s in slots if s["name"] or s["arguments"]], finish, "".join(reasoning))
    if finish is None:
        if not chunks:
            raise LLMError("the endpoint answered 200 but sent no chat stream (an error page or an empty body)")
        raise LLMError(f"the stream ended before the model finished (no finish_reason after {chunks} chunks; "
                       f"received {quoted(reply.content, 80)})")
    return _checked(reply)


def _add_call_piece(slots: list[dict], by_index: dict, tc) -> None:
    """Parallel calls are told apart by index, or by id when a server sends them all at index 0."""
    index = tc.index if tc.index is not None else 0
    slot = by_index.get(index)
    if slot is None or (tc.id and slot["id"] and tc.id != slot["id"]):
        slot = {"id": tc.id, "name": "", "arguments": ""}
        slots.append(slot)
        by_index[index] = slot
    elif tc.id and not slot["id"]:
        slot["id"] = tc.id
    fn = tc.function
    if fn is not None:
        if fn.name and fn.name != slot["name"]:  # some servers repeat the whole name in every piece
            slot["name"] += fn.name
        slot["arguments"] += fn.arguments or ""


def _from_completion(response) -> Reply:
    if isinstance(response, str | bytes):
        raise LLMError(f"the endpoint answered 200 with a body that is not JSON: {quoted(response, 80)}")
    choice = response.choices[0] if getattr(response, "choices", None) else None
    if choice is None or choice.message is None:
        raise LLMError("the endpoint's reply held no message")
    message = choice.message
    calls = [{"id": tc.id, "name": tc.function.name or "", "arguments": tc.function.arguments or ""}
             for tc in message.tool_calls or [] if tc.function is not None]
    reply = Reply(message.content or "", calls, choice.finish_reason, _extra(message, "reasoning_content",
                                                                              "reasoning"))
    if reply.finish_reason is None:
        raise LLMError("the reply carried no finish_reason (incomplete)")
    return _checked(reply)


def _checked(reply: Reply) -> Reply:
    if reply.finish_reason == "length":
        raise LLMError("the reply was cut at the model's output limit")
    if reply.finish_reason == "content_filter":
        raise Permanent("the provider's content filter stopped the reply")
    return reply
