"""A local OpenAI-compatible chat-completions server that replays a script (for the real `openai` client).

Each request consumes the next script item:
  {"content": "text"}                      → a streamed assistant message
  {"tool_calls": [{"name": ..., "args": {...}}]} → streamed tool calls
  {"status": 429} / {"status": 503}        → an error response
  {"sleep": 3.0, ...}                      → wait before answering (client timeouts)
The fixture fails the test when script items are left unconsumed.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, script: list[dict] | None = None):
        self.script = list(script or [])
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def enqueue(self, *items: dict) -> None:
        self.script.extend(items)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append(body)
                if not fake.script:
                    self._error(500, "script exhausted")
                    return
                item = fake.script.pop(0)
                if item.get("sleep"):
                    time.sleep(item["sleep"])
                if item.get("status"):
                    self._error(item["status"], "scripted error")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in _chunks(item):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def _error(self, status, message):
                payload = json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _chunks(item: dict):
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake"}
    if "content" in item:
        text = item["content"]
        for i in range(0, len(text), 20):  # streamed in pieces
            yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text[i:i + 20]},
                                        "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        return
    for n, tc in enumerate(item.get("tool_calls", [])):
        args = json.dumps(tc.get("args", {}))
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": n, "id": f"call_fake_{n}", "type": "function",
             "function": {"name": tc["name"], "arguments": args[: len(args) // 2]}}]}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": n, "function": {"arguments": args[len(args) // 2:]}}]}, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
