"""The graph's nodes. Each takes (state, runtime) and returns a partial update; routers are pure functions."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from pydantic import ValidationError

from agent import control, grounding, guardrails
from agent.answer import compose_answer
from agent.context import Context
from agent.planners import PlanEnv, get_planner
from agent.planners.context_budget import tool_content
from agent.sanitize import safe_text, sanitize_answer
from agent.state import State
from tools.registry import ToolContext, ToolError, format_validation_error, load_tools
from tools.warehouse import WarehouseError, audit, connect

MAX_CALLS = 8


@contextmanager
def warehouse(ctx: Context):
    """A short-lived connection, so other processes (CLI, UI, Slack) can take their turn on the file. No migration
    check: the runner migrated the file when it started (the check is two catalog queries on every open)."""
    con = connect(ctx.warehouse_path, migrate_schema=False)
    try:
        yield con
    finally:
        con.close()


def _thread() -> str | None:
    from langgraph.config import get_config

    try:
        return get_config()["configurable"].get("thread_id")
    except Exception:  # outside a run (unit tests)
        return None


def _emit(event: dict) -> None:
    try:
        get_stream_writer()(event)
    except Exception:  # not streaming
        pass


def guard_input(state: State, runtime: Runtime[Context]) -> dict:
    verdict = guardrails.check_input(state["question"])
    update: dict = {"messages": [{"role": "user", "content": state["question"]}]}
    if verdict:
        with warehouse(runtime.context) as con:
            audit(con, "refusal", verdict.rule, user=state.get("user"), thread=_thread(),
                      args={"question": state["question"]}, outcome="blocked", detail=verdict.reason)
        update |= {"blocked": {"rule": verdict.rule, "reason": verdict.reason}, "answer": verdict.message()}
    return update


def plan(state: State, runtime: Runtime[Context]) -> dict:
    ctx = runtime.context
    tools = load_tools()
    if len(state.get("calls") or []) + len(state.get("drafts") or []) >= MAX_CALLS:
        return {"answer": compose_answer(state["calls"], state), "planned": []}
    env = plan_env(ctx, state)
    planner = get_planner("offline" if state.get("fallback") else state.get("provider", "offline"), ctx)
    stream = None
    if hasattr(planner, "on_text"):  # a model that streams: grounded sentences reach the interfaces as they come
        from agent.streaming import AnswerStream, grounding_check

        stream = planner.on_text = AnswerStream(_emit, grounding_check(state, ctx, env), _thread())
    step = planner.plan(state, tools, env)
    if stream is not None and (step.calls or step.fallback):
        stream.reset()  # what streamed was not the answer
    elif stream is not None:
        stream.finish()
    update: dict = {"planned": step.calls, "answer": step.answer}
    if step.agenda is not None:
        update["agenda"] = step.agenda
    if step.fallback:
        update["fallback"] = step.fallback
        with warehouse(ctx) as con:
            audit(con, "fallback", state.get("provider"), user=state.get("user"), thread=_thread(),
                      outcome="offline", detail=step.fallback)
    return update


def plan_env(ctx: Context, state: State) -> PlanEnv:
    from agent.vocab import today_and_vocab

    if ctx.as_of:
        return PlanEnv(today=ctx.as_of, load_vocab=lambda: today_and_vocab(ctx)[1], role=ctx.role_of(state.get("user")))
    today, vocab = today_and_vocab(ctx)
    return PlanEnv(today=today, load_vocab=lambda: vocab, role=ctx.role_of(state.get("user")))


def _record(call: dict, ok: bool, payload, started: float, home=None) -> tuple[dict, list[dict]]:
    done = {**call, "ok": ok, "ms": round(1000 * (time.perf_counter() - started), 1)}
    done["result" if ok else "error"] = payload
    content = (tool_content(guardrails.mask({k: v for k, v in payload.items() if k != "chart"}, home)) if ok
               else f"ERROR: {guardrails.mask_text(payload, home)}")
    messages = [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": call["id"], "type": "function",
                     "function": {"name": call["name"], "arguments": json.dumps(call["args"], default=str)}}]},
                {"role": "tool", "tool_call_id": call["id"], "content": content}]
    return done, messages


def execute(spec, call: dict, ctx: Context, tool_ctx: ToolContext) -> tuple[dict, list[dict]]:
    """Run one tool call; errors become a failed call the planner can explain, never a crash. A stop of the turn
    interrupts the call's DuckDB query (the call then fails as "stopped")."""
    started = time.perf_counter()
    _emit({"event": "tool_start", "name": call["name"], "args": call["args"]})
    try:
        with warehouse(ctx) as con, control.watching(tool_ctx.thread_id if not tool_ctx.request_id else None, con):
            result = spec.run(con, call["args"], tool_ctx).model_dump(mode="json")
            audit(con, "tool_call", call["name"], user=tool_ctx.user, thread=tool_ctx.thread_id,
                      args=call["args"], outcome="ok", detail=result["summary"][:500])
        done = _record(call, True, result, started, ctx.home)
    except (ValidationError, ToolError, WarehouseError) as exc:
        msg = format_validation_error(call["name"], exc) if isinstance(exc, ValidationError) else str(exc)
        with warehouse(ctx) as con:
            audit(con, "tool_call", call["name"], user=tool_ctx.user, thread=tool_ctx.thread_id,
                      args=call["args"], outcome="error", detail=msg)
        done = _record(call, False, msg, started, ctx.home)
    except Exception as exc:  # a bug in a tool must not take the conversation down: report it, log it
        stopped = control.cancelled(tool_ctx.thread_id) and not tool_ctx.request_id
        msg = (f"{call['name']} was stopped by the user before it finished" if stopped else
               f"internal error in {call['name']} ({type(exc).__name__}: {exc}); the team has been notified in the "
               "audit log")
        with warehouse(ctx) as con:
            audit(con, "tool_call", call["name"], user=tool_ctx.user, thread=tool_ctx.thread_id,
                      args=call["args"], outcome="stopped" if stopped else "crash", detail=msg)
        done = _record(call, False, msg, started, ctx.home)
    result = done[0].get("result") or {}
    _emit({"event": "tool_end", "name": call["name"], "ok": done[0]["ok"], "ms": done[0]["ms"],
           "summary": _one_line(result.get("summary") if done[0]["ok"] else done[0].get("error"))})
    if done[0]["ok"] and spec.names_things:
        from agent.vocab import invalidate

        invalidate(call["name"], result, ctx.warehouse_path)  # what it named: known at the next step
    return done


