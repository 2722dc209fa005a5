"""The graph's nodes. Each takes (state, runtime) and returns a partial update; routers are pure functions."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import ValidationError

from agent import grounding, guardrails
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
    """A short-lived connection, so other processes (CLI, UI, Slack) can take their turn on the file."""
    con = connect(ctx.warehouse_path)
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
    if len(state.get("calls") or []) >= MAX_CALLS:
        return {"answer": compose_answer(state["calls"], state), "planned": []}
    env = plan_env(ctx, state)
    planner = get_planner("offline" if state.get("fallback") else state.get("provider", "offline"), ctx)
    step = planner.plan(state, tools, env)
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
    """Run one tool call; errors become a failed call the planner can explain, never a crash."""
    started = time.perf_counter()
    _emit({"event": "tool_start", "name": call["name"], "args": call["args"]})
    try:
        with warehouse(ctx) as con:
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
        msg = f"internal error in {call['name']} ({type(exc).__name__}: {exc}); the team has been notified in the audit log"
        with warehouse(ctx) as con:
            audit(con, "tool_call", call["name"], user=tool_ctx.user, thread=tool_ctx.thread_id,
                      args=call["args"], outcome="crash", detail=msg)
        done = _record(call, False, msg, started, ctx.home)
    _emit({"event": "tool_end", "name": call["name"], "ok": done[0]["ok"], "ms": done[0]["ms"]})
    if done[0]["ok"] and spec.names_things:
        from agent.vocab import invalidate

        invalidate()  # new audience or segment names: the planner should know them next turn
    return done


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
    last = next(({"name": c["name"], "args": c["args"]} for c in reversed(calls)
                 if c.get("ok") and not tools[c["name"]].approval), state.get("last_tool"))
    return {"calls": calls, "messages": messages, "planned": later, "last_tool": last}


def prepare_action(state: State, runtime: Runtime[Context]) -> dict:
    """Validate the drafted action and compute its preview once (resuming never repeats this)."""
    ctx, call = runtime.context, state["planned"][0]
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
        done, messages = _record(call, False, msg, started, ctx.home)
        return {"calls": [*(state.get("calls") or []), done], "messages": messages, "planned": []}
    preview["description"] = safe_text(preview["description"], ctx.link_hosts)
    blocking = [*(preview.get("problems") or []), *(preview.get("compliance") or [])]
    if preview.get("size") == 0:
        blocking.append("it would reach nobody (0 customers after consent exclusions)")
    if blocking:  # a draft that would fail goes back to the planner with the reason, never to an approver
        msg = f"{call['name']} was not sent for approval: " + "; ".join(map(str, blocking))
        done, messages = _record(call, False, msg, started, ctx.home)
        return {"calls": [*(state.get("calls") or []), done], "messages": messages, "planned": []}
    pinned = preview.pop("pinned", None) or {}  # e.g. "the latest run" resolved now, so approval acts on what was shown
    request = {"id": call["id"], "action": call["name"], "args": {**params.model_dump(mode="json"), **pinned},
               "description": preview["description"], "preview": preview, "risk": preview.get("risk", "medium"),
               "requested_by": state.get("user"), "requested_at": datetime.now().isoformat(timespec="seconds"),
               "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True}}
    return {"pending": request}


def tool_context(ctx: Context, state: State, **values) -> ToolContext:
    """What a tool may know of the run: home, user and role, thread, webhook and bounds."""
    user = values.pop("user", None) or state.get("user") or ctx.user
    return ToolContext(home=ctx.home, user=user, role=values.pop("role", None) or ctx.role_of(user),
                       thread_id=_thread(), webhook_url=ctx.webhook_url, max_budget_change=ctx.max_budget_change,
                       query_memory_mb=ctx.query_memory_mb, query_threads=ctx.query_threads, **values)


def approve(state: State, runtime: Runtime[Context]) -> dict:
    """Pause for a human. The decision arrives through Command(resume={type, user, args?})."""
    decision = interrupt(state["pending"])
    ctx = runtime.context
    # the runner checks first (role and four-eyes); this is the backstop
    if why := ctx.decision_refusal(decision.get("user"), decision["type"], state["pending"].get("requested_by")):
        decision = {"type": "reject", "user": decision.get("user"), "reason": why}
    with warehouse(ctx) as con:
        audit(con, "approval", state["pending"]["action"], user=decision.get("user"), thread=_thread(),
                  args=decision.get("args") or state["pending"]["args"], outcome=decision["type"],
                  detail=decision.get("reason") or decision.get("message"))
    return {"decision": decision}


def run_action(state: State, runtime: Runtime[Context]) -> dict:
    ctx, pending, decision = runtime.context, state["pending"], state["decision"]
    args = decision.get("args") if decision["type"] == "edit" and decision.get("args") else pending["args"]
    call = {"id": pending["id"], "name": pending["action"], "args": args}
    tool_ctx = tool_context(ctx, state, user=decision["user"], role="approver", request_id=pending["id"])
    done, messages = execute(load_tools()[pending["action"]], call, ctx, tool_ctx)
    return {"calls": [*(state.get("calls") or []), done], "messages": messages, "planned": [], "pending": None}


def guard_output(state: State, runtime: Runtime[Context]) -> dict:
    calls = state.get("calls") or []
    answer = state.get("answer") or compose_answer(calls, state)
    grounded = True
    if not state.get("blocked"):
        ctx = runtime.context
        evidence = grounding.thread_evidence(state, ctx, plan_env(ctx, state), compose_answer(calls, state))
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
    return {"answer": answer, "grounded": grounded, "pending": None,
            "messages": [{"role": "assistant", "content": answer}]}


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


def route_after_prepare(state: State) -> Literal["approve", "plan"]:
    return "approve" if state.get("pending") else "plan"


def route_after_approve(state: State) -> Literal["run_action", "guard_output"]:
    return "run_action" if (state.get("decision") or {}).get("type") in ("accept", "edit") else "guard_output"

