"""The `northstar` command line (typer). Imports stay lazy so `northstar --help` starts fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Northstar: a marketing decisioning assistant over your DuckDB warehouse.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


def _mount() -> None:
    from knowledge.cli import app as knowledge_app

    app.add_typer(knowledge_app, name="knowledge")


_mount()


def _ctx(state: typer.Context):
    return state.obj


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _print_json(obj) -> None:
    from tools import jsonable

    sys.stdout.write(json.dumps(jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def _open(ctx, *, read_only: bool = False):
    from tools.warehouse import WarehouseError, connect

    try:
        return connect(ctx.warehouse_path, read_only=read_only)
    except WarehouseError as exc:
        _fail(str(exc))


@app.callback()
def main_callback(state: typer.Context,
                  home: Annotated[Path | None, typer.Option(help="State folder (env NORTHSTAR_HOME).")] = None):
    """Global options."""
    from agent.context import Context

    try:
        state.obj = Context.from_env(home=home)
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def init(state: typer.Context,
         demo: Annotated[bool, typer.Option("--demo", help="Generate the demo warehouse.")] = False,
         customers: Annotated[int, typer.Option(help="Demo customers.")] = 50_000,
         seed: Annotated[int, typer.Option(help="Random seed (same seed, same warehouse).")] = 7):
    """Create (and migrate) the warehouse; with --demo, fill it with the generated demo world."""
    import time

    from rich.console import Console

    from tools.warehouse import migrate

    ctx = _ctx(state)
    con = _open(ctx)
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
        _fail(str(exc), 2)
    con.execute("CHECKPOINT")
    took = time.perf_counter() - t0
    console.print(f"Demo warehouse at {ctx.warehouse_path}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
                  + f" ({took:.1f} s). Planted truths: docs/demo-data.md.")


@app.command()
def load(state: typer.Context, table: str, file: Path,
         mode: Annotated[str, typer.Option(help="append or replace.")] = "append",
         header: Annotated[bool, typer.Option(help="First line holds column names.")] = True,
         columns: Annotated[str | None, typer.Option(help="Comma-separated column names to use.")] = None,
         date_format: Annotated[str | None, typer.Option(help="strptime format of dates, e.g. %Y%m%d.")] = None,
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Import a CSV / Parquet / JSON file into TABLE (canonical tables are validated; all or nothing)."""
    from dataclasses import asdict

    from tools.warehouse import LoadError, load_file

    con = _open(_ctx(state))
    try:
        report = load_file(con, table, file, mode, header=header, date_format=date_format,
                           columns=[c.strip() for c in columns.split(",")] if columns else None)
    except LoadError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(asdict(report))
        return
    for w in report.warnings:
        typer.secho(f"warning: {w}", err=True, fg=typer.colors.YELLOW)
    kind = "validated against the schema" if report.canonical else "types inferred"
    typer.echo(f"Loaded {report.rows_in_file:,} rows from {file} into {table} ({kind}); "
               f"{report.rows_before:,} → {report.rows_after:,} rows.")


