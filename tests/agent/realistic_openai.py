r"""A local OpenAI-compatible server that behaves like real chat models and servers at their worst.

Driven through the real `openai` client over real sockets, streaming or not (it answers in the mode the request
asks for). Each request consumes the next scripted reply; a reply left unconsumed, or a request with no reply
left, fails the test (the `realistic_openai` fixture checks both).

    fake.enqueue(calls(call("campaign_report", {"start": "2026-09-01"}), index0=True),
                 answer("Spend was about 104k.", think="let me add up..."))

Reply builders (plain dicts, so eval datasets can write them in YAML):
  answer(text, think=, reasoning=)        content, with <think> text and/or a `reasoning_content` stream
  calls(call(...), ..., index0=, text_form=)  tool calls; every call at index 0 with distinct ids (vLLM, some
                                          proxies), or written as `<tool_call>{…}</tool_call>` text (Hermes, Qwen)
  call(name, args, trailing="")           one call; `raw=` sends arguments verbatim (invalid JSON)
  error(status, retry_after=, code=)      429 with Retry-After, 401, 400 context_length_exceeded, 5xx …
  broken(kind)                            "cut" (no [DONE], no finish_reason, mid-word), "no_finish_reason",
                                          "html" (a 200 from a proxy's error page), "truncated_json", "empty"
Options on any reply: delay= (seconds before each chunk: a slow stream), stall= (one long silence mid-stream),
sleep= (before answering at all).

An answer's text may be a template over the tool results in the request, so the fake paraphrases what the
model really received: `{{-1.metrics.spend|k}}` (the last result's spend as "104K"), `{{0.data[channel=email].roas
|.1f}}`, `{{-1.data[model=markov,channel=search].share|pct}}`, `{{-1.summary|re:Best ROAS: \w+ \(([\d.]+)}}`;
styles abs, k, k1, M, M2, pct, pct0, pp, int, re:PATTERN (its first group), or any format spec, chained with |.
Text may also be a function of the request. `reply_from(spec)` reads the YAML form of a reply
({answer: …}, {calls: [{name, args}], index0: true}, {error: 429, retry_after: 1}, {broken: cut},
{context_exceeded: true}).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTEXT_MESSAGE = ("This model's maximum context length is {limit} tokens. However, your messages resulted in "
                   "{used} tokens. Please reduce the length of the messages.")


def answer(text: str, *, think: str | None = None, reasoning: str | None = None, **options) -> dict:
    return {"kind": "answer", "text": text, "think": think, "reasoning": reasoning, **options}


def call(name: str, args: dict | None = None, *, trailing: str = "", raw: str | None = None) -> dict:
    return {"name": name, "args": args or {}, "trailing": trailing, "raw": raw}


def calls(*items: dict, index0: bool = False, text_form: bool = False, content: str = "", **options) -> dict:
    return {"kind": "calls", "calls": list(items), "index0": index0, "text_form": text_form, "content": content,
            **options}


def error(status: int, *, retry_after: float | str | None = None, code: str | None = None, message: str = "",
          **options) -> dict:
    return {"kind": "error", "status": status, "retry_after": retry_after, "code": code, "message": message,
            **options}


def context_exceeded(limit: int = 8192, used: int = 9500) -> dict:
    return error(400, code="context_length_exceeded", message=CONTEXT_MESSAGE.format(limit=limit, used=used))


def broken(kind: str, text: str = "Spend in September was 104,132 and the best channel was ema", **options) -> dict:
    assert kind in ("cut", "no_finish_reason", "html", "truncated_json", "empty"), kind
    return {"kind": "broken", "broken": kind, "text": text, **options}


class RealisticOpenAI:
    """The server; `requests` holds every request body received (parsed JSON), in order."""

    def __init__(self, script: list[dict] | None = None, model: str = "realistic-1"):
        self.script: list[dict] = list(script or [])
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.unexpected: list[dict] = []
        self.served: list[dict] = []
        self.answers: list[str] = []
        """Every answer text as served (templates filled), in order."""
        self.model = model
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> RealisticOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def enqueue(self, *replies: dict) -> None:
        with self.lock:
            self.script.extend(replies)

    def next_reply(self, body: dict) -> dict | None:
        with self.lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            if not self.script:
                self.unexpected.append(body)
                return None
            reply = self.script.pop(0)
            self.served.append(reply)
            return reply

    def reset(self) -> None:
        """Forget the script and everything received (one server for many eval cases)."""
        with self.lock:
            for log in (self.script, self.requests, self.times, self.unexpected, self.served, self.answers):
                log.clear()

    def check(self) -> None:
        """Fail when a scripted reply was never asked for, or a request came with nothing left to answer it."""
        assert not self.script, f"unconsumed scripted replies: {self.script}"
        assert not self.unexpected, f"requests after the script ran out, or templates that failed: {self.unexpected}"


def _handler(fake: RealisticOpenAI):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            reply = fake.next_reply(body)
            try:
                if reply is None:
                    return self._json(500, {"error": {"message": "script exhausted", "type": "server_error"}})
                if reply.get("sleep"):
                    time.sleep(reply["sleep"])
                if "text" in reply:
                    try:
                        reply = {**reply, "text": render(reply["text"], body)}
                    except Exception as exc:  # the template asked for what the model was not sent: say so
                        fake.unexpected.append({"template": reply["text"], "error": repr(exc)})
                        return self._json(500, {"error": {"message": f"template: {exc!r}", "type": "fake"}})
                    fake.answers.append(reply["text"])
                self._serve(reply, body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts): that is the test
                pass

        def _serve(self, reply: dict, body: dict) -> None:
            kind = reply["kind"]
            if kind == "error":
                return self._error(reply)
            if kind == "broken" and reply["broken"] in ("html", "truncated_json", "empty"):
                return self._garbage(reply["broken"], reply["text"])
            chunks = list(_chunks(reply, fake.model))
            if body.get("stream"):
                return self._stream(reply, chunks, include_usage=(body.get("stream_options") or {}).get(
                    "include_usage", False))
            if kind == "broken":  # a cut or unfinished non-streamed reply: the body ends early
                message = _message(chunks)
                payload = json.dumps(_completion(fake.model, message, None))
                return self._raw(200, "application/json", payload[: len(payload) * 2 // 3])
            message, finish = _message(chunks), chunks[-1]["choices"][0]["finish_reason"]
            return self._json(200, _completion(fake.model, message, finish))

        def _stream(self, reply: dict, chunks: list[dict], include_usage: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            cut = reply.get("broken") == "cut"
            if cut or reply.get("broken") == "no_finish_reason":
                chunks = [c for c in chunks if not c["choices"][0]["finish_reason"]]
            if cut:
                chunks = chunks[: max(1, len(chunks) * 2 // 3)]
            for n, chunk in enumerate(chunks):
                if reply.get("delay"):
                    time.sleep(reply["delay"])
                if reply.get("stall") and n == len(chunks) // 2:
                    time.sleep(reply["stall"])
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            if cut:  # half an event, then the connection drops: no [DONE]
                self.wfile.write(b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content": "mi')
                self.wfile.flush()
                return
            if include_usage:
                usage = {"id": "chatcmpl-real", "object": "chat.completion.chunk", "created": 0,
                         "model": fake.model, "choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0,
                                                                      "total_tokens": 0}}
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _error(self, reply: dict) -> None:
            status = reply["status"]
            kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                     429: "rate_limit_exceeded"}
            message = reply["message"] or {401: "Incorrect API key provided: sk-test.", 429: "Rate limit reached",
                                           400: "Invalid 'messages[1].tool_calls[0].id': string too long."}.get(
                                               status, "upstream error")
            payload = {"error": {"message": message, "type": kinds.get(status, "server_error"), "param": None,
                                 "code": reply["code"]}}
            headers = {"Retry-After": str(reply["retry_after"])} if reply["retry_after"] is not None else {}
            self._json(status, payload, headers)

        def _garbage(self, kind: str, text: str) -> None:
            if kind == "html":
                return self._raw(200, "text/html", "<html><head><title>502 Bad Gateway</title></head><body>"
                                                   "<h1>Bad Gateway</h1><p>nginx</p></body></html>")
            if kind == "empty":
                return self._raw(200, "application/json", "")
            payload = json.dumps(_completion(fake.model, {"role": "assistant", "content": text}, "stop"))
            return self._raw(200, "application/json", payload[: len(payload) // 2])

        def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
            self._raw(status, "application/json", json.dumps(payload), headers)

        def _raw(self, status: int, content_type: str, text: str, headers: dict | None = None) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


# ---- what a reply looks like on the wire ----------------------------------------------------------------------

def _chunk(model: str, delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-real", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _pieces(text: str, size: int = 17):
    for i in range(0, len(text), size):
        yield text[i:i + size]


def _chunks(reply: dict, model: str):
    yield _chunk(model, {"role": "assistant", "content": ""})
    if reply["kind"] in ("answer", "broken"):
        for piece in _pieces(reply.get("reasoning") or ""):
            yield _chunk(model, {"reasoning_content": piece})
        text = (f"<think>{reply['think']}</think>\n\n" if reply.get("think") else "") + reply["text"]
        for piece in _pieces(text):
            yield _chunk(model, {"content": piece})
        yield _chunk(model, {}, "stop")
        return
    if reply.get("content"):
        for piece in _pieces(reply["content"]):
            yield _chunk(model, {"content": piece})
    if reply["text_form"]:
        text = "".join(f"<tool_call>\n{json.dumps({'name': c['name'], 'arguments': c['args']})}\n</tool_call>\n"
                       for c in reply["calls"])
        for piece in _pieces(text):
            yield _chunk(model, {"content": piece})
        yield _chunk(model, {}, "stop")  # text-form calls come with finish_reason "stop", like real servers
        return
    for n, c in enumerate(reply["calls"]):
        args = c["raw"] if c["raw"] is not None else json.dumps(c["args"]) + c["trailing"]
        index = 0 if reply["index0"] else n
        half = len(args) // 2
        yield _chunk(model, {"tool_calls": [{"index": index, "id": f"call_{n}_{abs(hash(c['name'])) % 10**6}",
                                             "type": "function", "function": {"name": c["name"], "arguments": ""}}]})
        yield _chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": args[:half]}}]})
        yield _chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]})
    yield _chunk(model, {}, "tool_calls")


def _message(chunks: list[dict]) -> dict:
    """The non-streamed message the chunks add up to (what a server returns with stream=false)."""
    content, reasoning, tool_calls = [], [], []
    for chunk in chunks:
        delta = chunk["choices"][0]["delta"]
        content.append(delta.get("content") or "")
        reasoning.append(delta.get("reasoning_content") or "")
        for tc in delta.get("tool_calls") or []:
            if tc.get("id"):
                tool_calls.append({"id": tc["id"], "type": "function",
                                   "function": {"name": tc["function"]["name"], "arguments": ""}})
            else:
                tool_calls[-1]["function"]["arguments"] += tc["function"]["arguments"]
    message = {"role": "assistant", "content": "".join(content) or None}
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _completion(model: str, message: dict, finish: str | None) -> dict:
    return {"id": "chatcmpl-real", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


# ---- answers written from what the model received ---------------------------------------------------------------

TEMPLATE = re.compile(r"\{\{\s*(?P<path>[^|}]+?)\s*(?:\|\s*(?P<style>(?:[^}]|\}(?!\}))+?)\s*)?\}\}")
STYLES = {"abs": abs, "cents": lambda v: f"{100 * v:.0f} cents", "k": lambda v: f"{v / 1e3:,.0f}K",
          "k1": lambda v: f"{v / 1e3:,.1f}K", "M": lambda v: f"{v / 1e6:.2f} million", "M2": lambda v: f"${v / 1e6:.2f}M",
          "pct": lambda v: f"{100 * v:.1f} %", "pct0": lambda v: f"{100 * v:.0f}%",
          "pp": lambda v: f"{100 * v:.2f} percentage points", "int": lambda v: f"{v:,.0f}"}


def tool_results(body: dict) -> list[dict]:
    """The tool results a request carries, in order (they must be valid JSON: a cut result fails the test)."""
    out = []
    for m in body.get("messages") or []:
        content = m.get("content") or ""
        if m.get("role") == "tool" and not content.startswith("ERROR"):
            out.append(json.loads(content[content.index("{"):]))
    return out


def render(text, body: dict) -> str:
    if callable(text):
        return text(body)
    if "{{" not in str(text):
        return text
    results = tool_results(body)

    def value(m: re.Match) -> str:
        parts = re.findall(r"\[[^\]]+\]|[^.\[\]]+", m.group("path"))
        node = results[int(parts[0])]
        for part in parts[1:]:
            if part.startswith("["):
                want = dict(cond.split("=", 1) for cond in part[1:-1].split(","))
                node = next(row for row in node if all(str(row.get(k)) == v for k, v in want.items()))
            else:
                node = node[int(part)] if isinstance(node, list) else node[part]
        for style in (m.group("style") or "").split("|") if m.group("style") else []:
            if style.startswith("re:"):
                node = re.search(style[3:], str(node)).group(1)
            else:
                node = STYLES[style](node) if style in STYLES else format(node, style)
        return str(node)

    return TEMPLATE.sub(value, text)


def reply_from(spec: dict) -> dict:
    """A reply from its YAML form (eval datasets): {answer: text}, {calls: [...]}, {error: 429}, {broken: cut} …"""
    spec = dict(spec)
    if "answer" in spec:
        return answer(spec.pop("answer"), **spec)
    if "calls" in spec:
        items = [call(c["name"], c.get("args"), trailing=c.get("trailing", ""), raw=c.get("raw"))
                 for c in spec.pop("calls")]
        return calls(*items, **spec)
    if "error" in spec:
        return error(spec.pop("error"), **spec)
    if spec.pop("context_exceeded", False):
        return context_exceeded(**spec)
    if "broken" in spec:
        kind = spec.pop("broken")
        return broken(kind, **spec)
    raise ValueError(f"not a reply: {spec}")