def _one_line(text: str | None, limit: int = 160) -> str:
    line = " ".join(str(text or "").split())
    cut = line.find(". ")
    line = line[: cut + 1] if 0 < cut < limit else line
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_tools(state: State, runtime: Runtime[Context]) -> dict:
    ctx, tools = runtime.context, load_tools()
    calls, messages, later = list(state.get("calls") or []), [], []
    tool_ctx = tool_context(ctx, state)
    for call in state.get("planned") or []:
        spec = tools.get(call["name"])
        if spec is None:
            done = _record(call, False, f"unknown tool {call['name']!r}", time.perf_counter(), ctx.home)
        elif spec.approval:
            later.append(call)
            continue
        else:
            done = execute(spec, call, ctx, tool_ctx)
        calls.append(done[0])
        messages += done[1]
    last = next(({"name": c["name"], "args": c["args"], **_run_of(c)} for c in reversed(calls)
                 if c.get("ok") and c["name"] in tools and not tools[c["name"]].approval), state.get("last_tool"))
    return {"calls": calls, "messages": messages, "planned": later, "last_tool": last}


def _run_of(call: dict) -> dict:
    """{"run_id": …} when the result saved a run (follow-up actions read it), else nothing."""
    run = (((call.get("result") or {}).get("metrics")) or {}).get("run_id")
    return {"run_id": run} if isinstance(run, str) and run else {}


def prepare_action(state: State, runtime: Runtime[Context]) -> dict:
    """Validate each drafted action and compute its preview once; a draft that passes goes to the approvals inbox
    (its own record, decided later by an approver) and the turn goes on. A draft that would fail goes back to
    the planner with the reason and never reaches an approver."""
    ctx, thread = runtime.context, _thread()
    calls, messages, drafts = list(state.get("calls") or []), [], list(state.get("drafts") or [])
    for call in state.get("planned") or []:
        request, failed = _draft(call, state, ctx, thread, len(drafts))
        if failed is not None:
            calls.append(failed[0])
            messages += failed[1]
            continue
        if thread:
            from agent.inbox import Inbox

            inbox = Inbox(ctx.checkpoints_path)
            inbox.add(request)
            if call.get("replaces"):  # the user changed the request before anyone decided it
                inbox.supersede(call["replaces"], request["id"], thread)
        drafts.append(request)
        _emit({"event": "draft", "id": request["id"], "action": request["action"],
               "description": request["description"]})
        note = {"request": request["id"], "status": "waiting for an approver", "description": request["description"],
                "note": "Nothing has been created, sent or changed yet; an approver decides and the outcome will be "
                        "posted in this conversation."}
        messages += _call_messages(call, "DRAFTED, NOT RUN: " + json.dumps(note, ensure_ascii=False))
    return {"calls": calls, "messages": messages, "planned": [], "drafts": drafts}


