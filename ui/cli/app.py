"""The `northstar` command line (typer): the app, its global options, the command modules and `main`.

Commands live by kind in data.py, agent.py, serve.py and dev.py; helpers they share in common.py. Every heavy
import sits inside a command so `northstar --help` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ui.cli import agent, data, dev, outbox, serve
from ui.cli.common import fail

app = typer.Typer(help="Northstar: a marketing decisioning assistant over your DuckDB warehouse.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def main_callback(state: typer.Context,
                  home: Annotated[Path | None, typer.Option(help="State folder (env NORTHSTAR_HOME).")] = None):
    """Global options."""
    from agent.context import Context

    try:
        state.obj = Context.from_env(home=home)
    except ValueError as exc:
        fail(str(exc))


def _mount() -> None:
    """Each module's commands join `northstar` itself (in this order in --help); the knowledge base is a sub-app."""
    from knowledge.cli import app as knowledge_app

    for module in (data, agent, serve, dev):
        app.add_typer(module.commands)
    app.add_typer(outbox.commands, name="outbox")
    app.add_typer(knowledge_app, name="knowledge")


_mount()


def main() -> None:
    import os

    try:
        app()
    except Exception as exc:  # never a bare traceback for users; NORTHSTAR_DEBUG=1 shows it
        if os.environ.get("NORTHSTAR_DEBUG"):
            raise
        typer.secho(f"error: internal error ({type(exc).__name__}: {exc}). Set NORTHSTAR_DEBUG=1 for the "
                    "traceback, and please report it.", err=True, fg=typer.colors.RED)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