@app.command()
def tables(state: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the warehouse's tables with their row counts."""
    from rich.console import Console
    from rich.table import Table

    from tools.warehouse import table_summary

    con = _open(_ctx(state), read_only=True)
    rows = table_summary(con)
    if as_json:
        _print_json(rows)
        return
    t = Table("table", "kind", "rows")
    for r in rows:
        t.add_row(r["table"], r["kind"], f"{r['rows']:,}")
    Console().print(t)


@app.command("tools")
def list_tools(as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the registered tools (with JSON schemas under --json)."""
    from tools import load_tools

    registry = load_tools()
    if as_json:
        _print_json([{"name": s.name, "description": s.description, "approval": s.approval,
                      "parameters": s.json_schema(), "example": s.example.model_dump(mode="json"),
                      "requests": list(s.requests)} for s in registry.values()])
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("tool", "approval", "description")
    for s in registry.values():
        t.add_row(s.name, "yes" if s.approval else "", s.description)
    Console().print(t)


@app.command()
def tool(state: typer.Context, name: str,
         args: Annotated[str, typer.Option(help="Arguments as JSON.")] = "{}",
         as_json: Annotated[bool, typer.Option("--json")] = False):
    """Run one tool against the warehouse and print its result (actions need `northstar ask` and approval)."""
    from pydantic import ValidationError

    from tools import ToolContext, ToolError, format_validation_error, get_tool
    from tools.warehouse import WarehouseError

    ctx = _ctx(state)
    try:
        spec = get_tool(name)
    except ToolError as exc:
        _fail(str(exc), 2)
    if spec.approval:
        _fail(f"{name} is an action and needs approval: ask for it with `northstar ask` and approve it.", 2)
    try:
        payload = json.loads(args)
        params = spec.parse(payload)
    except json.JSONDecodeError as exc:
        _fail(f"--args is not valid JSON: {exc}", 2)
    except ValidationError as exc:
        _fail(format_validation_error(name, exc), 2)
    con = _open(ctx)
    try:
        result = spec.run(con, params, ToolContext(home=ctx.home, user=ctx.user, role=ctx.role_of()))
    except (ToolError, WarehouseError) as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        return
    _render_result(result)


def _render_result(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(result.summary)
    if result.data:
        cols = list(result.data[0])[:10]
        t = Table(*cols)
        for row in result.data[:20]:
            t.add_row(*[_fmt(row.get(c)) for c in cols])
        console.print(t)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def _agent(ctx, provider: str | None = None):
    from agent.runner import Northstar

    if provider:
        ctx = ctx.with_overrides(provider=provider)
    try:
        return Northstar(ctx)
    except Exception as exc:  # a locked or broken home: say so plainly
        _fail(f"cannot open {ctx.home}: {exc}")


def _render_turn(out: dict) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console()
    badge = out["provider"] + (f" (fallback: {out['fallback']})" if out.get("fallback") else "")
    console.print(f"[dim]{badge} · thread {out['thread_id']}[/]")
    console.print(Markdown(out["answer"] or ""))
    if out.get("pending_approval"):
        console.print(f"[yellow]Waiting for approval:[/] northstar approve {out['thread_id']}")


@app.command()
def ask(state: typer.Context, question: str,
        thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
        user: Annotated[str | None, typer.Option(help="Who is asking (roles from NORTHSTAR_ROLES).")] = None,
        provider: Annotated[str | None, typer.Option(help="offline or openai.")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False):
    """Ask a question; the agent answers with numbers from the tools and drafts actions for approval."""
    from agent.runner import ApprovalError

    if provider not in (None, "offline", "openai"):
        _fail("--provider must be offline or openai", 2)
    agent = _agent(_ctx(state), provider)
    try:
        out = agent.ask(question, thread_id=thread, user=user)
    except (ApprovalError, ValueError) as exc:
        _fail(str(exc), 2)
    if as_json:
        _print_json(out)
    else:
        _render_turn(out)


@app.command()
def chat(state: typer.Context,
         thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
         user: Annotated[str | None, typer.Option()] = None):
    """Chat interactively (an empty line or Ctrl-D ends)."""
    from rich.console import Console

    from agent.runner import ApprovalError, new_thread_id

    console = Console()
    agent = _agent(_ctx(state))
    thread = thread or new_thread_id()
    console.print(f"[dim]Northstar · thread {thread} · {agent.ctx.resolved_provider} · empty line to quit[/]")
    while True:
        try:
            question = console.input("[bold]you> [/]")
        except EOFError:
            break
        if not question.strip():
            break
        with console.status("thinking …") as status:
            def show(ev, status=status):
                if ev.get("event") == "tool_start":
                    status.update(f"running {ev['name']} …")
            try:
                out = agent.ask(question, thread_id=thread, user=user, on_event=show)
            except (ApprovalError, ValueError) as exc:
                console.print(f"[red]{exc}[/]")
                continue
        _render_turn(out)


@app.command()
def approvals(state: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False):
    """List actions waiting for an approver."""
    rows = _agent(_ctx(state)).pending()
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("Nothing is waiting for approval.")
    for r in rows:
        typer.echo(f"{r['thread_id']}  {r['action']}  [{r['risk']}]  {r['description']}")


@app.command()
def approve(state: typer.Context, thread: str,
            reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
            edit: Annotated[str | None, typer.Option(help="Approve with changed arguments (JSON).")] = None,
            user: Annotated[str | None, typer.Option(help="Who decides (must be an approver).")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False):
    """Approve (or --reject, or --edit) the action waiting in THREAD."""
    from agent.runner import ApprovalError, NotPermitted

    args = None
    if edit:
        try:
            args = json.loads(edit)
        except json.JSONDecodeError as exc:
            _fail(f"--edit is not valid JSON: {exc}", 2)
    decision = "reject" if reject else ("edit" if edit else "approve")
    try:
        out = _agent(_ctx(state)).decide(thread, decision, user=user, args=args)
    except ApprovalError as exc:
        _fail(str(exc), 3 if isinstance(exc, NotPermitted) else 2)
    if as_json:
        _print_json(out)
    else:
        _render_turn(out)


@app.command()
def ui(state: typer.Context, host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="Port.")] = 7860):
    """Start the web UI (Gradio)."""
    from ui.gradio_app import launch

    launch(_ctx(state), host=host, port=port)


@app.command()
def slack(state: typer.Context,
          http: Annotated[bool, typer.Option("--http", help="Events API over HTTP instead of Socket Mode.")] = False,
          port: Annotated[int, typer.Option(help="Port for --http.")] = 3000):
    """Run the Slack bot (Socket Mode with SLACK_BOT_TOKEN + SLACK_APP_TOKEN, or --http with SLACK_SIGNING_SECRET)."""
    from ui import slack_bot

    if http:
        slack_bot.run_http(_ctx(state), port)
    else:
        slack_bot.run_socket_mode(_ctx(state))


@app.command("eval")
def eval_(suite: Annotated[str, typer.Option(help="analytics_reference, trajectories, redteam, content or all.")] = "all",
          dataset: Annotated[Path | None, typer.Option(help="External dataset (YAML list or JSONL).")] = None,
          provider: Annotated[str, typer.Option(help="offline or openai.")] = "offline",
          repeat: Annotated[int, typer.Option(help="Repetitions per case; pass^k needs all to pass.")] = 1,
          customers: Annotated[int, typer.Option(help="Size of the eval demo warehouse.")] = 20_000,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None):
    """Run the evaluation suites; exits non-zero when a suite is below its threshold (evals/thresholds.yaml)."""
    import os

    from evals.report import render
    from evals.runner import SUITES, run

    names = list(SUITES) if suite == "all" else [s.strip() for s in suite.split(",")]
    unknown = [n for n in names if n not in SUITES]
    if unknown and not dataset:
        _fail(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)} or all", 2)
    if dataset and not dataset.exists():
        _fail(f"{dataset}: no such file", 2)
    if provider not in ("offline", "openai"):
        _fail("--provider must be offline or openai", 2)
    try:
        result = run(names, dataset=dataset, provider=provider, repeat=max(1, repeat), customers=customers,
                     openai_base_url=os.environ.get("OPENAI_BASE_URL"), openai_api_key=os.environ.get("OPENAI_API_KEY"),
                     model=os.environ.get("NORTHSTAR_MODEL"))
    except ValueError as exc:
        _fail(str(exc), 2)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render(result), encoding="utf-8")
    if as_json:
        _print_json(result)
    else:
        for s in result["suites"]:
            mark = "ok  " if s["pass_rate"] >= s["threshold"] else "FAIL"
            typer.echo(f"{mark} {s['name']:<22} {s['passed']}/{s['cases']} ({100 * s['pass_rate']:.1f} %, "
                       f"threshold {100 * s['threshold']:.0f} %)")
            for f in s["failures"]:
                typer.echo(f"       {f['id']}: {f['why']}")
        lat = result["latency_ms"]
        typer.echo(f"provider {result['provider']}, latency p50 {lat['p50']} ms, p95 {lat['p95']} ms"
                   + (f"; report: {report}" if report else ""))
    if not result["ok"]:
        raise typer.Exit(1)


@app.command()
def bench(customers: Annotated[int, typer.Option(help="Demo customers to benchmark at.")] = 1_000_000,
          repeat: Annotated[int, typer.Option(help="Runs per tool (median reported).")] = 3,
          skip_compare: Annotated[bool, typer.Option("--skip-compare", help="Skip the library comparisons.")] = False,
          as_json: Annotated[bool, typer.Option("--json")] = False):
    """Benchmark every analytics tool on a demo warehouse of N customers (results in bench/results/)."""
    from bench.harness import main as bench_main

    raise typer.Exit(bench_main(customers=customers, repeat=repeat, compare=not skip_compare, as_json=as_json))


@app.command()
def docs(check: Annotated[bool, typer.Option("--check", help="Fail when a generated page is stale.")] = False):
    """Regenerate the generated docs (docs/tools.md, docs/schema.md)."""
    from tools import tools_markdown
    from tools.warehouse import schema_markdown

    stale = []
    for path, text in ((Path("docs/tools.md"), tools_markdown()), (Path("docs/schema.md"), schema_markdown())):
        current = path.read_text() if path.exists() else ""
        if current != text:
            stale.append(str(path))
            if not check:
                path.parent.mkdir(exist_ok=True)
                path.write_text(text)
    if check and stale:
        _fail(f"stale: {', '.join(stale)}; run `make docs`")
    typer.echo("docs up to date" if not stale else f"rewrote {', '.join(stale)}")


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
