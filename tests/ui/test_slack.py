"""The Slack bot as Slack drives it: signed HTTP requests into the real slack_bolt App (served by
ui.slack_bot.http_app on a free 127.0.0.1 port), replies going through the real slack_sdk WebClient to a
local fake of the Slack Web API."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from agent.context import Context
from tests.ui.test_gradio_app import free_port

SECRET = "test-signing-secret"
ROLES = {"local": "approver", "UANA": "approver", "UBEN": "analyst", "UVIC": "viewer"}
CHANNEL = "C0MARKETING"


class FakeSlack:
    """The Slack Web API methods the bot uses, recorded; plus the file upload URL and response URLs."""

    def __init__(self):
        self.calls: list[dict] = []
        self.uploads: list[bytes] = []
        self.lock = threading.Lock()
        self.seq = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/"):
                    fake.uploads.append(raw)
                    return self._send(200, b"OK", "text/plain")
                if self.path.startswith("/response/"):
                    fake._record("response_url", json.loads(raw or b"{}"))
                    return self._send(200, b"ok", "text/plain")
                method = self.path.removeprefix("/api/")
                args = fake._parse(raw, self.headers.get("Content-Type", ""))
                body = json.dumps(fake._reply(method, args)).encode()
                self._send(200, body, "application/json")

            def _send(self, status, body, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _parse(raw: bytes, ctype: str) -> dict:
        if "json" in ctype:
            return json.loads(raw or b"{}")
        args = {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        for key in ("blocks", "files"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    def _record(self, method: str, args: dict) -> str:
        with self.lock:
            self.seq += 1
            ts = f"1760000000.{self.seq:06d}"
            self.calls.append({"method": method, "ts": ts, **args})
            return ts

    def _reply(self, method: str, args: dict) -> dict:
        ts = self._record(method, args)
        if method == "auth.test":
            return {"ok": True, "team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT", "user": "northstar"}
        if method == "files.getUploadURLExternal":
            return {"ok": True, "upload_url": f"{self.url}/upload/F1", "file_id": "F1"}
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": "F1", "title": args.get("files", [{}])[0].get("title")}]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        return {"ok": True, "channel": args.get("channel"), "ts": ts}

    def find(self, method: str, **match) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["method"] == method
                    and all(c.get(k) == v for k, v in match.items())]

    def wait(self, method: str, predicate=lambda c: True, timeout: float = 90, **match) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [c for c in self.find(method, **match) if predicate(c)]
            if hits:
                return hits[-1]
            time.sleep(0.1)
        raise AssertionError(f"no {method} {match} within {timeout} s; calls: {[c['method'] for c in self.calls]}")


@pytest.fixture
def slack(demo_copy):
    """A fake Slack, the bot's Bolt app behind signature checks, and its HTTP endpoint on a free port."""
    import uvicorn
    from slack_sdk import WebClient

    from ui.slack_bot import build_app, http_app

    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.url + "/api/")
        app = build_app(Context(home=demo_copy, roles=ROLES), token="xoxb-test", signing_secret=SECRET,
                        client=client)
        server = uvicorn.Server(uvicorn.Config(http_app(app), host="127.0.0.1", port=free_port(), log_level="warning"))
        runner = threading.Thread(target=server.run, daemon=True)
        runner.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the Slack HTTP endpoint did not start"
        try:
            yield fake, app, f"http://127.0.0.1:{server.config.port}/slack/events"
        finally:
            server.should_exit = True
            runner.join(timeout=15)
            app.northstar.ns.close()


def post(url: str, body: str, content_type: str, secret: str = SECRET, **headers) -> httpx.Response:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return httpx.post(url, content=body.encode(), timeout=30, headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, **headers})


