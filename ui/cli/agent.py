"""Talking to the agent from the command line: ask, chat, approvals, approve, and how a turn is shown."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ui.cli.common import ctx_of, fail, print_json

commands = typer.Typer()


_held: list = []
"""The warehouse, held open for a one-shot command's life once its in-process agent is made (as `northstar serve`
holds it): creating the agent, the turn's steps and its tool calls then share one DuckDB open instead of one each.
`chat` does not hold it between questions: another shell may need the file meanwhile."""


def _agent(ctx, provider: str | None = None, hold: bool = True):
    """The agent over this home (with --provider applied), or a plain error when the home cannot be opened."""
    from agent.runner import Northstar
    from tools.warehouse import connect

    if provider:
        ctx = ctx.with_overrides(provider=provider)
    try:
        if hold and not _held:
            import atexit

            _held.append(connect(ctx.warehouse_path))  # creates and migrates it if needed
            atexit.register(_held[0].close)
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
    for draft in out.get("pending_approvals") or ([out["pending_approval"]] if out.get("pending_approval") else []):
        console.print(f"[yellow]Waiting for approval:[/] northstar approve {draft.get('id') or out['thread_id']}")


def _remote(ctx):
    from ui.cli.remote import remote_of

    return remote_of(ctx)


@commands.command()
def ask(state: typer.Context, question: str,
        thread: Annotated[str | None, typer.Option(help="Continue this thread.")] = None,
        user: Annotated[str | None, typer.Option(help="Who is asking (roles from NORTHSTAR_ROLES).")] = None,
        provider: Annotated[str | None, typer.Option(help="offline or openai (in-process runs only).")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False):
    """Ask a question; the agent answers with numbers from the tools and drafts actions for approval.

    Sent to the running `northstar serve` when there is one (NORTHSTAR_SERVER or the home's server.json)."""
    if provider not in (None, "offline", "openai"):
        fail("--provider must be offline or openai", 2)
    ctx = ctx_of(state)
    if remote := _remote(ctx):
        if provider:
            fail(f"--provider applies to in-process runs; the server at {remote.url} uses its own "
                 "(NORTHSTAR_PROVIDER where it runs). Leave --provider out, or set NORTHSTAR_SERVER=off.", 2)
        out = remote.call("POST", "/ask", json={"question": question, "thread_id": thread, "user": user})
    else:
        from agent.runner import ApprovalError, NotPermitted

        agent = _agent(ctx, provider)
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
    """Chat interactively (an empty line or Ctrl-D ends); through the running server when there is one."""
    import uuid

    from rich.console import Console

    console = Console()
    ctx = ctx_of(state)
    remote = _remote(ctx)
    if remote:
        if thread:  # a thread is private to the user who started it: say so before the first question
            remote.call("GET", f"/threads/{thread}", params={"user": user} if user else None, missing_ok=True)
        turn = _remote_turn(remote, user)
        where = f"server {remote.url}"
    else:
        agent = _agent(ctx, hold=False)
        if thread:
            from agent.runner import NotPermitted

            try:
                agent.history(thread, user=user)
            except NotPermitted as exc:
                fail(str(exc), 3)
        turn = _local_turn(agent, user)
        where = agent.ctx.resolved_provider
    thread = thread or "t-" + uuid.uuid4().hex[:10]  # the runner's format (agent.runner.new_thread_id)
    console.print(f"[dim]Northstar · thread {thread} · {where} · empty line to quit[/]")
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
            out = turn(question, thread, show)
        if out is None:
            continue
        _render_turn(out)


def _local_turn(agent, user):
    from rich.console import Console

    from agent.runner import ApprovalError

    def turn(question, thread, show):
        try:
            return agent.ask(question, thread_id=thread, user=user, on_event=show)
        except (ApprovalError, ValueError) as exc:
            Console().print(f"[red]{exc}[/]")
            return None
    return turn


def _remote_turn(remote, user):
    def turn(question, thread, show):
        try:
            return remote.stream("/ask/stream", {"question": question, "thread_id": thread, "user": user}, show)
        except typer.Exit:  # the message is printed; a refused or failed turn does not end the chat
            return None
    return turn


@commands.command()
def approvals(state: typer.Context,
              user: Annotated[str | None, typer.Option(help="Who is looking: approvers see every request, "
                                                            "others their own threads'.")] = None,
              as_json: Annotated[bool, typer.Option("--json")] = False):
    """List actions waiting for an approver."""
    ctx = ctx_of(state)
    if remote := _remote(ctx):
        rows = remote.call("GET", "/approvals", params={"user": user} if user else None)
    else:
        rows = _agent(ctx).pending(user=user)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("Nothing is waiting for approval.")
    for row in rows:  # one plain line per draft: its id (for `northstar approve`), thread, action, risk, preview
        mark = "  INTERRUPTED" if row.get("interrupted") else ""
        typer.echo(f"{row.get('id') or row['thread_id']}  {row['thread_id']}  {row['action']}{mark}  "
                   f"[{row.get('risk') or 'medium'}]  {row['description']}  "
                   f"(asked by {row.get('requested_by') or 'unknown'} {row.get('requested_at') or ''})")


@commands.command()
def approve(state: typer.Context,
            request: Annotated[str, typer.Argument(help="The draft's id (`northstar approvals` lists them), or a "
                                                        "thread id for that thread's oldest open draft.")],
            reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
            edit: Annotated[str | None, typer.Option(help="Approve with changed arguments (JSON).")] = None,
            respond: Annotated[str | None, typer.Option(help="Send it back to the requester with this message "
                                                             "(nothing runs).")] = None,
            message: Annotated[str | None, typer.Option(help="A note posted with the decision (e.g. why).")] = None,
            user: Annotated[str | None, typer.Option(help="Who decides (must be an approver).")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False):
    """Approve (or --reject, --edit, --respond) a drafted action; the outcome is posted into its thread."""
    if sum(map(bool, (reject, edit, respond))) > 1:
        fail("choose one of --reject, --edit and --respond", 2)
    args = None
    if edit:
        try:
            args = json.loads(edit)
        except json.JSONDecodeError as exc:
            fail(f"--edit is not valid JSON: {exc}", 2)
    decision = "reject" if reject else "edit" if edit else "respond" if respond else "approve"
    message = respond or message
    ctx = ctx_of(state)
    if remote := _remote(ctx):
        out = remote.call("POST", f"/approvals/{request}", json={"decision": decision, "args": args,
                                                                 "message": message, "user": user})
    else:
        from agent.runner import ApprovalError, NotPermitted

        try:
            out = _agent(ctx).decide(request, decision, user=user, args=args, message=message)
        except ApprovalError as exc:
            fail(str(exc), 3 if isinstance(exc, NotPermitted) else 2)
    if as_json:
        print_json(out)
    else:
        _render_turn(out)
