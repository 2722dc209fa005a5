"""`northstar outbox`: the executed actions and their delivery; `northstar outbox deliver` finishes the work."""

from __future__ import annotations

from typing import Annotated

import typer

from ui.cli.common import ctx_of, fail, open_warehouse, print_json

commands = typer.Typer(help="Executed actions and their webhook delivery: list them, deliver what still waits.",
                       invoke_without_command=True)


@commands.callback()
def outbox(state: typer.Context,
           status: Annotated[str | None, typer.Option(
               help="Only this status: recorded, delivering, delivered, failed or dead.")] = None,
           limit: Annotated[int, typer.Option(help="Newest N items.")] = 50,
           as_json: Annotated[bool, typer.Option("--json")] = False):
    """List the outbox (newest first) with each item's status and delivery attempts."""
    if state.invoked_subcommand is not None:
        return
    from tools import outbox_items

    con = open_warehouse(ctx_of(state))
    try:
        rows = outbox_items(con, status=status, limit=max(1, limit))
    except ValueError as exc:
        fail(str(exc), 2)
    finally:
        con.close()
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("The outbox is empty." if status is None else f"No {status} items in the outbox.")
        return
    for row in rows:  # one plain line per item, like `northstar approvals`: easy to grep
        error = f"  {row['last_error']}" if row["last_error"] else ""
        typer.echo(f"{row['action_id']}  {row['action']:<17}  {row['status']:<10}  {row['attempts'] or 0:>2} "
                   f"attempt(s)  {row['created_at']:%Y-%m-%d %H:%M}{error}")


@commands.command()
def deliver(state: typer.Context,
            include_dead: Annotated[bool, typer.Option("--include-dead",
                                                       help="Also retry dead items (after fixing the webhook).")] = False,
            max_attempts: Annotated[int, typer.Option(help="Attempts per item before it is marked dead.")] = 6,
            backoff: Annotated[float, typer.Option(help="Seconds to wait after the first failed attempt "
                                                        "(doubled after each further one, at most 30).")] = 0.5,
            timeout: Annotated[float, typer.Option(help="Seconds per attempt.")] = 5.0,
            user: Annotated[str | None, typer.Option(help="Who delivers (must be an approver).")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False):
    """Deliver recorded and failed items to the webhook (same Idempotency-Key every attempt); dead after the limit."""
    from tools import DeliveryPolicy, deliver_pending
    from tools.warehouse import WarehouseError

    ctx = ctx_of(state)
    if why := ctx.refusal(user or ctx.user, "approve"):
        fail(why, 3)
    if not ctx.webhook_url:
        fail("no webhook is configured: set NORTHSTAR_WEBHOOK_URL to the receiver's URL, then run this again.", 2)
    if not ctx.warehouse_path.exists():
        fail(f"no warehouse at {ctx.warehouse_path}: nothing to deliver.", 2)
    if max_attempts < 1 or backoff < 0 or timeout <= 0:
        fail("--max-attempts must be ≥ 1, --backoff ≥ 0 and --timeout > 0.", 2)
    policy = DeliveryPolicy(max_attempts=max_attempts, base_delay_s=backoff, timeout_s=timeout)
    try:
        done = deliver_pending(ctx.with_overrides(user=user), policy, include_dead=include_dead)
    except WarehouseError as exc:
        fail(str(exc))
    if as_json:
        print_json(done)
    elif not done:
        typer.echo("Nothing waits for delivery.")
    else:
        for row in done:
            error = f" ({row['last_error']})" if row["last_error"] and row["status"] != "delivered" else ""
            typer.echo(f"{row['action_id']}  {row['action']}  {row['status']} after {row['attempts']} "
                       f"attempt(s){error}")
    if any(row["status"] != "delivered" for row in done):
        raise typer.Exit(1)
