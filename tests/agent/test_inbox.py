"""The approvals inbox: drafting ends the turn, the conversation goes on, each draft is decided on its own.

Driven through the real `openai` client against the scripted local model (tests/agent/realistic_openai.py), so the
drafts are exactly the ones scripted; the warehouse, the checkpoints, the inbox and the outbox are the real files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import date

import duckdb
import pytest

from agent.context import Context
from agent.runner import ApprovalError, Northstar, NotPermitted
from tests.agent.conftest import seed_churn_run
from tests.agent.realistic_openai import RealisticOpenAI, answer, call, calls
from tests.conftest import ROOT

ROLES = {"local": "approver", "ana": "approver", "cat": "approver", "ben": "analyst", "vic": "viewer"}
HIGH = {"name": "Winback High", "source": "churn", "risk_band": "high"}
MEDIUM = {"name": "Winback Medium", "source": "churn", "risk_band": "medium"}
SEPT = {"start": "2026-09-01", "end": "2026-09-30"}


@pytest.fixture
def model():
    with RealisticOpenAI() as fake:
        yield fake
        fake.check()


def agent(home, url: str) -> Northstar:
    return Northstar(Context(home=home, provider="openai", openai_api_key="sk-test", openai_base_url=url,
                             model="realistic-1", llm_deadline_s=15, as_of=date(2026, 9, 30), roles=dict(ROLES)))


def outbox(home) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT action_id, action, approved_by FROM outbox ORDER BY created_at").fetchall()
    finally:
        con.close()


def audiences(home) -> list[str]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT name FROM audiences ORDER BY name").fetchall()]
    finally:
        con.close()


def draft_two(ns: Northstar, model) -> dict:
    model.enqueue(calls(call("create_audience", HIGH), call("create_audience", MEDIUM)),
                  calls(call("create_audience", MEDIUM)),  # the planner asks for the deferred one again
                  answer("Both audiences are drafted and wait for an approver."))
    return ns.ask("Save the high and the medium risk churners as two audiences", user="ben")


def test_two_drafts_in_one_message_both_wait_and_each_is_decided_on_its_own(demo_copy, model):
    seed_churn_run(demo_copy)
    ns = agent(demo_copy, model.url)
    out = draft_two(ns, model)
    thread = out["thread_id"]
    waiting = out["pending_approvals"]
    assert [w["args"]["name"] for w in waiting] == ["Winback High", "Winback Medium"]
    assert len({w["id"] for w in waiting}) == 2 and all(w["status"] == "pending" for w in waiting)
    assert out["tool_calls"] == [] and outbox(demo_copy) == [], "drafting runs nothing"
    assert "It needs an approver's decision" in out["answer"] and waiting[0]["id"] in out["answer"]
    listed = ns.inbox("ana")
    assert {i["id"] for i in listed} == {w["id"] for w in waiting}
    request = listed[0]  # LangGraph's human-in-the-loop shape, so other inbox UIs can read it
    assert request["action_request"] == {"action": request["action"], "args": request["args"]}
    assert set(request["config"]) == {"allow_accept", "allow_edit", "allow_respond", "allow_ignore"}
    assert request["allowed_decisions"] == ["approve", "edit", "reject", "respond"] and request["description"]
    assert [i["id"] for i in ns.inbox("ben")] and ns.inbox("vic") == [], "analysts see their own, viewers none"

    high, medium = waiting
    with pytest.raises(NotPermitted, match="only an approver"):
        ns.decide(high["id"], "approve", user="ben")
    done = ns.decide(high["id"], "approve", user="ana")  # ana may not open ben's thread: only the outcome
    assert done["tool_calls"][0]["ok"] and "Winback High" in done["answer"] and "Winback Medium" not in done["answer"]
    assert [a for _, a, by in outbox(demo_copy)] == ["create_audience"]
    assert [i["id"] for i in ns.inbox("ana")] == [medium["id"]], "the other draft still waits"

    rejected = ns.decide(medium["id"], "reject", user="cat", message="Medium risk is next quarter's job")
    assert "rejected by cat" in rejected["answer"] and rejected["tool_calls"] == []
    assert audiences(demo_copy) == ["Winback High"] and len(outbox(demo_copy)) == 1
    with pytest.raises(ApprovalError, match="Nothing is waiting.*rejected by cat"):
        ns.decide(medium["id"], "approve", user="ana")

    seen = ns.result(thread, user="ben")  # each draft's outcome, picked by its id, in the thread it came from
    assert "Approved by ana" in seen["answer"] and "'Winback Medium' **was rejected by cat**" in seen["answer"]
    assert "next quarter" in seen["answer"] and seen["pending_approval"] is None
    said = [m["content"] for m in ns.history(thread, user="ben")]
    assert sum("Approved by ana" in m for m in said) == 1 and sum("rejected by cat" in m for m in said) == 1
    ns.close()


def test_reject_executes_nothing_and_the_thread_answers_while_a_draft_waits(demo_copy, model):
    seed_churn_run(demo_copy)
    ns = agent(demo_copy, model.url)
    model.enqueue(calls(call("create_audience", HIGH)), answer("Drafted for approval."),
                  calls(call("campaign_report", SEPT)), answer("Spend in September was {{-1.metrics.spend|k}}."))
    first = ns.ask("Save the high risk churners as an audience", user="ben")
    rid = first["pending_approval"]["id"]
    follow = ns.ask("How much did we spend in September?", thread_id=first["thread_id"], user="ben")
    assert follow["answer"].startswith("Spend in September was") and follow["grounded"] is True
    assert "waiting" not in follow["answer"].lower() and follow["pending_approval"] is None
    assert [p["id"] for p in follow["pending_approvals"]] == [rid], "the draft still waits, the thread goes on"

    out = ns.decide(first["thread_id"], "reject", user="ana")  # a thread id decides its oldest open draft
    assert out["request"]["id"] == rid and outbox(demo_copy) == [] and audiences(demo_copy) == []
    model.enqueue(answer("It was rejected, so nothing was created."))
    ns.ask("Was the audience created?", thread_id=first["thread_id"], user="ben")
    sent = json.dumps(model.requests[-1]["messages"])
    assert "rejected by ana" in sent, "a follow-up sees the outcome posted into the thread"
    ns.close()


CRASH_AFTER_EXECUTE = """
import os, sys
from pathlib import Path
import agent.inbox
from agent.context import Context
from agent.runner import Northstar