def mention(url: str, user: str, text: str, ts: str, thread_ts: str | None = None, event_id: str = "Ev1", **hdr):
    event = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "ts": ts, "channel": CHANNEL,
             "event_ts": ts, **({"thread_ts": thread_ts} if thread_ts else {})}
    body = {"token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id,
            "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}]}
    return post(url, json.dumps(body), "application/json", **hdr)


def click(url: str, fake: FakeSlack, user: str, action_id: str, message: dict) -> httpx.Response:
    button = next(e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == action_id)
    payload = {"type": "block_actions", "user": {"id": user}, "team": {"id": "T1"}, "api_app_id": "A1",
               "token": "legacy", "trigger_id": "1.2.3", "response_url": f"{fake.url}/response/1",
               "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL,
                             "is_ephemeral": False},
               "channel": {"id": CHANNEL}, "message": message,
               "actions": [{"action_id": action_id, "block_id": "northstar_approval", "type": "button",
                            "value": button["value"], "action_ts": str(time.time())}]}
    return post(url, urllib.parse.urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def slash(url: str, fake: FakeSlack, user: str, text: str) -> httpx.Response:
    form = {"token": "legacy", "team_id": "T1", "channel_id": CHANNEL, "user_id": user, "command": "/northstar",
            "text": text, "response_url": f"{fake.url}/response/2", "trigger_id": "1.2.4", "api_app_id": "A1"}
    return post(url, urllib.parse.urlencode(form), "application/x-www-form-urlencoded")


def outbox(home) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT action, payload, approved_by FROM outbox").fetchall()
    finally:
        con.close()


def has_actions(call: dict) -> bool:
    return any(b.get("type") == "actions" for b in call.get("blocks") or [])


def test_mention_gets_threaded_blocks_and_chart_and_forgery_is_rejected(slack):
    fake, app, url = slack
    forged = post(url, json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}),
                  "application/json", secret="not-the-secret")
    assert forged.status_code == 401

    root = "1750000000.000100"
    resp = mention(url, "UVIC", "How did our channels perform last month?", root)
    assert resp.status_code == 200
    placeholder = fake.wait("chat.postMessage", thread_ts=root, channel=CHANNEL)
    answer = fake.wait("chat.update", lambda c: any("ROAS" in json.dumps(b) for b in c.get("blocks") or []),
                       ts=placeholder["ts"])
    kinds = [b["type"] for b in answer["blocks"]]
    assert kinds[0] == "section" and "fields" in answer["blocks"][1] and kinds[-1] == "context"
    assert "Details" in answer["blocks"][-1]["elements"][0]["text"]
    assert any(ch.isdigit() for ch in answer["blocks"][0]["text"]["text"])
    done = fake.wait("files.completeUploadExternal", thread_ts=root, channel_id=CHANNEL)
    assert done["files"][0]["title"].startswith("ROAS by channel")
    assert fake.uploads and fake.uploads[-1].startswith(b"\x89PNG"), "the chart is uploaded as a PNG"

    # a Slack retry of the same event is not answered twice; a reply in the thread is a follow-up
    mention(url, "UVIC", "How did our channels perform last month?", root, event_id="Ev1",
            **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    mention(url, "UVIC", "And the month before?", "1750000000.000200", thread_ts=root, event_id="Ev2")
    fake.wait("chat.update", lambda c: "Details" in json.dumps(c.get("blocks")) and c["ts"] != placeholder["ts"])
    assert len(fake.find("chat.postMessage", thread_ts=root)) == 2
    agent_threads = app.northstar.ns.threads()
    assert len(agent_threads) == 1
    assert len([m for m in app.northstar.ns.history(agent_threads[0]["thread_id"]) if m["role"] == "user"]) == 2

    # /northstar asks in the channel: a root message, then the answer in its thread
    resp = slash(url, fake, "UVIC", "Which channel had the best ROAS last month?")
    assert resp.status_code == 200 and "Asking Northstar" in resp.text
    asked = fake.wait("chat.postMessage", lambda c: "asked:" in c.get("text", ""), channel=CHANNEL)
    reply = fake.wait("chat.postMessage", thread_ts=asked["ts"])
    fake.wait("chat.update", lambda c: "Details" in json.dumps(c.get("blocks")), ts=reply["ts"])


def test_approval_buttons_check_the_clicking_users_role(slack, demo_copy):
    from tests.agent.conftest import seed_churn_run

    fake, app, url = slack
    seed_churn_run(demo_copy)
    root = "1750000001.000100"
    mention(url, "UBEN", "Save the high risk churners as an audience called 'Slack Winback'", root)
    placeholder = fake.wait("chat.postMessage", thread_ts=root)
    request = fake.wait("chat.update", has_actions, ts=placeholder["ts"])
    message = {"ts": placeholder["ts"], "thread_ts": root, "blocks": request["blocks"]}
    assert "Waiting for approval" in json.dumps(request["blocks"])
    assert slash(url, fake, "UANA", "pending").status_code == 200
    listed = fake.wait("response_url", lambda c: "Slack Winback" in json.dumps(c.get("blocks")))
    assert any(b["type"] == "actions" for b in listed["blocks"])

    assert click(url, fake, "UVIC", "northstar_approve", message).status_code == 200
    refusal = fake.wait("chat.postEphemeral", user="UVIC")
    assert "viewer" in refusal["text"] and "only an approver" in refusal["text"]
    assert outbox(demo_copy) == []

    assert click(url, fake, "UANA", "northstar_approve", message).status_code == 200
    updated = fake.wait("chat.update", lambda c: not has_actions(c) and "Approved by" in json.dumps(c["blocks"]),
                        ts=placeholder["ts"])
    assert "<@UANA>" in json.dumps(updated["blocks"])
    outcome = fake.wait("chat.postMessage", lambda c: "Created audience" in json.dumps(c.get("blocks")),
                        thread_ts=root)
    assert "Approved by <@UANA>" in outcome["blocks"][0]["text"]["text"]

    # a second click (double click, or Slack redelivering) does not run the action again
    assert click(url, fake, "UANA", "northstar_approve", message).status_code == 200
    again = fake.wait("chat.postEphemeral", user="UANA")
    assert "Nothing is waiting" in again["text"]
    rows = outbox(demo_copy)
    assert len(rows) == 1 and rows[0][0] == "create_audience" and rows[0][2] == "UANA", rows
    assert "Slack Winback" in rows[0][1]


def test_pending_lists_only_what_the_asking_user_may_see(demo_copy):
    """`/northstar pending`: an approver sees every request; a viewer sees none of another user's requests."""
    from tests.agent.conftest import seed_churn_run
    from ui.slack_bot import Bot

    seed_churn_run(demo_copy)
    bot = Bot(Context(home=demo_copy, roles=ROLES))
    out = bot.ns.ask("Create an audience called 'Winback Slack' from the high-risk churners", user="UBEN")
    assert out["pending_approval"], out["answer"]
    shown = lambda user: json.dumps(bot.pending_blocks(user))  # noqa: E731
    assert "Winback Slack" in shown("UANA") and "Winback Slack" in shown("UBEN")
    assert "Winback Slack" not in shown("UVIC") and "Nothing is waiting" in shown("UVIC")


def test_progress_edits_one_message_at_most_once_a_second_with_the_streamed_answer():
    """Steps and grounded sentences arrive faster than Slack allows edits: one edit a second at most, showing the
    running step, then the answer so far; a withdrawn stream (answer_reset) is not shown."""
    from ui.slack_bot import Progress

    class Client:
        def __init__(self):
            self.updates: list[tuple[float, dict]] = []

        def chat_update(self, **kw):
            self.updates.append((time.monotonic(), kw))

    client = Client()
    progress = Progress(client, "C1", "1.0", every_s=0.3)
    progress({"event": "tool_start", "name": "campaign_report", "args": {}})
    progress({"event": "answer_delta", "text": "Draft that turns into a call. "})
    progress({"event": "answer_reset"})
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        progress({"event": "answer_delta", "text": "Spend was 202K. "})
        time.sleep(0.02)
    times = [t for t, _ in client.updates]
    assert 3 <= len(times) <= 5, len(times)  # ~50 events in 1 s, an edit every 0.3 s
    assert all(b - a >= 0.29 for a, b in zip(times, times[1:], strict=False))
    first, last = client.updates[0][1], client.updates[-1][1]
    assert "campaign_report" in str(first["blocks"]) and last["channel"] == "C1" and last["ts"] == "1.0"
    assert last["text"].startswith("Spend was 202K.") and "turns into a call" not in str(last["blocks"])
