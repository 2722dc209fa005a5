"""Actions run exactly once per approved request, exclude non-consenting customers, and deliver to a webhook."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.agent.conftest import seed_churn_run
from tools.actions.audiences import AudienceParams, create_audience
from tools.actions.budgets import BudgetChange, update_budget
from tools.registry import ToolContext, ToolError
from tools.warehouse import connect


class Hook:
    def __init__(self, statuses):
        self.statuses, self.calls = list(statuses), []
        hook = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                hook.calls.append((self.headers.get("Idempotency-Key"),
                                   json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def _ctx(home, **kw):
    return ToolContext(home=home, user="ana", role="approver", thread_id="t-1", request_id="call-1", **kw)


def test_same_request_executes_once(demo_copy):
    seed_churn_run(demo_copy)
    con = connect(demo_copy / "warehouse.duckdb")
    first = create_audience(con, AudienceParams(name="Once"), _ctx(demo_copy))
    again = create_audience(con, AudienceParams(name="Once"), _ctx(demo_copy))  # e.g. resumed after a crash
    assert again.action_id == first.action_id
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM audiences").fetchone()[0] == 1
    size = con.execute("SELECT count(*) FROM audience_members").fetchone()[0]
    assert size == first.metrics["size"] > 0
    assert (demo_copy / "outbox" / f"audience_{first.action_id}.csv").read_text().count("\n") == size + 1


def test_webhook_retries_then_delivers_with_idempotency_key(demo_copy):
    seed_churn_run(demo_copy)
    hook = Hook([503, 200])
    con = connect(demo_copy / "warehouse.duckdb")
    res = create_audience(con, AudienceParams(name="Hooked"), _ctx(demo_copy, webhook_url=hook.url))
    status, attempts = con.execute("SELECT status, attempts FROM outbox").fetchone()
    assert (status, attempts) == ("delivered", 2) and res.metrics["delivery"] == "delivered"
    assert [k for k, _ in hook.calls] == [res.action_id, res.action_id]


def test_webhook_failure_is_recorded_and_outbox_stays_consistent(demo_copy):
    seed_churn_run(demo_copy)
    hook = Hook([400])
    con = connect(demo_copy / "warehouse.duckdb")
    create_audience(con, AudienceParams(name="Rejected by hook"), _ctx(demo_copy, webhook_url=hook.url))
    status, error = con.execute("SELECT status, last_error FROM outbox").fetchone()
    assert status == "failed" and "400" in error
    assert con.execute("SELECT count(*) FROM audiences").fetchone()[0] == 1  # the action itself stands


def test_budget_bound_and_failed_action_leaves_no_trace(demo_copy):
    con = connect(demo_copy / "warehouse.duckdb")
    with pytest.raises(ToolError, match="exceeds"):
        update_budget(con, BudgetChange(daily_budgets={"search": 1e6}), _ctx(demo_copy))
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM budget_plans").fetchone()[0] == 0
