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
         date_window: Annotated[str | None, typer.Option(
             help="Plausible dates FROM..TO (env NORTHSTAR_DATE_WINDOW; default 1990-01-01 to a year from today).")
         ] = None,
         user: Annotated[str | None, typer.Option(help="Who loads (needs the analyst or approver role).")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Import a CSV / Parquet / JSON file into TABLE (canonical tables are validated; all or nothing; audited).

    Exit codes: 1 the file does not fit, 2 the table or an option is refused, 3 the user may not load."""
    from dataclasses import asdict

    from tools.warehouse import LoadError, load_file

    ctx = ctx_of(state)
    user = user or ctx.user
    why = ctx.refusal(user, "load")
    con = open_warehouse(ctx)
    try:
        report = load_file(con, table, file, mode, header=header, date_format=date_format, date_window=date_window,
                           columns=[c.strip() for c in columns.split(",")] if columns else None, user=user,
                           refusal=why and f"{why} Roles come from NORTHSTAR_ROLES (user:role pairs).")
    except LoadError as exc:
        fail(str(exc), 3 if why else 2 if exc.refused else 1)
    if as_json:
        print_json(asdict(report))
        return
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    kind = "validated against the schema" if report.canonical else "types inferred"
    typer.echo(f"Loaded {report.rows_in_file:,} rows from {file} into {report.table} ({kind}); "
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
         user: Annotated[str | None, typer.Option(help="Who runs it (roles from NORTHSTAR_ROLES).")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Run one tool against the warehouse and print its result (actions need `northstar ask` and approval).

    Every run is written to the audit log: user, arguments, outcome."""
    from pydantic import ValidationError

    from tools import ToolContext, ToolError, format_validation_error, get_tool
    from tools.warehouse import WarehouseError

    ctx = ctx_of(state)
    user = user or ctx.user
    con = open_warehouse(ctx)
    record = _auditor(con, name, user, args)
    try:
        spec = get_tool(name)
    except ToolError as exc:
        record("refused", str(exc))
        fail(str(exc), 2)
    if spec.approval:
        message = f"{name} is an action and needs approval: ask for it with `northstar ask` and approve it."
        record("refused", message)
        fail(message, 2)
    try:
        params = spec.parse(json.loads(args))
    except json.JSONDecodeError as exc:
        record("refused", f"--args is not valid JSON: {exc}")
        fail(f"--args is not valid JSON: {exc}", 2)
    except ValidationError as exc:
        record("refused", format_validation_error(name, exc))
        fail(format_validation_error(name, exc), 2)
    except ToolError as exc:  # a table argument naming one of Northstar's own tables
        record("refused", str(exc))
        fail(str(exc), 2)
    try:
        tool_ctx = ToolContext(home=ctx.home, user=user, role=ctx.role_of(user), max_budget_change=ctx.max_budget_change,
                               query_memory_mb=ctx.query_memory_mb, query_threads=ctx.query_threads)
        result = spec.run(con, params, tool_ctx)
    except (ToolError, WarehouseError) as exc:
        record("error", str(exc))
        fail(str(exc))
    except Exception as exc:
        record("crash", f"{type(exc).__name__}: {exc}")
        raise
    record("ok", result.summary[:500])
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    _render_result(result)


def _auditor(con, name: str, user: str, args: str):
    """Writes one `northstar tool` run to the audit log (the arguments as given, parsed when they are JSON)."""
    from tools.warehouse import audit

    try:
        given = json.loads(args)
    except json.JSONDecodeError:
        given = {"raw": args[:2000]}

    def record(outcome: str, detail: str) -> None:
        audit(con, "tool_call", name[:200], user=user, thread=None, args=given, outcome=outcome,
              detail=f"northstar tool: {detail}")

    return record


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
