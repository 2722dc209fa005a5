"""What every `northstar` command shares: the run's Context, failing with an exit code, JSON out, the warehouse.

Kept apart from app.py so the command modules import it and app.py imports them, with no circle between.
"""

from __future__ import annotations

import json
import sys

import typer


def ctx_of(state: typer.Context):
    """The agent.context.Context that the `northstar` callback built from --home and the environment."""
    return state.obj


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def print_json(obj) -> None:
    """`obj` as indented JSON. Plain JSON (what a server sent) is written as it is, so a command answered by the
    server does not import the tool registry; dates, Decimals, numpy numbers and NaN go through `tools.jsonable`."""
    try:
        text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        from tools import jsonable

        text = json.dumps(jsonable(obj), indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")


def open_warehouse(ctx, *, read_only: bool = False):
    from tools.warehouse import WarehouseError, connect

    try:
        return connect(ctx.warehouse_path, read_only=read_only)
    except WarehouseError as exc:
        fail(str(exc))
