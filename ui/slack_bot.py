"""The Slack bot (`northstar slack`): mentions, DMs and `/northstar` run agent turns; approvals by button.

A thin adapter over agent/runner.py. Slack threads map to agent threads (SQLite under NORTHSTAR_HOME), so a
reply in the thread is a follow-up. Slack user ids are the agent's users: their roles come from
NORTHSTAR_ROLES (e.g. `U024BE7LH:approver`), and anyone unknown is a viewer.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from datetime import datetime

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from agent.context import Context
from agent.runner import ApprovalError, Northstar, new_thread_id
from tools import deliver_in_background
from ui import slack_blocks as B

log = logging.getLogger("northstar.slack")
MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")
DDL = ("CREATE TABLE IF NOT EXISTS slack_threads (channel TEXT, thread_ts TEXT, agent_thread TEXT, created_at TEXT,"
       " PRIMARY KEY (channel, thread_ts))",
       "CREATE TABLE IF NOT EXISTS slack_events (event_id TEXT PRIMARY KEY, seen_at TEXT)")


class ThreadMap:
    """Slack (channel, thread ts) ↔ agent thread id, and the event ids already handled (Slack retries)."""

    def __init__(self, path):
        self.db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.lock = threading.Lock()
        with self.lock, self.db:
            for ddl in DDL:
                self.db.execute(ddl)

    def agent_thread(self, channel: str, thread_ts: str) -> str:
        with self.lock, self.db:
            row = self.db.execute("SELECT agent_thread FROM slack_threads WHERE channel = ? AND thread_ts = ?",
                                  [channel, thread_ts]).fetchone()
            if row:
                return row[0]
            tid = new_thread_id()
            self.db.execute("INSERT INTO slack_threads VALUES (?, ?, ?, ?)", [channel, thread_ts, tid, _now()])
            return tid

    def first_time(self, event_id: str | None) -> bool:
        if not event_id:
            return True
        with self.lock, self.db:
            cur = self.db.execute("INSERT OR IGNORE INTO slack_events VALUES (?, ?)", [event_id, _now()])
            return cur.rowcount == 1


class Bot:
    """The agent behind the app; turns and decisions run one at a time (DuckDB has one writer)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.ns = Northstar(ctx)
        self.threads = ThreadMap(ctx.home / "slack.sqlite")
        self.lock = threading.Lock()

    def turn(self, client, channel: str, thread_ts: str, user: str | None, text: str | None) -> None:
        """Answer in the Slack thread: a placeholder that shows the steps, then the blocks, then the chart."""
        question = MENTION.sub("", text or "").strip()
        if not question or question.lower() == "help":
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=B.plain(B.HELP),
                                    blocks=B.sections(B.HELP))
            return
        agent_thread = self.threads.agent_thread(channel, thread_ts)
        placeholder = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Working on it …",
                                              blocks=B.working_blocks("Working on it"))
        ts = placeholder["ts"]
        try:  # turns of one thread run one at a time in the runner; other threads run alongside
            out = self.ns.ask(question, thread_id=agent_thread, user=user, on_event=Progress(client, channel, ts))
        except (ApprovalError, ValueError) as exc:
            client.chat_update(channel=channel, ts=ts, text=str(exc), blocks=B.sections(B.mrkdwn(str(exc))))
            return
        except Exception as exc:  # say so in the thread; the details go to the log
            log.exception("turn failed")
            msg = f"Something went wrong ({type(exc).__name__}); nothing was changed."
            client.chat_update(channel=channel, ts=ts, text=msg, blocks=B.sections(msg))
            return
        client.chat_update(channel=channel, ts=ts, text=B.plain(out.get("answer") or ""),
                           blocks=B.answer_blocks(out))
        self.upload_chart(client, channel, thread_ts, out)

    def upload_chart(self, client, channel: str, thread_ts: str, out: dict) -> None:
        chart = B.chart_png(out)
        if chart is None:
            return
        png, title = chart
        try:
            client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=png, filename="chart.png",
                                   title=title, alt_txt=title)
        except SlackApiError as exc:  # e.g. the files:write scope is missing: the answer stands without it
            log.warning("chart upload failed: %s", exc.response.get("error"))

    def decide(self, client, body: dict, action: dict, respond) -> None:
        """An Approve / Reject click: the agent checks the clicking user's role; the message shows the outcome."""
        user = body["user"]["id"]
        decision = "approve" if action["action_id"] == B.APPROVE else "reject"
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        msg_ts = message.get("ts") or container.get("message_ts")
        thread_ts = message.get("thread_ts") or msg_ts
        try:  # the button carries the draft's request id (a thread id, from older messages, decides its oldest)
            out = self.ns.decide(action["value"], decision, user=user)
        except ApprovalError as exc:
            text = f":raised_hand: {exc}"
            if container.get("is_ephemeral") or not channel:
                respond(text=text, response_type="ephemeral", replace_original=False)
            else:
                client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
            return
        verb = "Approved" if decision == "approve" else "Rejected"
        blocks = B.outcome_blocks(out, prefix=f"*{verb} by <@{user}>.* ")
        if container.get("is_ephemeral") or not channel:
            respond(text=B.plain(out.get("answer") or ""), blocks=blocks, replace_original=True)
            return
        client.chat_update(channel=channel, ts=msg_ts, text=f"{verb} by <@{user}>",
                           blocks=B.decided_blocks(message.get("blocks"), decision, user))
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=B.plain(out.get("answer") or ""),
                                blocks=blocks)

    def pending_blocks(self, user: str) -> list[dict]:
        """What waits for approval, as `user` may see it: every request for an approver, their own for others."""
        rows = self.ns.inbox(user=user)
        if not rows:
            return B.sections("Nothing is waiting for approval.")
        blocks = []
        for p in rows[:10]:
            blocks += B.approval_blocks(p, p["id"])
        return blocks


