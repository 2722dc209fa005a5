"""Server-sent events: the wire format of a streamed turn (and its reader, for the CLI and the tests).

Each event is `event: <kind>` and one `data:` line of JSON. Kinds: `accepted` (the thread id), `queued` (another
turn of the thread runs first), the runner's own, passed through as they come (`node`, `tool_start`, `tool_end`,
`draft`, `answer_delta` / `answer_reset` while a model's answer streams, `answer`), then exactly one of `result`
(`{"result": <the ask JSON>}`) or `error` (`{"status", "message"}`).
A comment line (`: ping`) every 15 s keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

PING_S = 15.0
MEDIA_TYPE = "text/event-stream"


def encode(event: dict) -> str:
    from tools import jsonable

    kind = str(event.get("event") or "message").replace("\n", " ")
    return f"event: {kind}\ndata: {json.dumps(jsonable(event), ensure_ascii=False)}\n\n"


async def frames(events: AsyncIterator[dict]) -> AsyncIterator[str]:
    """The events as SSE frames, with a ping whenever the turn is quiet for PING_S."""
    iterator = events.__aiter__()
    pending = asyncio.ensure_future(iterator.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=PING_S)
            if not done:
                yield ": ping\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            yield encode(event)
            pending = asyncio.ensure_future(iterator.__anext__())
    finally:
        pending.cancel()


def parse(lines: Iterator[str]) -> Iterator[dict]:
    """Read SSE lines (e.g. httpx's `iter_lines()`) back into event dicts."""
    kind, data = None, []
    for line in lines:
        if not line:
            if data:
                event = json.loads("\n".join(data))
                event.setdefault("event", kind or "message")
                yield event
            kind, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        event = json.loads("\n".join(data))
        event.setdefault("event", kind or "message")
        yield event
