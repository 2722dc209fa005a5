"""The turn, as drawn in ARCHITECTURE.md:

message ─► guard_input ─► plan ─┬─► run_tools ─► plan ─► …
                                ├─► prepare_action (drafts go to the approvals inbox) ─► plan
                                └─► guard_output ─► answer

A drafted action does not stop the turn: it waits in the inbox (agent/inbox.py) and the runner executes it when an
approver decides, then posts the outcome into the thread.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from agent.context import Context
from agent.nodes import (
    guard_input,
    guard_output,
    plan,
    prepare_action,
    route_after_guard,
    route_after_plan,
    route_after_tools,
    run_tools,
)
from agent.state import State

builder = StateGraph(State, context_schema=Context)
builder.add_node(guard_input)
builder.add_node(plan)
builder.add_node(run_tools)
builder.add_node(prepare_action)
builder.add_node(guard_output)

builder.add_edge(START, "guard_input")
builder.add_conditional_edges("guard_input", route_after_guard)
builder.add_conditional_edges("plan", route_after_plan)
builder.add_conditional_edges("run_tools", route_after_tools)
builder.add_edge("prepare_action", "plan")
builder.add_edge("guard_output", END)


def compile_graph(checkpointer):
    """The graph with the given checkpointer (tests pass their own; the app uses SQLite under NORTHSTAR_HOME)."""
    return builder.compile(checkpointer=checkpointer)
