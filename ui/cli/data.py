"""The warehouse and its tools from the command line: init, load, tables, tools, tool."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ui.cli.common import ctx_of, fail, open_warehouse, print_json

commands = typer.Typer()


@commands.command()
def init(state: typer.Context,
         demo: Annotated[bool, typer.Option("--demo", help="Generate the demo warehouse.")] = False,
         customers: Annotated[int, typer.Option(help="Demo customers.")] = 50_000,
         seed: Annotated[int, typer.Option(help="Random seed (same seed, same warehouse).")] = 7):
    """Create (and migrate) the warehouse; with --demo, fill it with the generated demo world."""
    import time

    from rich.console import Console

    from tools.warehouse import migrate

    ctx = ctx_of(state)
    con = open_warehouse(ctx)
    version = migrate(con)
    console = Console(stderr=True)
    if not demo:
        console.print(f"Warehouse ready at {ctx.warehouse_path} (schema version {version}).")
        return
    from tools.warehouse import generate

    t0 = time.perf_counter()
    try:
        with console.status(f"Generating the demo world: {customers:,} customers …"):
            counts = generate(con, customers=customers, seed=seed)
    except ValueError as exc:
        fail(str(exc), 2)
    con.execute("CHECKPOINT")
    took = time.perf_counter() - t0
    console.print(f"Demo warehouse at {ctx.warehouse_path}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                  + f" ({took:.1f} s). Planted truths: docs/demo-data.md.")


@commands.command()
def load(state: typer.Context, table: str, file: Path,
         mode: Annotated[str, typer.Option(help="append or replace.")] = "append",
         header: Annotated[bool, typer.Option(help="First line holds column names.")] = True,
         columns: Annotated[str | None, typer.Option(help="Comma-separated column names to use.")] = None,
         date_format: Annotated[str | None, typer.Option(help="strptime format of dates, e.g. %Y%m%d.")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Import a CSV / Parquet / JSON file into TABLE (canonical tables are validated; all or nothing)."""
    from dataclasses import asdict

    from tools.warehouse import LoadError, load_file

    con = open_warehouse(ctx_of(state))
    try:
        report = load_file(con, table, file, mode, header=header, date_format=date_format,
                           columns=[c.strip() for c in columns.split(",")] if columns else None)
    except LoadError as exc:
        fail(str(exc))
    if as_json:
        print_json(asdict(report))
        return
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    kind = "validated against the schema" if report.canonical else "types inferred"
    typer.echo(f"Loaded {report.rows_in_file:,} rows from {file} into {table} ({kind}); "
               f"{report.rows_before:,} → {report.rows_after:,} rows.")


@commands.command()
def tables(state: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the warehouse's tables with their row counts."""
    from rich.console import Console
    from rich.table import Table

    from tools.warehouse import table_summary

    con = open_warehouse(ctx_of(state), read_only=True)
    rows = table_summary(con)
    if as_json:
        print_json(rows)
        return
    table = Table("table", "kind", "rows")
    for row in rows:
        table.add_row(row["table"], row["kind"], f"{row['rows']:,}")
    Console().print(table)


@commands.command("tools")
def list_tools(as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the registered tools (with JSON schemas under --json)."""
    from tools import load_tools

    registry = load_tools()
    if as_json:
        print_json([{"name": spec.name, "description": spec.description, "approval": spec.approval,
                     "parameters": spec.json_schema(), "example": spec.example.model_dump(mode="json"),
                     "requests": list(spec.requests)} for spec in registry.values()])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("tool", "approval", "description")
    for spec in registry.values():
        table.add_row(spec.name, "yes" if spec.approval else "", spec.description)
    Console().print(table)


@commands.command()
def tool(state: typer.Context, name: str,
         args: Annotated[str, typer.Option(help="Arguments as JSON.")] = "{}",
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Run one tool against the warehouse and print its result (actions need `northstar ask` and approval)."""
    from pydantic import ValidationError

    from tools import ToolContext, ToolError, format_validation_error, get_tool
    from tools.warehouse import WarehouseError

    ctx = ctx_of(state)
    try:
        spec = get_tool(name)
    except ToolError as exc:
        fail(str(exc), 2)
    if spec.approval:
        fail(f"{name} is an action and needs approval: ask for it with `northstar ask` and approve it.", 2)
    try:
        payload = json.loads(args)
        params = spec.parse(payload)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON: {exc}", 2)
    except ValidationError as exc:
        fail(format_validation_error(name, exc), 2)
    con = open_warehouse(ctx)
    try:
        result = spec.run(con, params, ToolContext(home=ctx.home, user=ctx.user, role=ctx.role_of()))
    except (ToolError, WarehouseError) as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    _render_result(result)


def _render_result(result) -> None:
    """A tool's summary, its first 20 rows × 10 columns as a table, then its warnings."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(result.summary)
    if result.data:
        columns = list(result.data[0])[:10]
        table = Table(*columns)
        for row in result.data[:20]:
            table.add_row(*[_fmt(row.get(column)) for column in columns])
        console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)
