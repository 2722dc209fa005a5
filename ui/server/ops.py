"""What `northstar tool` and `northstar load` do, in one place for both the CLI (no server) and the API.

Both raise `OpError` with the CLI's exit code (1 failed, 2 refused or bad input, 3 not permitted), which the
API turns into an HTTP status, so a user sees the same message and the CLI the same exit code either way.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

HTTP_STATUS = {1: 422, 2: 400, 3: 403}


class OpError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code

    @property
    def status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def run_tool(ctx, con, name: str, args: str | dict, user: str | None) -> dict:
    """Run one (non-action) tool as `user`, audited (user, arguments, outcome); its result as JSON-ready data."""
    from pydantic import ValidationError

    from tools import ToolContext, ToolError, format_validation_error, get_tool
    from tools.warehouse import WarehouseError

    user = user or ctx.user
    record = _auditor(con, name, user, args)
    try:
        spec = get_tool(name)
    except ToolError as exc:
        record("refused", str(exc))
        raise OpError(str(exc), 2) from exc
    if spec.approval:
        message = f"{name} is an action and needs approval: ask for it with `northstar ask` and approve it."
        record("refused", message)
        raise OpError(message, 2)
    try:
        params = spec.parse(json.loads(args) if isinstance(args, str) else args)
    except json.JSONDecodeError as exc:
        record("refused", f"--args is not valid JSON: {exc}")
        raise OpError(f"--args is not valid JSON: {exc}", 2) from exc
    except ValidationError as exc:
        record("refused", format_validation_error(name, exc))
        raise OpError(format_validation_error(name, exc), 2) from exc
    except ToolError as exc:  # a table argument naming one of Northstar's own tables
        record("refused", str(exc))
        raise OpError(str(exc), 2) from exc
    try:
        tool_ctx = ToolContext(home=ctx.home, user=user, role=ctx.role_of(user), max_budget_change=ctx.max_budget_change,
                               query_memory_mb=ctx.query_memory_mb, query_threads=ctx.query_threads)
        result = spec.run(con, params, tool_ctx)
    except (ToolError, WarehouseError) as exc:
        record("error", str(exc))
        raise OpError(str(exc), 1) from exc
    except Exception as exc:
        record("crash", f"{type(exc).__name__}: {exc}")
        raise
    record("ok", result.summary[:500])
    return result.model_dump(mode="json")


def _auditor(con, name: str, user: str, args: str | dict):
    """Writes one tool run to the audit log (the arguments as given, parsed when they are JSON)."""
    from tools.warehouse import audit

    if isinstance(args, dict):
        given = args
    else:
        try:
            given = json.loads(args)
        except json.JSONDecodeError:
            given = {"raw": args[:2000]}

    def record(outcome: str, detail: str) -> None:
        audit(con, "tool_call", name[:200], user=user, thread=None, args=given, outcome=outcome,
              detail=f"northstar tool: {detail}")

    return record


def load(ctx, con, table: str, file: Path, *, mode: str = "append", header: bool = True,
         columns: str | None = None, date_format: str | None = None, date_window: str | None = None,
         user: str | None = None, shown_as: str | None = None) -> dict:
    """Load `file` into `table` as `user` (the loader's checks, all or nothing, audited); the report as a dict.

    `shown_as`: the name the user gave the file (the API stores an upload under a temporary name first)."""
    from tools.warehouse import LoadError, load_file

    user = user or ctx.user
    why = ctx.refusal(user, "load")
    try:
        report = load_file(con, table, file, mode, header=header, date_format=date_format, date_window=date_window,
                           columns=[c.strip() for c in columns.split(",")] if columns else None, user=user,
                           refusal=why and f"{why} Roles come from NORTHSTAR_ROLES (user:role pairs).")
    except LoadError as exc:
        message = str(exc).replace(str(file), shown_as) if shown_as else str(exc)
        raise OpError(message, 3 if why else 2 if exc.refused else 1) from exc
    out = asdict(report)
    from agent.runner import names_changed

    names_changed()  # a new table: the planner knows it on the next turn
    if shown_as:
        out["file"] = shown_as
    return out


def tool_list() -> list[dict]:
    """Every registered tool with its JSON schema, example and the requests it answers (`northstar tools --json`)."""
    from tools import load_tools

    return [{"name": spec.name, "description": spec.description, "approval": spec.approval,
             "parameters": spec.json_schema(), "example": spec.example.model_dump(mode="json"),
             "requests": list(spec.requests)} for spec in load_tools().values()]
