"""Long-running front ends started from the command line: the web UI (Gradio) and the Slack bot."""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli.common import ctx_of

commands = typer.Typer()


@commands.command()
def ui(state: typer.Context, host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="Port.")] = 7860):
    """Start the web UI (Gradio)."""
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