def killed(*args, **kwargs):  # the action ran and committed; the process dies before the inbox records it
    os._exit(17)

agent.inbox.Inbox.finish = killed
roles = {"local": "approver", "ana": "approver", "cat": "approver", "ben": "analyst", "vic": "viewer"}
Northstar(Context(home=Path(sys.argv[1]), roles=roles)).decide(sys.argv[2], "approve", user="ana")
"""


def test_a_crash_between_executing_and_recording_resumes_without_running_twice(demo_copy, model):
    seed_churn_run(demo_copy)
    ns = agent(demo_copy, model.url)
    model.enqueue(calls(call("create_audience", HIGH)), answer("Drafted for approval."))
    rid = ns.ask("Save the high risk churners as an audience", user="ben")["pending_approval"]["id"]
    crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_EXECUTE, str(demo_copy), rid], cwd=ROOT,
                             env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert crashed.returncode == 17, crashed.stderr[-2000:]
    before = outbox(demo_copy)
    assert len(before) == 1 and audiences(demo_copy) == ["Winback High"], "the action itself committed"
    (listed,) = ns.inbox("cat")
    assert listed["id"] == rid and listed["status"] == "executing" and listed["interrupted"]
    assert "approving resumes it" in listed["description"]

    for user in ("vic", "ben"):
        with pytest.raises(NotPermitted, match="only an approver can resume"):
            ns.decide(rid, "approve", user=user)
    with pytest.raises(ApprovalError, match="only be resumed by approving"):
        ns.decide(rid, "reject", user="cat")
    done = ns.decide(rid, "approve", user="cat")
    assert done["tool_calls"][0]["ok"] and outbox(demo_copy) == before, "replayed, not run again"
    assert audiences(demo_copy) == ["Winback High"] and ns.inbox("cat") == []
    assert ns.store.get(rid)["status"] == "done" and ns.store.get(rid)["decided_by"] == "ana"
    with pytest.raises(ApprovalError, match="Nothing is waiting"):
        ns.decide(rid, "approve", user="cat")
    ns.close()


def test_a_stopped_turn_leaves_the_thread_usable_and_streams_grounded_sentences_first(demo_copy, model):
    ns = agent(demo_copy, model.url)
    model.enqueue(calls(call("campaign_report", SEPT)),
                  answer("Spend in September was {{-1.metrics.spend|k}}. Revenue tripled to 9.9 million overnight. "
                         "That is all for now.", delay=0.02))
    events, first_delta, finished = [], [], []

    def on_event(event):
        events.append(event)
        if event["event"] == "answer_delta" and not first_delta:
            first_delta.append(time.monotonic())

    out = ns.ask("How did September go?", on_event=on_event)
    finished.append(time.monotonic())
    deltas = "".join(e["text"] for e in events if e["event"] == "answer_delta")
    assert deltas.startswith("Spend in September was") and "9.9" not in deltas, "only grounded sentences stream"
    assert first_delta[0] < finished[0] and "9.9" not in out["answer"]
    assert [e["event"] for e in events if e["event"].startswith("tool")] == ["tool_start", "tool_end"]
    assert next(e for e in events if e["event"] == "tool_end")["summary"], "each step carries its one-line summary"

    # a slow answer, stopped while it streams: the turn ends at once and the thread answers the next question
    model.enqueue(answer(" ".join(["Spend in September was {{-1.metrics.spend|k}}."] * 200), delay=0.05),
                  answer("Nothing else changed."))
    result: dict = {}
    streaming = threading.Event()

    def slow_turn():
        result.update(ns.ask("And again, slowly?", thread_id=out["thread_id"],
                             on_event=lambda e: e["event"] == "answer_delta" and streaming.set()))

    worker = threading.Thread(target=slow_turn)
    worker.start()
    assert streaming.wait(30), "the slow answer started streaming"
    started = time.monotonic()
    assert ns.cancel(out["thread_id"])
    worker.join(30)
    assert not worker.is_alive() and result["stopped"] is True and "Stopped" in result["answer"]
    assert time.monotonic() - started < 5, "stopping does not wait for the whole answer (200 sentences, 10 s+)"
    after = ns.ask("Anything else?", thread_id=out["thread_id"])
    assert after["answer"] == "Nothing else changed." and not after["stopped"]
    ns.close()


def test_two_approvers_at_once_run_the_action_once_and_respond_runs_nothing(demo_copy, model):
    seed_churn_run(demo_copy)
    ns = agent(demo_copy, model.url)
    out = draft_two(ns, model)
    high, medium = out["pending_approvals"]
    outcomes: list = []

    def click(user):
        try:
            outcomes.append(ns.decide(high["id"], "approve", user=user)["request"]["decided_by"])
        except ApprovalError as exc:
            outcomes.append(str(exc))

    clicks = [threading.Thread(target=click, args=(user,)) for user in ("ana", "cat", "ana", "cat")]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join(120)
    winners = [o for o in outcomes if o in ("ana", "cat")]
    assert len(winners) == 1 and sum("Nothing is waiting" in o for o in outcomes) == 3, outcomes
    assert len(outbox(demo_copy)) == 1 and audiences(demo_copy) == ["Winback High"]

    with pytest.raises(ApprovalError, match="respond needs a message"):
        ns.decide(medium["id"], "respond", user="ana")
    replied = ns.decide(medium["id"], "respond", user="ana", message="Make it top 500 by value first")
    assert replied["request"]["status"] == "responded" and "top 500" in replied["answer"]
    assert len(outbox(demo_copy)) == 1 and ns.inbox("ana") == []
    ns.close()


def test_stream_yields_each_step_then_the_result(demo_copy, model):
    model.enqueue(calls(call("campaign_report", SEPT)), answer("Spend in September was {{-1.metrics.spend|k}}."))
    ns = agent(demo_copy, model.url)
    events = list(ns.stream("How did September go?"))
    kinds = [e["event"] for e in events]
    assert kinds.index("tool_start") < kinds.index("tool_end") < kinds.index("answer_delta") < kinds.index("answer")
    assert kinds[-1] == "result" and events[-1]["result"]["answer"].startswith("Spend in September was")
    assert next(e for e in events if e["event"] == "answer_delta")["text"].startswith("Spend in September was")
    ns.close()
