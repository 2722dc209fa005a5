"""Talking to the agent from the command line: ask, chat, approvals, approve, and how a turn is shown."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ui.cli.common import ctx_of, fail, print_json

commands = typer.Typer()


def _agent(ctx, provider: str | None = None):
    """The agent over this home (with --provider applied), or a plain error when the home cannot be opened."""
    from agent.runner import Northstar

    if provider:
        ctx = ctx.with_overrides(provider=provider)
    try:
        return Northstar(ctx)
    except Exception as exc:  # a locked or broken home: say so plainly
        fail(f"cannot open {ctx.home}: {exc}")


def _render_turn(out: dict) -> None:
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console()
    badge = out["provider"] + (f" (fallback: {out['fallback']})" if out.get("fallback") else "")
    console.print(f"[dim]{badge} · thread {out['thread_id']}[/]")
    console.print(Markdown(out["answer"] or ""))
    if out.get("pending_approval"):
        console.print(f"[yellow]Waiting for approval:[/] northstar approve {out['thread_id']}")


@commands.command()
def ask(state: typer.Context, question: str,
        thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
        user: Annotated[str | None, typer.Option(help="Who is asking (roles from NORTHSTAR_ROLES).")] = None,
        provider: Annotated[str | None, typer.Option(help="offline or openai.")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False):
    """Ask a question; the agent answers with numbers from the tools and drafts actions for approval."""
    from agent.runner import ApprovalError, NotPermitted

    if provider not in (None, "offline", "openai"):
        fail("--provider must be offline or openai", 2)
    agent = _agent(ctx_of(state), provider)
    try:
        out = agent.ask(question, thread_id=thread, user=user)
    except (ApprovalError, ValueError) as exc:
        fail(str(exc), 3 if isinstance(exc, NotPermitted) else 2)
    if as_json:
        print_json(out)
    else:
        _render_turn(out)


@commands.command()
def chat(state: typer.Context,
         thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
         user: Annotated[str | None, typer.Option()] = None):
    """Chat interactively (an empty line or Ctrl-D ends)."""
    from rich.console import Console

    from agent.runner import ApprovalError, NotPermitted, new_thread_id

    console = Console()
    agent = _agent(ctx_of(state))
    if thread:
        try:  # a thread is private to the user who started it: say so before the first question
            agent.history(thread, user=user)
        except NotPermitted as exc:
            fail(str(exc), 3)
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
            def show(event, status=status):
                if event.get("event") == "tool_start":
                    status.update(f"running {event['name']} …")
            try:
                out = agent.ask(question, thread_id=thread, user=user, on_event=show)
            except (ApprovalError, ValueError) as exc:
                console.print(f"[red]{exc}[/]")
                continue
        _render_turn(out)


@commands.command()
def approvals(state: typer.Context,
              user: Annotated[str | None, typer.Option(help="Who is looking: approvers see every request, "
                                                            "others their own threads'.")] = None,
              as_json: Annotated[bool, typer.Option("--json")] = False):
    """List actions waiting for an approver."""
    rows = _agent(ctx_of(state)).pending(user=user)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("Nothing is waiting for approval.")
    for row in rows:
        mark = "  INTERRUPTED" if row.get("interrupted") else ""
        typer.echo(f"{row['thread_id']}  {row['action']}{mark}  [{row['risk']}]  {row['description']}  "
                   f"(asked by {row.get('requested_by') or 'unknown'} {row.get('requested_at') or ''})")


@commands.command()
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
            fail(f"--edit is not valid JSON: {exc}", 2)
    decision = "reject" if reject else ("edit" if edit else "approve")
    try:
        out = _agent(ctx_of(state)).decide(thread, decision, user=user, args=args)
    except ApprovalError as exc:
        fail(str(exc), 3 if isinstance(exc, NotPermitted) else 2)
    if as_json:
        print_json(out)
    else:
        _render_turn(out)
