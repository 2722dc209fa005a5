"""Issue 13, finding 4: the outbox finishes its work. An action recorded but not delivered (the process died, or the
webhook was down for every attempt) is delivered later, exactly once, with the same Idempotency-Key on every
attempt; `northstar outbox` shows each item's status and attempts; every attempt is audited (finding 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from tests.agent.conftest import seed_churn_run
from tests.conftest import ROOT, run_cli
from tools.actions.audiences import AudienceParams, create_audience
from tools.actions.delivery import DeliveryPolicy, deliver_in_background, deliver_pending
from tools.registry import ToolContext
from tools.warehouse import connect

ROLES = {"NORTHSTAR_ROLES": "ana:approver,ben:analyst,vic:viewer"}
ASK = "Save the high risk churners as an audience called 'Winback October'"
FAST = DeliveryPolicy(max_attempts=3, base_delay_s=0.01, timeout_s=2.0)


class Webhook:
    """A local receiver that records every request (Idempotency-Key, body) and answers with the next status in
    `statuses` (200 when none are left) or, while `hang` is set, not at all until released."""

    def __init__(self, statuses=(), hang: bool = False, delay_s: float = 0.0):
        self.statuses, self.calls, self.answered = list(statuses), [], []
        self.hanging, self.release, self.delay_s = threading.Event(), threading.Event(), delay_s
        if hang:
            self.hanging.set()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.calls.append((self.headers.get("Idempotency-Key"), body))
                if hook.hanging.is_set():
                    hook.release.wait(60)
                    return  # the client is gone by now: no answer
                time.sleep(hook.delay_s)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.end_headers()
                hook.answered.append((self.headers.get("Idempotency-Key"), status))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def recover(self) -> None:
        self.hanging.clear()
        self.release.set()

    def wait_for(self, n: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls) < n:
            assert time.monotonic() < deadline, f"the webhook got {len(self.calls)} requests, expected {n}"
            time.sleep(0.05)

    def close(self) -> None:
        self.recover()
        self.server.shutdown()


@pytest.fixture
def webhook():
    made = []

    def make(*args, **kw) -> Webhook:
        made.append(Webhook(*args, **kw))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def _ctx(home, **kw) -> ToolContext:
    return ToolContext(home=home, user="ana", role="approver", thread_id="t-1", request_id="call-1", **kw)


def _rows(home: Path, sql: str, args=()) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(args)).fetchall()
    finally:
        con.close()


def _deliveries(home: Path) -> list[tuple]:
    """(attempt, outcome, detail) of every audited delivery attempt, in order."""
    return _rows(home, """SELECT (args::JSON->>'attempt')::INT, outcome, detail FROM audit_log
        WHERE kind = 'delivery' ORDER BY ts, (args::JSON->>'attempt')::INT""")


def test_kill_between_recording_and_delivery_then_deliver_exactly_once(demo_copy, webhook):
    """Acceptance: a subprocess approves with a webhook that hangs and is SIGKILLed while it waits; with the webhook
    back, `northstar outbox deliver` delivers the item exactly once, with the same Idempotency-Key."""
    seed_churn_run(demo_copy)
    hook = webhook(hang=True)
    env = {**ROLES, "NORTHSTAR_WEBHOOK_URL": hook.url, "NO_PROXY": "127.0.0.1,localhost"}
    asked = json.loads(run_cli("ask", ASK, "--user", "ben", "--json", home=demo_copy, env=env, check=True).stdout)
    cmd = [str(Path(sys.executable).parent / "northstar"), "--home", str(demo_copy), "approve", asked["thread_id"],
           "--user", "ana", "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        hook.wait_for(1)  # recorded and committed, first attempt in flight: the webhook holds it
    finally:
        proc.kill()
        proc.wait(30)
    [(aid, status, attempts, claimed_by)] = _rows(demo_copy, "SELECT action_id, status, attempts, claimed_by FROM outbox")
    assert (status, attempts) == ("delivering", 1) and claimed_by.endswith(f":{proc.pid}")
    assert _rows(demo_copy, "SELECT count(*) FROM audiences")[0][0] == 1  # the action itself committed

    hook.recover()
    out = run_cli("outbox", "deliver", "--json", home=demo_copy, env=env, check=True)
    [done] = json.loads(out.stdout)
    assert (done["action_id"], done["status"], done["attempts"]) == (aid, "delivered", 2)
    assert [key for key, _ in hook.calls] == [aid, aid]  # the lost attempt and the delivery: one key
    assert hook.answered == [(aid, 200)]  # delivered exactly once
    assert all(body["action_id"] == aid and body["action"] == "create_audience" for _, body in hook.calls)

    again = run_cli("outbox", "deliver", home=demo_copy, env=env, check=True)
    assert "Nothing waits" in again.stdout and len(hook.calls) == 2
    assert [(a, o) for a, o, _ in _deliveries(demo_copy)] == [(1, "interrupted"), (2, "delivered")]
    listed = json.loads(run_cli("outbox", "--json", home=demo_copy, env=env, check=True).stdout)
    assert [(r["action_id"], r["status"], r["attempts"], r["delivery"]) for r in listed] == [
        (aid, "delivered", 2, "delivered")]


def test_webhook_down_then_backoff_then_dead_then_revived(demo_copy, webhook):
    seed_churn_run(demo_copy)
    hook = webhook(statuses=[503] * 20)
    con = connect(demo_copy / "warehouse.duckdb")
    res = create_audience(con, AudienceParams(name="Down"), _ctx(demo_copy, webhook_url=hook.url))
    con.close()
    # at approval: three quick attempts, then the approver is told it is pending
    assert res.metrics["delivery"] == "pending delivery" and "Pending delivery" in res.summary
    assert "HTTP 503" in res.summary and "northstar outbox deliver" in res.summary
    env = {"NORTHSTAR_WEBHOOK_URL": hook.url, "NO_PROXY": "127.0.0.1,localhost"}
    started = time.monotonic()
    proc = run_cli("outbox", "deliver", "--max-attempts", "6", "--backoff", "0.05", "--json", home=demo_copy, env=env)
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    [done] = json.loads(proc.stdout)
    assert (done["status"], done["attempts"], done["last_error"]) == ("dead", 6, "HTTP 503 Service Unavailable")
    assert took > 0.05 + 0.1 + 0.2  # the waits between this run's three attempts: 0.05 s doubled each time
    assert {key for key, _ in hook.calls} == {res.action_id} and len(hook.calls) == 6
    assert [(a, o) for a, o, _ in _deliveries(demo_copy)] == [
        (1, "failed"), (2, "failed"), (3, "failed"), (4, "failed"), (5, "failed"), (6, "dead")]
    listed = run_cli("outbox", home=demo_copy, env=env, check=True).stdout
    assert res.action_id in listed and "dead" in listed and "503" in listed
    # dead items wait for a person: a plain run leaves them, --include-dead retries them once the webhook is fixed
    assert "Nothing waits" in run_cli("outbox", "deliver", home=demo_copy, env=env, check=True).stdout
    hook.statuses.clear()
    revived = json.loads(run_cli("outbox", "deliver", "--include-dead", "--json", home=demo_copy, env=env,
                                 check=True).stdout)
    assert [(r["status"], r["attempts"]) for r in revived] == [("delivered", 1)]
    assert len(hook.calls) == 7 and len([s for _, s in hook.answered if s == 200]) == 1


def test_refused_by_the_webhook_the_answer_says_failed(demo_copy, webhook):
    seed_churn_run(demo_copy)
    hook = webhook(statuses=[400])
    con = connect(demo_copy / "warehouse.duckdb")
    res = create_audience(con, AudienceParams(name="Refused"), _ctx(demo_copy, webhook_url=hook.url))
    assert res.metrics["delivery"] == "failed" and "Delivery failed after 1 attempt(s): HTTP 400" in res.summary
    assert con.execute("SELECT status, attempts FROM outbox").fetchone() == ("dead", 1)
    assert len(hook.calls) == 1  # a 4xx is not retried: the same request would be refused again


def test_recorded_without_a_webhook_is_delivered_later_once(demo_copy, webhook):
    seed_churn_run(demo_copy)
    con = connect(demo_copy / "warehouse.duckdb")
    res = create_audience(con, AudienceParams(name="Later"), _ctx(demo_copy))
    con.close()
    assert res.metrics["delivery"] == "pending delivery" and "no webhook is configured" in res.summary
    hook = webhook()
    ctx = _ctx(demo_copy, webhook_url=hook.url)
    assert [(d["action_id"], d["status"]) for d in deliver_pending(ctx, FAST)] == [(res.action_id, "delivered")]
    assert deliver_pending(ctx, FAST) == [] and [k for k, _ in hook.calls] == [res.action_id]
    # replaying the approved request (a resumed turn) neither runs it again nor posts it again
    con = connect(demo_copy / "warehouse.duckdb")
    again = create_audience(con, AudienceParams(name="Later"), ctx)
    assert again.metrics["delivery"] == "delivered" and len(hook.calls) == 1
    assert con.execute("SELECT count(*) FROM audiences").fetchone()[0] == 1


def test_concurrent_deliverers_post_each_item_once(demo_copy, webhook):
    """The UI's start-up delivery and an operator's `outbox deliver` at the same time: one claim wins per item."""
    seed_churn_run(demo_copy)
    con = connect(demo_copy / "warehouse.duckdb")
    ids = [create_audience(con, AudienceParams(name=f"Batch {i}", top_n=10 + i), _ctx(demo_copy)).action_id
           for i in range(4)]
    con.close()
    hook = webhook(delay_s=0.3)
    ctx = _ctx(demo_copy, webhook_url=hook.url)
    workers = [threading.Thread(target=deliver_pending, args=(ctx, FAST)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(k for k, _ in hook.calls) == sorted(ids)
    assert _rows(demo_copy, "SELECT DISTINCT status FROM outbox") == [("delivered",)]


def test_background_delivery_never_blocks_start_up(demo_copy, webhook, monkeypatch):
    """The web UI and the Slack bot start delivering what waits in a thread, then serve at once."""
    seed_churn_run(demo_copy)
    con = connect(demo_copy / "warehouse.duckdb")
    aid = create_audience(con, AudienceParams(name="At start"), _ctx(demo_copy)).action_id
    con.close()
    hook = webhook(hang=True)
    from agent.context import Context

    ctx = Context(home=demo_copy, webhook_url=hook.url)
    started = time.monotonic()
    thread = deliver_in_background(ctx, FAST)
    assert time.monotonic() - started < 0.5 and thread.daemon
    hook.wait_for(1)
    hook.recover()
    thread.join(30)
    assert not thread.is_alive() and _rows(demo_copy, "SELECT status FROM outbox") == [("delivered",)]
    assert hook.answered[-1] == (aid, 200)

    import ui.slack_bot as slack_bot

    served = []
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setattr(slack_bot, "deliver_in_background", lambda c: served.append(("delivery", c)))
    monkeypatch.setattr(slack_bot, "build_app", lambda c, **kw: None)
    monkeypatch.setattr(slack_bot, "http_app", lambda app: None)
    monkeypatch.setattr("uvicorn.run", lambda *a, **kw: served.append(("serve", None)))
    slack_bot.run_http(ctx, port=0)
    assert served == [("delivery", ctx), ("serve", None)]


def test_gradio_launch_starts_delivery(demo_copy, monkeypatch):
    import gradio as gr

    import tools
    import ui.gradio_app as gradio_app
    from agent.context import Context

    calls = []
    monkeypatch.setattr(tools, "deliver_in_background", lambda c: calls.append("delivery"), raising=False)
    monkeypatch.setattr(gradio_app, "build_app", lambda ctx, logins=None: gr.Blocks())
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: calls.append("serve"))
    gradio_app.launch(Context(home=demo_copy))
    assert calls == ["delivery", "serve"]


def test_a_broken_webhook_url_fails_the_delivery_not_the_action(demo_copy):
    seed_churn_run(demo_copy)
    con = connect(demo_copy / "warehouse.duckdb")
    res = create_audience(con, AudienceParams(name="Bad URL"), _ctx(demo_copy, webhook_url="http://[::1"))
    assert res.metrics["delivery"] == "failed" and "not a usable http(s) URL" in res.summary
    assert con.execute("SELECT status, attempts FROM outbox").fetchone() == ("dead", 1)
    assert con.execute("SELECT count(*) FROM audiences").fetchone()[0] == 1


def test_outbox_commands_explain_themselves(demo_copy):
    env = {**ROLES, "NORTHSTAR_WEBHOOK_URL": "http://127.0.0.1:9/hook"}
    assert "The outbox is empty" in run_cli("outbox", home=demo_copy, check=True).stdout
    bad = run_cli("outbox", "--status", "lost", home=demo_copy)
    assert bad.returncode == 2 and "recorded, delivering, delivered, failed, dead" in bad.stderr
    viewer = run_cli("outbox", "deliver", "--user", "vic", home=demo_copy, env=env)
    assert viewer.returncode == 3 and "only an approver" in viewer.stderr
    unset = run_cli("outbox", "deliver", home=demo_copy, env={"NORTHSTAR_WEBHOOK_URL": ""})
    assert unset.returncode == 2 and "NORTHSTAR_WEBHOOK_URL" in unset.stderr