class Progress:
    """on_event callback: edits the placeholder with the running step, then the answer as it streams (grounded
    sentences only), at most about once a second (Slack's rate limits); the final answer replaces it."""

    def __init__(self, client, channel: str, ts: str, every_s: float = 1.0):
        self.client, self.channel, self.ts, self.every_s, self.last = client, channel, ts, every_s, 0.0
        self.status, self.answer = "Working on it", ""

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "tool_start":
            self.status = f"Running `{event['name']}`"
        elif kind == "answer_delta":
            self.answer += event.get("text", "")
        elif kind == "answer_reset":
            self.answer = ""
        else:
            return
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        blocks = B.text_blocks(B.mrkdwn(self.answer), B.MAX_BLOCKS - 1) if self.answer else []  # within limits
        try:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=B.plain(self.answer) or self.status,
                                    blocks=blocks + B.working_blocks(self.status if not self.answer else "Writing"))
        except SlackApiError as exc:  # progress is a courtesy; the answer still comes
            log.debug("progress update failed: %s", exc)


def build_app(ctx: Context, *, token: str | None = None, signing_secret: str | None = None,
              client=None) -> App:
    """The Bolt app (token and signing secret default to SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET)."""
    bot = Bot(ctx)
    app = App(token=token or os.environ.get("SLACK_BOT_TOKEN"), client=client, name="northstar",
              signing_secret=signing_secret or os.environ.get("SLACK_SIGNING_SECRET", ""))

    @app.event("app_mention")
    def on_mention(event, body, client):
        if bot.threads.first_time(body.get("event_id")):
            bot.turn(client, event["channel"], event.get("thread_ts") or event["ts"], event.get("user"),
                     event.get("text"))

    @app.event("message")
    def on_message(event, body, client):
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return  # channel chatter and our own posts; mentions arrive as app_mention
        if bot.threads.first_time(body.get("event_id")):
            bot.turn(client, event["channel"], event.get("thread_ts") or event["ts"], event.get("user"),
                     event.get("text"))

    @app.command("/northstar")
    def on_command(ack, command, client, respond):
        text = (command.get("text") or "").strip()
        if text.lower() in ("", "help"):
            ack(text=B.plain(B.HELP, 3000), blocks=B.sections(B.HELP))
            return
        if text.lower() in ("pending", "approvals"):
            ack()
            respond(text="Actions waiting for approval", blocks=bot.pending_blocks(command["user_id"]),
                    response_type="ephemeral")
            return
        ack(text=f"Asking Northstar: {text}")
        channel, user = command["channel_id"], command["user_id"]
        try:
            root = client.chat_postMessage(channel=channel, text=f"<@{user}> asked: {text}")
        except SlackApiError:  # the bot is not in this channel: answer privately through the response URL
            out = bot.ns.ask(text, user=user)
            respond(text=B.plain(out.get("answer") or ""), blocks=B.answer_blocks(out), response_type="ephemeral")
            return
        bot.turn(client, channel, root["ts"], user, text)

    @app.action(re.compile(f"^({B.APPROVE}|{B.REJECT})$"))
    def on_decision(ack, body, action, client, respond):
        ack()
        bot.decide(client, body, action, respond)

    app.northstar = bot  # the agent behind the app, for tests and embedding
    return app


def http_app(app: App):
    """An ASGI app serving Slack's Events API, interactivity and slash commands at /slack/events."""
    from slack_bolt.adapter.starlette import SlackRequestHandler
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    handler = SlackRequestHandler(app)

    async def events(request):
        return await handler.handle(request)

    async def health(_request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", health)])


def run_socket_mode(ctx: Context) -> None:
    """Connect out to Slack over Socket Mode (SLACK_BOT_TOKEN + SLACK_APP_TOKEN); no public URL needed."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    bot_token, app_token = os.environ.get("SLACK_BOT_TOKEN"), os.environ.get("SLACK_APP_TOKEN")
    if not bot_token or not app_token:
        raise SystemExit("Socket Mode needs SLACK_BOT_TOKEN (xoxb-…) and SLACK_APP_TOKEN (xapp-…); "
                         "see docs/interfaces.md.")
    deliver_in_background(ctx)
    SocketModeHandler(build_app(ctx, token=bot_token), app_token).start()


def run_http(ctx: Context, port: int = 3000) -> None:
    """Serve the Events API on NORTHSTAR_SLACK_HOST (default 127.0.0.1, put a TLS proxy in front) and `port`."""
    import uvicorn

    if not os.environ.get("SLACK_BOT_TOKEN") or not os.environ.get("SLACK_SIGNING_SECRET"):
        raise SystemExit("HTTP mode needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET; see docs/interfaces.md.")
    host = os.environ.get("NORTHSTAR_SLACK_HOST", "127.0.0.1")
    deliver_in_background(ctx)
    uvicorn.run(http_app(build_app(ctx)), host=host, port=port, log_level="info")


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