def _draft(call: dict, state: State, ctx: Context, thread: str | None,
           index: int) -> tuple[dict | None, tuple | None]:
    """(the approval request, None) or (None, the failed call and its messages)."""
    spec = load_tools()[call["name"]]
    started = time.perf_counter()
    try:
        if why := ctx.refusal(state.get("user"), "draft"):
            raise ToolError(why)
        params = spec.parse(call["args"])
        with warehouse(ctx) as con:
            preview = spec.preview(con, params, tool_context(ctx, state))
    except (ValidationError, ToolError, WarehouseError) as exc:
        msg = format_validation_error(call["name"], exc) if isinstance(exc, ValidationError) else str(exc)
        return None, _record(call, False, msg, started, ctx.home)
    preview["description"] = safe_text(preview["description"], ctx.link_hosts)
    blocking = [*(preview.get("problems") or []), *(preview.get("compliance") or [])]
    if preview.get("size") == 0:
        blocking.append("it would reach nobody (0 customers after consent exclusions)")
    if blocking:  # a draft that would fail goes back to the planner with the reason, never to an approver
        msg = f"{call['name']} was not sent for approval: " + "; ".join(map(str, blocking))
        return None, _record(call, False, msg, started, ctx.home)
    pinned = preview.pop("pinned", None) or {}  # e.g. "the latest run" resolved now, so approval acts on what was shown
    args = {**params.model_dump(mode="json"), **pinned}
    if args.get("run_id") and args["run_id"] not in json.dumps(preview, default=str):
        preview["run"] = args["run_id"]  # the approver sees which saved run the action reads
    from agent.inbox import ALLOWED, CONFIG, request_id

    rid = request_id(thread or "", state.get("turn") or 0, index, call)
    return {"id": rid, "call_id": call["id"], "thread_id": thread, "action": call["name"], "args": args,
            "description": preview["description"], "preview": preview, "risk": preview.get("risk", "medium"),
            "requested_by": state.get("user"), "requested_at": datetime.now().isoformat(timespec="seconds"),
            "action_request": {"action": call["name"], "args": args}, "config": dict(CONFIG),
            "allowed_decisions": list(ALLOWED)}, None


def _call_messages(call: dict, content: str) -> list[dict]:
    return [{"role": "assistant", "content": None, "tool_calls": [
                {"id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["args"], default=str)}}]},
            {"role": "tool", "tool_call_id": call["id"], "content": content}]


def tool_context(ctx: Context, state: State, **values) -> ToolContext:
    """What a tool may know of the run: home, user and role, thread, webhook and bounds."""
    user = values.pop("user", None) or state.get("user") or ctx.user
    return ToolContext(home=ctx.home, user=user, role=values.pop("role", None) or ctx.role_of(user),
                       thread_id=values.pop("thread_id", None) or _thread(), webhook_url=ctx.webhook_url,
                       max_budget_change=ctx.max_budget_change, query_memory_mb=ctx.query_memory_mb,
                       query_threads=ctx.query_threads, **values)


def drafted_line(request: dict) -> str:
    """How a draft is said in the answer (the approval hint is added by the runner while it waits)."""
    return f"◆ Drafted **{request['action']}** for approval (request `{request['id']}`): {request['description']}"


def guard_output(state: State, runtime: Runtime[Context]) -> dict:
    calls, drafts = state.get("calls") or [], state.get("drafts") or []
    answer = state.get("answer") or compose_answer(calls, state)
    if drafts and not calls and answer.strip() == "Nothing to report.":
        answer = ""  # the drafts are the answer
    grounded = True
    if not state.get("blocked") and answer:
        ctx = runtime.context
        drafted = [{"name": d["action"], "args": d["args"], "ok": False,  # evidence, never an executed action
                    "error": f"drafted, not run: {d['description']} {json.dumps(d['preview'], default=str)}"}
                   for d in drafts]
        seen = {**state, "calls": [*calls, *drafted]}
        evidence = grounding.thread_evidence(seen, ctx, plan_env(ctx, state), compose_answer(calls, state))
        verdict = grounding.check_answer(answer, evidence)
        answer, grounded = verdict.text, verdict.grounded
        if verdict.removed:
            with warehouse(ctx) as con:
                audit(con, "guardrail", "grounding", user=state.get("user"), thread=_thread(), outcome="repaired",
                      detail="; ".join(f"{r.reason}: {', '.join(r.figures)}" for r in verdict.removed)[:500])
        # after grounding: defanging a link or an IP address splits its numbers apart
        answer, notes = sanitize_answer(answer, [c.get("result") for c in calls if c.get("ok")],
                                        runtime.context.link_hosts)
        if notes:
            with warehouse(runtime.context) as con:
                audit(con, "guardrail", "safe_output", user=state.get("user"), thread=_thread(),
                      outcome="repaired", detail="; ".join(notes))
    answer = "\n\n".join(filter(None, [answer.strip(), *map(drafted_line, drafts)])) or "Nothing to report."
    _emit({"event": "answer", "text": answer})
    return {"answer": answer, "grounded": grounded, "messages": [{"role": "assistant", "content": answer}]}


# ---- routers -----------------------------------------------------------------------------------------------

def route_after_guard(state: State) -> Literal["plan", "guard_output"]:
    return "guard_output" if state.get("blocked") else "plan"


def route_after_plan(state: State) -> Literal["run_tools", "prepare_action", "guard_output"]:
    planned = state.get("planned") or []
    if not planned:
        return "guard_output"
    tools = load_tools()
    if all(tools.get(c["name"]) is not None and tools[c["name"]].approval for c in planned):
        return "prepare_action"
    return "run_tools"


def route_after_tools(state: State) -> Literal["prepare_action", "plan"]:
    return "prepare_action" if state.get("planned") else "plan"
