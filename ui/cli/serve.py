"""Long-running front ends started from the command line: the team server, the web UI alone, the Slack bot."""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli.common import ctx_of, fail

commands = typer.Typer()


@commands.command()
def serve(state: typer.Context, host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port.")] = 7860):
    """Serve a team on one port: the web UI at /, the JSON API at /api/v1 (docs at /docs), Slack at /slack/events.

    One process owns the warehouse, the conversations and the outbox (docs/api.md).

    While it runs, `ask`, `chat`, `approvals`, `approve`, `tool`, `load` and `tables` go through it."""
    from tools.warehouse import WarehouseError
    from ui.server.app import serve as run

    try:
        run(ctx_of(state), host=host, port=port)
    except WarehouseError as exc:  # another process holds the warehouse
        fail(str(exc))
    except ValueError as exc:  # a bad setting (NORTHSTAR_API_TOKENS, NORTHSTAR_SERVER_TURNS …)
        fail(str(exc), 2)


@commands.command()
def ui(state: typer.Context, host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="Port.")] = 7860):
    """Start the web UI alone (Gradio); `northstar serve` serves it with the API and Slack for a team."""
    from ui.gradio_app import launch

    launch(ctx_of(state), host=host, port=port)


@commands.command()
def slack(state: typer.Context,
          http: Annotated[bool, typer.Option("--http", help="Events API over HTTP instead of Socket Mode.")] = False,
          port: Annotated[int, typer.Option(help="Port for --http.")] = 3000):
    """Run the Slack bot (Socket Mode with SLACK_BOT_TOKEN + SLACK_APP_TOKEN, or --http with SLACK_SIGNING_SECRET)."""
    from ui import slack_bot

    if http:
        slack_bot.run_http(ctx_of(state), port)
    else:
        slack_bot.run_socket_mode(ctx_of(state))
