"""The developer's gates from the command line: eval, bench, docs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ui.cli.common import fail, print_json

commands = typer.Typer()


@commands.command("eval")
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
        fail(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)} or all", 2)
    if dataset and not dataset.exists():
        fail(f"{dataset}: no such file", 2)
    if provider not in ("offline", "openai"):
        fail("--provider must be offline or openai", 2)
    try:
        result = run(names, dataset=dataset, provider=provider, repeat=max(1, repeat), customers=customers,
                     openai_base_url=os.environ.get("OPENAI_BASE_URL"), openai_api_key=os.environ.get("OPENAI_API_KEY"),
                     model=os.environ.get("NORTHSTAR_MODEL"))
    except ValueError as exc:
        fail(str(exc), 2)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render(result), encoding="utf-8")
    if as_json:
        print_json(result)
    else:
        _render_eval(result, report)
    if not result["ok"]:
        raise typer.Exit(1)


def _render_eval(result: dict, report: Path | None) -> None:
    """One line per suite (ok or FAIL against its threshold) with its failures under it, then the latency."""
    for suite in result["suites"]:
        mark = "ok  " if suite["pass_rate"] >= suite["threshold"] else "FAIL"
        typer.echo(f"{mark} {suite['name']:<22} {suite['passed']}/{suite['cases']} ({100 * suite['pass_rate']:.1f} %, "
                   f"threshold {100 * suite['threshold']:.0f} %)")
        for failure in suite["failures"]:
            typer.echo(f"       {failure['id']}: {failure['why']}")
        if future := (suite.get("metrics") or {}).get("future"):  # cases for tools not built yet, counted apart
            typer.echo(f"     future cases (not counted): {future['passed']}/{future['cases']}")
            for failure in future["failures"]:
                typer.echo(f"       {failure['id']}: {failure['why']}")
    latency = result["latency_ms"]
    typer.echo(f"provider {result['provider']}, latency p50 {latency['p50']} ms, p95 {latency['p95']} ms"
               + (f"; report: {report}" if report else ""))


@commands.command()
def bench(customers: Annotated[int, typer.Option(help="Demo customers to benchmark at.")] = 1_000_000,
          repeat: Annotated[int, typer.Option(help="Runs per tool (median reported).")] = 3,
          skip_compare: Annotated[bool, typer.Option("--skip-compare", help="Skip the library comparisons.")] = False,
          as_json: Annotated[bool, typer.Option("--json")] = False):
    """Benchmark every analytics tool on a demo warehouse of N customers (results in bench/results/)."""
    from bench.harness import main as bench_main

    raise typer.Exit(bench_main(customers=customers, repeat=repeat, compare=not skip_compare, as_json=as_json))


@commands.command()
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
        fail(f"stale: {', '.join(stale)}; run `make docs`")
    typer.echo("docs up to date" if not stale else f"rewrote {', '.join(stale)}")
