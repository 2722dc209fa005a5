"""`northstar serve`: the one process that owns the warehouse, the conversations and the outbox for a team.

One FastAPI app on one port: the JSON API under /api/v1 (OpenAPI page at /docs), Slack's Events API at
/slack/events (when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set), /healthz, and the Gradio web UI mounted
at /. Every interface shares one `Northstar` (one checkpointer) and one DuckDB database instance (the process
holds it open; each request gets its own cursor). Why this shape: docs/api.md.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from agent.context import Context
from ui.server import api, serverfile
from ui.server.auth import Tokens
from ui.server.turns import Turns

log = logging.getLogger("northstar.server")
TURNS_ENV = "NORTHSTAR_SERVER_TURNS"
SLACK_API_ENV = "SLACK_API_URL"


def _workers(environ) -> int:
    raw = environ.get(TURNS_ENV, "").strip() or "4"
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"{TURNS_ENV} must be a whole number from 1 to 64 (turns run at once), got {raw!r}")
    return int(raw)


def create_app(ctx: Context, *, url: str | None = None, slack_client=None, environ=None,
               web: bool = True, freeze: bool = False) -> FastAPI:
    """The server's app over `ctx.home`. `url` (where it listens) goes into the home's server.json at start-up;
    `slack_client` replaces the Slack Web API client (tests); `web=False` leaves the Gradio UI out; `freeze`: the
    process is the server's own, so the warm-up freezes what start-up built (`Northstar.warm_up`)."""
    from agent.runner import Northstar
    from tools import deliver_in_background
    from tools.warehouse import connect

    environ = os.environ if environ is None else environ
    home_token = serverfile.new_token()
    tokens = Tokens.from_env(home_token, ctx.user, environ)  # a bad NORTHSTAR_API_TOKENS stops the start here
    workers = _workers(environ)
    slack_on = bool(environ.get("SLACK_BOT_TOKEN") and environ.get("SLACK_SIGNING_SECRET"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if url:
            serverfile.write(ctx.home, url, home_token)
        deliver_in_background(ctx)
        # the first question pays for loading the tools and the planner's model (seconds): pay it now, off the loop
        threading.Thread(target=app.state.ns.warm_up, kwargs={"freeze": freeze}, name="northstar-warm-up",
                         daemon=True).start()
        log.info("Northstar server for %s%s", ctx.home, f" at {url}" if url else "")
        try:
            yield
        finally:
            if url:
                serverfile.remove(ctx.home)
            app.state.turns.close()
            for other in app.state.others:
                other.close()
            app.state.ns.close()
            app.state.pin.close()

    app = FastAPI(title="Northstar", version="1", lifespan=lifespan,
                  description="A marketing decisioning assistant over your warehouse: ask, approve, run tools, "
                              "load data. Authenticate with `Authorization: Bearer <token>` (NORTHSTAR_API_TOKENS). "
                              "See docs/api.md.")
    ctx.home.mkdir(parents=True, exist_ok=True)
    app.state.pin = connect(ctx.warehouse_path)  # held for the server's life: one instance, a cursor per request
    app.state.ctx, app.state.tokens = ctx, tokens
    app.state.ns = ns = Northstar(ctx)
    app.state.turns = Turns(ns, workers)
    app.state.others = []
    api.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    if slack_on:
        _mount_slack(app, ctx, ns, slack_client, environ)
    if web:
        _mount_web(app, ctx, ns)
    return app


def _mount_slack(app: FastAPI, ctx: Context, ns, client, environ) -> None:
    """Slack's Events API, interactivity and slash commands at /slack/events, through slack-bolt's FastAPI
    adapter; Bolt's dispatch (signature check, ack, listeners) runs in a worker thread, off the event loop."""
    from slack_bolt.adapter.fastapi import SlackRequestHandler  # noqa: F401 - the adapter whose helpers we use
    from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
    from slack_sdk import WebClient
    from starlette.concurrency import run_in_threadpool

    from ui import slack_bot

    token = environ["SLACK_BOT_TOKEN"]
    if client is None and environ.get(SLACK_API_ENV):
        client = WebClient(token=token, base_url=environ[SLACK_API_ENV])
    bolt = slack_bot.build_app(ctx, token=token, signing_secret=environ["SLACK_SIGNING_SECRET"], client=client)
    app.state.others.append(bolt.northstar.ns)
    bolt.northstar.ns = ns
    app.state.slack = bolt

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request):
        body = await request.body()
        response = await run_in_threadpool(bolt.dispatch, to_bolt_request(request, body))
        return to_starlette_response(response)


def _mount_web(app: FastAPI, ctx: Context, ns) -> None:
    """The Gradio UI at / (its login page when NORTHSTAR_UI_LOGINS is set), sharing the server's agent."""
    import gradio as gr

    from ui import gradio_app

    logins = gradio_app.logins_from_env()
    blocks = gradio_app.build_app(ctx, logins=logins)
    app.state.others.append(blocks.northstar.ns)
    blocks.northstar.ns = ns
    blocks.queue(default_concurrency_limit=4)
    gr.mount_gradio_app(app, blocks, path="", theme=gradio_app.theme(), css=gradio_app.CSS, show_error=True,
                        auth=list(logins.items()) or None, ssr_mode=False, mcp_server=False, run_history=False,
                        footer_links=["api", "settings"],
                        auth_message="Sign in to Northstar. Your administrator sets your role: viewer, analyst or "
                                     "approver.")
    app.state.web = blocks


def serve(ctx: Context, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Run the server until interrupted (Ctrl-C or SIGTERM end it cleanly and remove the home's server.json)."""
    import uvicorn

    running = serverfile.read(ctx.home)
    if running and running.get("pid") != os.getpid():
        raise SystemExit(f"A Northstar server already runs for {ctx.home} at {running['url']} (pid "
                         f"{running['pid']}); the CLI uses it. Stop it first to start another.")
    from tools import load_first_use

    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    load_first_use()  # before any request: the warm-up then freezes these with the rest of start-up
    app = create_app(ctx, url=f"http://{local}:{port}", freeze=True)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("NORTHSTAR_LOG_LEVEL", "info").lower(),
                timeout_graceful_shutdown=10)

