"""Roles on every path (issue 13, finding 8) and the audit of approvals and resumes (finding 10).

Each test reproduces an attack that worked before: resuming a crashed approved action as a viewer, approving
one's own draft, and reading another user's thread, from the runner, the web UI's handlers and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from agent.context import Context
from tests.agent.conftest import seed_churn_run
from tests.conftest import ROOT, run_cli

ROLES = {"local": "approver", "ana": "approver", "cat": "approver", "ben": "analyst", "vic": "viewer"}
ROLES_ENV = {"NORTHSTAR_ROLES": "ana:approver,cat:approver,ben:analyst,vic:viewer"}
ASK = "Save the high risk churners as an audience called 'Winback October'"
SEGMENT_AND_SAVE = "Segment our customers and save the champions as an audience called 'Champs'"
CAMPAIGNS = "How did our channels perform last month?"

CRASH_MID_ACTION = """
import os, sys
from pathlib import Path
import agent.nodes
from agent.context import Context
from agent.runner import Northstar

def killed(*args, **kwargs):  # the process dies after the approval, before the action runs
    os._exit(17)

agent.nodes.execute = killed
Northstar(Context.from_env(home=Path(sys.argv[1]))).decide(sys.argv[2], "approve", user="ana")
"""


@pytest.fixture
def ns(demo_copy):
    from agent.runner import Northstar

    agent = Northstar(Context(home=demo_copy, roles=dict(ROLES)))
    yield agent
    agent.close()


def _outbox(home: Path) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT action, status FROM outbox").fetchall()
    finally:
        con.close()


def _audit(home: Path, *kinds: str) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT kind, name, user_id, thread_id, outcome, detail FROM audit_log "
                           f"WHERE kind IN ({', '.join('?' * len(kinds))}) ORDER BY ts", list(kinds)).fetchall()
    finally:
        con.close()


def _login(user: str) -> SimpleNamespace:
    return SimpleNamespace(username=user)  # what Handlers.user_of reads from gr.Request


# ---- resuming a turn that a crash interrupted ---------------------------------------------------------------

def test_resuming_a_crashed_approved_action_needs_an_approver_and_is_audited(ns, demo_copy):
    from agent.runner import ApprovalError, NotPermitted

    seed_churn_run(demo_copy)
    thread = ns.ask(ASK, user="ben")["thread_id"]
    crashed = subprocess.run([sys.executable, "-c", CRASH_MID_ACTION, str(demo_copy), thread], cwd=ROOT,
                             env={**__import__("os").environ, **ROLES_ENV}, capture_output=True, text=True,
                             timeout=300)
    assert crashed.returncode == 17, crashed.stderr
    (request,) = ns.store.of_thread(thread)  # the draft's own record: executing when the process died
    assert request["status"] == "executing" and request["interrupted"]
    assert _outbox(demo_copy) == []

    for user in ("vic", "ben", "mallory"):  # before the fix, any of them carried the approved action out
        with pytest.raises(NotPermitted, match="only an approver can resume"):
            ns.decide(thread, "approve", user=user)
    assert _outbox(demo_copy) == [], "a refused resume changes nothing"
    (listed,) = ns.pending(user="cat")  # approvers find it among the requests; approving resumes it
    assert listed["thread_id"] == thread and listed["interrupted"] and "approving resumes it" in listed["description"]
    assert ns.pending(user="vic") == []
    with pytest.raises(ApprovalError, match="can only be resumed"):
        ns.decide(thread, "reject", user="cat")

    done = ns.decide(thread, "approve", user="cat")
    assert _outbox(demo_copy) == [("create_audience", "recorded")] and ns.pending(user="cat") == []
    assert [c["name"] for c in done["tool_calls"]] == ["create_audience"] and done["tool_calls"][0]["ok"]
    resumes = [(user, outcome) for _k, _n, user, tid, outcome, _d in _audit(demo_copy, "resume") if tid == thread]
    assert resumes == [("vic", "refused"), ("ben", "refused"), ("mallory", "refused"), ("cat", "started"),
                       ("cat", "ok")]
    approvals = [(user, outcome) for _k, _n, user, _t, outcome, _d in _audit(demo_copy, "approval")]
    assert approvals == [("ana", "accept")], "the decision itself was audited before the crash"


# ---- four eyes ----------------------------------------------------------------------------------------------

def test_the_drafter_cannot_approve_their_own_action(ns, demo_copy):
    from agent.runner import NotPermitted

    seed_churn_run(demo_copy)
    thread = ns.ask(ASK, user="ana")["thread_id"]
    with pytest.raises(NotPermitted, match="four-eyes"):
        ns.decide(thread, "approve", user="ana")
    with pytest.raises(NotPermitted, match="four-eyes"):
        ns.decide(thread, "edit", user="ana", args={"risk_band": "medium"})
    assert _outbox(demo_copy) == [] and ns.result(thread, user="ana")["pending_approval"]
    done = ns.decide(thread, "approve", user="cat")
    assert done["tool_calls"][-1]["ok"] and _outbox(demo_copy) == [("create_audience", "recorded")]

    own = ns.ask("Save the medium risk churners as an audience called 'Second look'", user="ana")
    rejected = ns.decide(own["thread_id"], "reject", user="ana")  # stopping one's own draft is always allowed
    assert "rejected by ana" in rejected["answer"]
    decisions = [(user, outcome) for _k, _n, user, _t, outcome, _d in _audit(demo_copy, "approval")]
    assert decisions == [("ana", "refused"), ("ana", "refused"), ("cat", "accept"), ("ana", "reject")]
    assert all("four-eyes" in d for *_, outcome, d in _audit(demo_copy, "approval") if outcome == "refused")


def test_four_eyes_off_and_the_local_user_approve_their_own(demo_copy):
    from agent.runner import Northstar

    seed_churn_run(demo_copy)
    agent = Northstar(Context(home=demo_copy, roles=dict(ROLES), four_eyes="off"))
    try:
        thread = agent.ask(ASK, user="ana")["thread_id"]
        assert agent.decide(thread, "approve", user="ana")["tool_calls"][-1]["ok"]
    finally:
        agent.close()
    agent = Northstar(Context(home=demo_copy, roles=dict(ROLES)))  # the default: named users only
    try:
        thread = agent.ask("Save the medium risk churners as an audience called 'Local'")["thread_id"]
        assert agent.decide(thread, "approve")["tool_calls"][-1]["ok"], "the local CLI user works as before"
    finally:
        agent.close()
    assert len(_outbox(demo_copy)) == 2


def test_four_eyes_setting_and_look_alike_names():
    ctx = Context(roles={"ana": "approver", "ＡＮＡ": "approver", "local": "approver"})
    assert ctx.four_eyes == "named"
    assert "four-eyes" in ctx.decision_refusal("ＡＮＡ", "accept", "ana")  # full-width, upper case: same person
    assert "four-eyes" in ctx.decision_refusal("ana", "edit", " ana ")
    assert ctx.decision_refusal("ana", "reject", "ana") is None
    assert ctx.decision_refusal("local", "accept", "local") is None
    assert "only an approver" in ctx.decision_refusal("ben", "reject", "ana")
    on = Context.from_env({"NORTHSTAR_FOUR_EYES": " ON "})
    assert on.four_eyes == "on" and "four-eyes" in on.decision_refusal("local", "accept", "local")
    assert Context.from_env({"NORTHSTAR_FOUR_EYES": "off"}).decision_refusal("local", "accept", "local") is None
    with pytest.raises(ValueError, match="NORTHSTAR_FOUR_EYES"):
        Context.from_env({"NORTHSTAR_FOUR_EYES": "yes"})
    with pytest.raises(ValueError, match="four_eyes"):
        Context(four_eyes="yes")


# ---- private threads ----------------------------------------------------------------------------------------

def test_threads_are_private_and_approvers_see_requests_not_conversations(ns, demo_copy):
    from agent.runner import NotPermitted

    chat = ns.ask(CAMPAIGNS, user="ben")["thread_id"]
    drafted = ns.ask(SEGMENT_AND_SAVE, user="ben")
    action = drafted["thread_id"]
    assert [c["name"] for c in drafted["tool_calls"]] == ["segment_customers"] and drafted["pending_approval"]
    own = ns.ask(CAMPAIGNS, user="vic")["thread_id"]

    assert [t["thread_id"] for t in ns.threads(user="vic")] == [own]
    assert {t["thread_id"] for t in ns.threads(user="ben")} == {chat, action}
    assert ns.threads(user="ana") == []
    assert {t["thread_id"] for t in ns.threads()} == {chat, action, own}, "the local user keeps seeing all"
    for user, thread in (("vic", chat), ("ana", action), ("mallory", chat)):
        for read in (ns.history, ns.result):
            with pytest.raises(NotPermitted, match="belongs to another user"):
                read(thread, user=user)
    with pytest.raises(NotPermitted, match="belongs to another user"):
        ns.ask("and for email only?", thread_id=chat, user="vic")
    assert [m["content"] for m in ns.history(chat, user="ben") if m["role"] == "user"] == [CAMPAIGNS]

    assert ns.pending(user="vic") == [] and ns.pending(user="mallory") == []
    assert [p["thread_id"] for p in ns.pending(user="ben")] == [action]
    (request,) = ns.pending(user="ana")
    assert request["action"] == "create_audience" and request["args"]["name"] == "Champs"
    assert request["preview"] and request["requested_by"] == "ben" and request["requested_at"]
    assert "messages" not in request and "segmented" not in json.dumps(request)

    done = ns.decide(action, "approve", user="ana")  # the approver sees the action's outcome, not ben's analysis
    assert [c["name"] for c in done["tool_calls"]] == ["create_audience"] and done["tool_calls"][0]["ok"]
    assert "Champs" in done["answer"] and "segmented" not in done["answer"]
    full = ns.result(action, user="ben")
    assert [c["name"] for c in full["tool_calls"]] == ["segment_customers", "create_audience"]

    refusals = [(user, tid) for _k, name, user, tid, outcome, _d in _audit(demo_copy, "refusal")
                if name == "private_thread" and outcome == "refused"]
    assert ("vic", chat) in refusals and ("ana", action) in refusals and len(refusals) == 7


def test_web_ui_lists_and_opens_only_the_users_threads(demo_copy):
    from ui.gradio_handlers import Handlers

    seed_churn_run(demo_copy)
    h = Handlers(Context(home=demo_copy, roles=dict(ROLES)), logins={"ana": "a", "ben": "b", "vic": "v"})
    try:
        chat = h.ns.ask(CAMPAIGNS, user="ben")["thread_id"]
        action = h.ns.ask(ASK, user="ben")["thread_id"]

        def listed(method, user):
            return [value for _label, value in method(_login(user))["choices"]]

        assert set(listed(h.thread_list, "ben")) == {chat, action}
        assert listed(h.thread_list, "vic") == [] and listed(h.thread_list, "ana") == []
        assert h.thread_list()["choices"] == [], "before login nobody's threads are in the page"
        assert listed(h.pending_list, "vic") == []
        assert [h.ns.store.get(r)["thread_id"] for r in listed(h.pending_list, "ana")] == [action]
        assert h.pending_list()["choices"] == []

        opened = h.open_thread(chat, _login("vic"))
        text = json.dumps(opened[0])
        assert "belongs to another user" in text and CAMPAIGNS not in text and "ROAS" not in text
        assert opened[2] is None, "the refused thread does not become the session's thread"
        assert CAMPAIGNS in json.dumps(h.open_thread(chat, _login("ben"))[0])
        assert "belongs to another user" in json.dumps(h.open_thread(action, _login("ana"))[0])

        frames = list(h.ask("And for email only?", [{"role": "user", "content": "ben's chat"}], chat, None,
                            _login("vic")))
        assert frames[-1][2] not in (chat, None) and "ben's chat" not in json.dumps(frames[-1][0])
        assert len(h.ns.history(chat, user="ben")) == 2, "vic's question went to a new thread of vic's"

        card, args = h.show_pending(action, _login("ana"))
        assert "Requested by **ben**" in card and "Winback October" in args
        assert h.show_pending(action, _login("vic")) == (h.show_pending(None, _login("vic"))[0], "")

        refused = h.approve(action, "", [], None, None, _login("ben"))
        assert "only an approver" in refused[0]
        done = h.approve(action, "", [], None, None, _login("ana"))
        assert "Approved by ana" in done[0] and "Winback October" in done[0]
    finally:
        h.ns.close()
    decisions = [(user, outcome) for _k, _n, user, _t, outcome, _d in _audit(demo_copy, "approval")]
    assert decisions == [("ben", "refused"), ("ana", "accept")]
    trusted = Handlers(Context(home=demo_copy, roles=dict(ROLES)), logins={})  # one person, "Acting as" selector
    try:
        assert {value for _label, value in trusted.thread_list()["choices"]} == {chat, action, frames[-1][2]}
    finally:
        trusted.ns.close()


def test_cli_keeps_threads_private(demo_copy):
    seed_churn_run(demo_copy)
    chat = json.loads(run_cli("ask", CAMPAIGNS, "--user", "ben", "--json", home=demo_copy, env=ROLES_ENV,
                              check=True).stdout)["thread_id"]
    action = json.loads(run_cli("ask", ASK, "--user", "ben", "--json", home=demo_copy, env=ROLES_ENV,
                                check=True).stdout)["thread_id"]
    proc = run_cli("ask", "and for email only?", "--thread", chat, "--user", "vic", "--json", home=demo_copy,
                   env=ROLES_ENV)
    assert proc.returncode == 3 and "belongs to another user" in proc.stderr, proc.stdout[:500]
    proc = run_cli("chat", "--thread", chat, "--user", "vic", home=demo_copy, env=ROLES_ENV, input="and email?\n\n")
    assert proc.returncode == 3 and "belongs to another user" in proc.stderr, proc.stdout[:500]
    own = json.loads(run_cli("ask", "and for email only?", "--thread", chat, "--user", "ben", "--json",
                             home=demo_copy, env=ROLES_ENV, check=True).stdout)
    assert own["thread_id"] == chat, "the owner continues their thread"
    assert json.loads(run_cli("approvals", "--user", "vic", "--json", home=demo_copy, env=ROLES_ENV,
                              check=True).stdout) == []
    listed = json.loads(run_cli("approvals", "--user", "ana", "--json", home=demo_copy, env=ROLES_ENV,
                                check=True).stdout)
    assert [(r["thread_id"], r["requested_by"]) for r in listed] == [(action, "ben")]
    text = run_cli("approvals", "--user", "ana", home=demo_copy, env=ROLES_ENV, check=True).stdout
    assert "asked by ben" in text


# ---- the upload panel speaks the web UI's words ------------------------------------------------------------

def test_upload_passes_the_user_and_words_errors_for_the_web(demo_copy, tmp_path):
    from ui.gradio_handlers import Handlers

    header = "order_id,customer_id,order_date,revenue\n"
    h = Handlers(Context(home=demo_copy, roles=dict(ROLES)), logins={"ben": "b", "vic": "v"})
    try:
        dates = tmp_path / "orders.csv"
        dates.write_text(header + "900000001,1,31/03/2025,10\n")
        refused = h.upload(str(dates), "orders", "append", None, _login("ben"))
        assert "Nothing was loaded" in refused and "--" not in refused, refused
        assert "2025-03-31" in refused and "year-month-day" in refused
        clash = tmp_path / "again.csv"
        clash.write_text(header + "1,1,2025-03-31,10\n")
        refused = h.upload(str(clash), "orders", "append", None, _login("ben"))
        assert "already exist" in refused and "--mode" not in refused and "**replace** under Mode" in refused
        late = tmp_path / "late.csv"
        late.write_text(header + "900000002,1,9999-12-31,10\n")
        refused = h.upload(str(late), "orders", "append", None, _login("ben"))
        assert "9999-12-31" in refused and "--date-window" not in refused and "northstar load" not in refused

        bad = tmp_path / "bad.csv"
        bad.write_text(header + "".join(f"{900000100 + i},1,2025-03-31,{v}\n"
                                        for i, v in enumerate(["x", "10", "nan", "12", "oops"])))
        listed = h.upload(str(bad), "orders", "append", None, _login("ben"))
        items = [line for line in listed.splitlines() if line.startswith("- ")]
        assert len(items) == 3 and all(v in listed for v in ("'x'", "'nan'", "'oops'")), listed
        head, rows, fix = listed.split("\n\n")
        assert rows.splitlines() == items and "nothing was loaded" in head.lower() and fix.startswith("Fix"), (
            "the rows are one Markdown list; the fix after them is a paragraph, not a fourth row")
        assert "viewer" in h.upload(str(clash), "orders", "append", None, _login("vic"))
    finally:
        h.ns.close()
    loads = [(user, outcome) for _k, _n, user, _t, outcome, _d in _audit(demo_copy, "load")]
    assert loads == [("ben", "failed")] * 4 + [("vic", "refused")], "the upload names its user to the loader"
    from ui.gradio_handlers import web_wording

    assert web_wording("x: 'a' is not a date (or pass --date-format, e.g. '%d/%m/%Y')") == (
        "x: 'a' is not a date (year-month-day; the upload reads no other date format, so convert the column in "
        "your spreadsheet)")
