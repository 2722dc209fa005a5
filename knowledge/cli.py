"""`northstar knowledge rebuild|search|add`: the knowledge base (playbooks, brand guide) indexed in ChromaDB."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The knowledge base: playbooks and brand guide indexed in ChromaDB.", no_args_is_help=True)


def _home(state: typer.Context) -> Path:
    """The home from the parent `northstar` command (its callback put an agent.context.Context in obj)."""
    ctx = state.find_root().obj if state.obj is None else state.obj
    return Path(ctx.home) if ctx is not None else Path(".northstar")


@app.command()
def rebuild(state: typer.Context,
            force: Annotated[bool, typer.Option("--force", help="Rebuild even when nothing changed.")] = False,
            as_json: Annotated[bool, typer.Option("--json")] = False):
    """Index knowledge/docs (and documents added to this home) into NORTHSTAR_HOME/chroma."""
    import time

    from knowledge.index import rebuild as do_rebuild

    t0 = time.perf_counter()
    info = do_rebuild(_home(state), force=force)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
        return
    verb = "Rebuilt" if info["rebuilt"] else "Up to date:"
    typer.echo(f"{verb} {info['chunks']} passages from {info['documents']} documents ({info['seconds']} s).")


@app.command()
def search(state: typer.Context, query: str,
           k: Annotated[int, typer.Option("--k", min=1, max=20, help="Passages to return.")] = 5,
           as_json: Annotated[bool, typer.Option("--json")] = False):
    """Show the passages that best answer QUERY, with their document and heading."""
    from knowledge.index import search as do_search

    hits = do_search(_home(state), query, k=k)
    if as_json:
        sys.stdout.write(json.dumps(hits, ensure_ascii=False, indent=2) + "\n")
        return
    for i, h in enumerate(hits, 1):
        typer.secho(f"{i}. {h['title']} › {h['section']}  (score {h['score']:.2f}, {h['document']}.md)", bold=True)
        text = h["text"] if len(h["text"]) < 400 else h["text"][:400].rsplit(" ", 1)[0] + " …"
        typer.echo(text + "\n")


@app.command()
def add(state: typer.Context, path: Path):
    """Add a markdown document to this home's knowledge base and re-index."""
    from knowledge.index import add_document
    from knowledge.index import rebuild as do_rebuild

    home = _home(state)
    try:
        target = add_document(home, path)
    except (FileNotFoundError, ValueError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from exc
    info = do_rebuild(home)
    typer.echo(f"Added {target.name}; index holds {info['chunks']} passages from {info['documents']} documents.")
