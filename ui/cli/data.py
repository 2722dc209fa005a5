"""The warehouse and its tools from the command line: init, simulate-campaign, load, tables, tools, tool."""

from __future__ import annotations

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


@commands.command("simulate-campaign")
def simulate_campaign(state: typer.Context,
                      campaign_id: Annotated[str, typer.Argument(help="A launched campaign (launch_campaign).")],
                      lift: Annotated[float, typer.Option(help="True absolute lift in conversion rate (0.03 = +3 pp).")
                                      ] = 0.03,
                      seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                      as_json: Annotated[bool, typer.Option("--json")] = False):
    """Demo only: write the orders a launched campaign's window would bring, with a true effect you choose, so
    `measure_campaign` has something to measure (docs/campaigns.md). Never run it on real data."""
    from tools.warehouse import simulate_outcomes

    con = open_warehouse(ctx_of(state))
    try:
        result = simulate_outcomes(con, campaign_id, true_lift=lift, seed=seed)
    except ValueError as exc:
        fail(str(exc), 2)
    finally:
        con.close()
    if as_json:
        print_json(result)
    else:
        typer.echo(f"Simulated {campaign_id}: " + ", ".join(f"{k} {v}" for k, v in result.items()
                                                            if not isinstance(v, dict | list)))


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

    Sent to the running `northstar serve` when there is one. Exit codes: 1 the file does not fit, 2 the table or an
    option is refused, 3 the user may not load."""
    from ui.cli.remote import remote_of, upload

    ctx = ctx_of(state)
    if remote := remote_of(ctx):
        report = upload(remote, table, file, {"mode": mode, "header": header, "columns": columns,
                                              "date_format": date_format, "date_window": date_window, "user": user})
    else:
        from ui.server.ops import OpError
        from ui.server.ops import load as load_op

        con = open_warehouse(ctx)
        try:
            report = load_op(ctx, con, table, file, mode=mode, header=header, columns=columns,
                             date_format=date_format, date_window=date_window, user=user)
        except OpError as exc:
            fail(str(exc), exc.code)
        finally:
            con.close()
    if as_json:
        print_json(report)
        return
    for warning in report["warnings"]:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    kind = "validated against the schema" if report["canonical"] else "types inferred"
    typer.echo(f"Loaded {report['rows_in_file']:,} rows from {file} into {report['table']} ({kind}); "
               f"{report['rows_before']:,} → {report['rows_after']:,} rows.")


@commands.command()
def tables(state: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the warehouse's tables with their row counts."""
    from rich.console import Console
    from rich.table import Table

    from tools.warehouse import table_summary
    from ui.cli.remote import remote_of

    ctx = ctx_of(state)
    if remote := remote_of(ctx):  # the server holds the file: ask it
        rows = remote.call("GET", "/tables")
    else:
        con = open_warehouse(ctx, read_only=True)
        try:
            rows = table_summary(con)
        finally:
            con.close()
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

    if as_json:
        from ui.server.ops import tool_list

        print_json(tool_list())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("tool", "approval", "description")
    for spec in load_tools().values():
        table.add_row(spec.name, "yes" if spec.approval else "", spec.description)
    Console().print(table)


@commands.command()
def tool(state: typer.Context, name: str,
         args: Annotated[str, typer.Option(help="Arguments as JSON.")] = "{}",
         user: Annotated[str | None, typer.Option(help="Who runs it (roles from NORTHSTAR_ROLES).")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Run one tool against the warehouse and print its result (actions need `northstar ask` and approval).

    Every run is written to the audit log: user, arguments, outcome. Sent to the running `northstar serve` when
    there is one."""
    from ui.cli.remote import remote_of

    ctx = ctx_of(state)
    if remote := remote_of(ctx):
        result = remote.call("POST", f"/tools/{name}", json={"args": args, "user": user})
    else:
        from ui.server.ops import OpError, run_tool

        con = open_warehouse(ctx)
        try:
            result = run_tool(ctx, con, name, args, user)
        except OpError as exc:
            fail(str(exc), exc.code)
        finally:
            con.close()
    if as_json:
        print_json(result)
        return
    _render_result(result)


def _render_result(result: dict) -> None:
    """A tool's summary, its first 20 rows × 10 columns as a table, then its warnings."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(result["summary"])
    if result.get("data"):
        columns = list(result["data"][0])[:10]
        table = Table(*columns)
        for row in result["data"][:20]:
            table.add_row(*[_fmt(row.get(column)) for column in columns])
        console.print(table)
    for warning in result.get("warnings") or []:
        console.print(f"[yellow]warning:[/] {warning}")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "" if value is None else str(value)
