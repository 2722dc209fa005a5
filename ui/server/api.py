"""The JSON API under /api/v1: ask (plain or streamed as server-sent events), threads, approvals, tools, load.

Every route needs a bearer token (auth.py); the token names the user, whose role comes from NORTHSTAR_ROLES and
is checked by the agent, exactly as for the CLI, the web UI and Slack. Answers have the CLI's `--json` shapes.
Errors are `{"detail": message}` with 400 (bad input), 401 (token), 403 (role, four-eyes, another user's
thread), 404, 409 (nothing pending / thread busy with a decision), 422 (a file or tool run that failed), 500.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ui.server import sse
from ui.server.auth import AuthError, Caller
from ui.server.ops import OpError
from ui.server.turns import failure

bearer = HTTPBearer(auto_error=False, description="A token from NORTHSTAR_API_TOKENS (user:token pairs).")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def caller(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    header = request.headers.get("authorization") if creds is None else f"{creds.scheme} {creds.credentials}"
    try:
        return request.app.state.tokens.caller(header)
    except AuthError as exc:
        raise ApiError(401, str(exc)) from exc


Who = Annotated[Caller, Depends(caller)]
router = APIRouter(prefix="/api/v1", tags=["northstar"])


def _acting(who: Caller, user: str | None) -> str:
    try:
        return who.acting(user)
    except PermissionError as exc:
        raise ApiError(403, str(exc)) from exc


def _json(obj: Any, status: int = 200) -> JSONResponse:
    from tools import jsonable

    return JSONResponse(jsonable(obj), status_code=status)


def _state(request: Request):
    return request.app.state


class AskIn(BaseModel):
    question: str = Field(max_length=8000, description="The question, as a marketer would ask it.")
    thread_id: str | None = Field(None, max_length=128, description="Continue this thread (default: a new one).")
    user: str | None = Field(None, description="Ask as this user (the home's own token only).")


class DecideIn(BaseModel):
    decision: Literal["approve", "edit", "reject", "respond"] = Field(
        description="approve (run it), edit (run it with changed arguments), reject, or respond (send it back "
                    "to the requester with a message) — LangGraph's accept / edit / ignore / response.")
    args: dict | None = Field(None, description="For edit: the changed arguments (validated again).")
    message: str | None = Field(None, description="For respond (required) or reject: a note posted in the thread.")
    user: str | None = Field(None, description="Decide as this user (the home's own token only).")


class ToolIn(BaseModel):
    args: dict | str = Field(default_factory=dict,
                             description="The tool's arguments (GET /api/v1/tools has each schema); or as a JSON text.")
    user: str | None = None


def _asker(state, body: AskIn, user: str):
    from agent.runner import new_thread_id

    thread_id = body.thread_id or new_thread_id()
    return thread_id, lambda on_event: state.ns.ask(body.question, thread_id=thread_id, user=user, on_event=on_event)


@router.get("/whoami", summary="The user this token acts as, and their role")
def whoami(request: Request, who: Who) -> dict:
    return {"user": who.user, "role": _state(request).ctx.role_of(who.user), "may_act_as": who.may_act_as}


@router.post("/ask", summary="Ask a question and wait for the answer (the `northstar ask --json` shape)")
async def ask(request: Request, body: AskIn, who: Who):
    state = _state(request)
    thread_id, work = _asker(state, body, _acting(who, body.user))
    try:
        return _json(await state.turns.call(thread_id, work))
    except Exception as exc:  # noqa: BLE001
        raise ApiError(*failure(exc)) from exc


@router.post("/ask/stream", summary="Ask a question; steps, tokens and the answer as server-sent events",
             response_class=StreamingResponse, responses={200: {"content": {sse.MEDIA_TYPE: {}}}})
async def ask_stream(request: Request, body: AskIn, who: Who):
    state = _state(request)
    thread_id, work = _asker(state, body, _acting(who, body.user))
    return StreamingResponse(sse.frames(state.turns.stream(thread_id, work)), media_type=sse.MEDIA_TYPE,
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/threads", summary="The user's threads, newest first")
def threads(request: Request, who: Who, limit: int = 30, user: str | None = None):
    return _json(_state(request).ns.threads(limit=max(1, min(limit, 500)), user=_acting(who, user)))


@router.get("/threads/{thread_id}", summary="A thread: its latest turn and its conversation")
def thread(request: Request, thread_id: str, who: Who, user: str | None = None):
    from agent.runner import ApprovalError

    ns, user = _state(request).ns, _acting(who, user)
    try:
        turn, history = ns.result(thread_id, user=user), ns.history(thread_id, user=user)
    except ApprovalError as exc:  # another user's thread: 403
        raise ApiError(*failure(exc)) from exc
    if not history and not turn.get("answer"):
        raise ApiError(404, f"No thread {thread_id}; GET /api/v1/threads lists yours.")
    return _json({"turn": turn, "history": history})


@router.post("/threads/{thread_id}/cancel", summary="Stop the thread's running turn at its next step")
def cancel(request: Request, thread_id: str, who: Who, user: str | None = None):
    try:
        return {"thread_id": thread_id, "cancelled": _state(request).turns.cancel(thread_id, _acting(who, user))}
    except Exception as exc:  # noqa: BLE001 - another user's thread: 403
        raise ApiError(*failure(exc)) from exc


@router.get("/approvals", summary="The approvals inbox: drafts waiting for a decision (every thread's for an "
                                  "approver, your own threads' otherwise)")
def approvals(request: Request, who: Who, user: str | None = None, include_decided: bool = False):
    ns, user = _state(request).ns, _acting(who, user)
    return _json(ns.inbox(user=user, include_decided=include_decided) if include_decided else ns.pending(user=user))


@router.post("/approvals/{request_id}", summary="Approve, edit, reject or respond to a draft (its id, or a thread "
                                                "id for that thread's oldest open draft)")
async def decide(request: Request, request_id: str, body: DecideIn, who: Who):
    state, user = _state(request), _acting(who, body.user)
    work = lambda on_event: state.ns.decide(request_id, body.decision, user=user, args=body.args,  # noqa: E731
                                            message=body.message, on_event=on_event)
    try:
        return _json(await state.turns.call(f"decision:{request_id}", work))
    except Exception as exc:  # noqa: BLE001
        raise ApiError(*failure(exc)) from exc


@router.get("/tools", summary="The registered tools with their JSON schemas (`northstar tools --json`)")
def tools_list(who: Who):
    from ui.server.ops import tool_list

    return _json(tool_list())


@router.post("/tools/{name}", summary="Run one analytics tool (actions need ask + approval); audited")
def tool_run(request: Request, name: str, body: ToolIn, who: Who):
    from tools.warehouse import connect
    from ui.server.ops import run_tool

    state = _state(request)
    con = connect(state.ctx.warehouse_path)
    try:
        return _json(run_tool(state.ctx, con, name, body.args, _acting(who, body.user)))
    except OpError as exc:
        raise ApiError(exc.status, str(exc)) from exc
    finally:
        con.close()


@router.get("/tables", summary="The warehouse's tables with their kind and row count (`northstar tables --json`)")
def tables(request: Request, who: Who):
    from tools.warehouse import connect, table_summary

    con = connect(_state(request).ctx.warehouse_path)
    try:
        return _json(table_summary(con))
    finally:
        con.close()


@router.post("/load", summary="Load a CSV / TSV / Parquet / JSON file into a table (validated, all or nothing)")
def load(request: Request, who: Who, file: Annotated[UploadFile, File(description="The file to load.")],
         table: Annotated[str, Form()], mode: Annotated[str, Form(description="append or replace")] = "append",
         header: Annotated[bool, Form()] = True, columns: Annotated[str | None, Form()] = None,
         date_format: Annotated[str | None, Form()] = None, date_window: Annotated[str | None, Form()] = None,
         user: Annotated[str | None, Form()] = None):
    from tools.warehouse import connect
    from ui.server.ops import load as load_op

    state, user = _state(request), _acting(who, user)
    name = Path(file.filename or "upload.csv").name or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="northstar-upload-") as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        con = connect(state.ctx.warehouse_path)
        try:
            return _json(load_op(state.ctx, con, table, path, mode=mode, header=header, columns=columns,
                                 date_format=date_format, date_window=date_window, user=user,
                                 shown_as=file.filename or name))
        except OpError as exc:
            raise ApiError(exc.status, str(exc)) from exc
        finally:
            con.close()


def install(app) -> None:
    """Add the API's routes and its error shape to `app`."""
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    app.add_exception_handler(ApiError, api_error)
    app.include_router(router)
