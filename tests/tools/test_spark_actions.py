"""The actions on a Spark warehouse: what they save lands in the engine's tables, the same rows as on DuckDB for the
same inputs; governance state (outbox, audit log, approvals) stays in the home's local DuckDB file.

Each action runs through its execution path (`run_once`: the outbox key, the writes and the outbox row in one
transaction, the replay) with the same context on both engines, so the action ids, the audiences and the
randomised holdouts must be identical. One approval goes through the agent (ask → pending → approve) on Spark.
The world: tests/tools/spark_world.py (its own copy for this module; the parity suite never sees these writes).
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.tools.spark_world import rows, same, world
from tools import get_tool
from tools.registry import ToolContext

pytestmark = [pytest.mark.slow, pytest.mark.spark]
NOW = datetime(2026, 10, 1, 9, 30)
ENGINE_TABLES = ("audiences", "audience_members", "budget_plans", "campaign_launches", "campaign_members")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with world(tmp_path_factory.mktemp("actions"), "Spark's action suite") as (duck, spark, root):
        for con in (duck, spark):  # the same churn run on both (the model's own parity is the parity suite's)
            con.execute("""INSERT INTO churn_scores SELECT 'churn-seeded', customer_id, 0.9 - customer_id / 1e6,
                CASE WHEN customer_id % 3 = 0 THEN 'high' ELSE 'medium' END, 'seeded' FROM customers""")
        yield duck, spark, root


def _ctx(root, engine: str, request: str) -> ToolContext:
    return ToolContext(home=root / engine, user="ana", role="approver", thread_id=f"t-{request}",
                       request_id=request, now=NOW)


def act(pair, name: str, args: dict, request: str):
    """The action on DuckDB, then on Spark, with the same request: (DuckDB's result, Spark's)."""
    duck, spark, root = pair
    spec = get_tool(name)
    return spec.run(duck, args, _ctx(root, "duck", request)), spec.run(spark, args, _ctx(root, "spark", request))


def both(pair, sql: str, params=None) -> list[tuple]:
    """The query's rows, asserted identical on both engines."""
    duck, spark, _ = pair
    left, right = rows(duck, sql, params), rows(spark, sql, params)
    same(left, right, sql[:60])
    return left


def _export(root, engine: str, name: str) -> str:
    return (root / engine / "outbox" / name).read_text()


def _same_outcome(left, right) -> None:
    assert left.action_id == right.action_id
    same(left.summary, right.summary, "summary")
    same(json.loads(json.dumps(left.metrics, default=str)), json.loads(json.dumps(right.metrics, default=str)),
         "metrics")


def test_create_audience_then_schedule_the_send(pair):
    duck, spark, root = pair
    left, right = act(pair, "create_audience", {"name": "At-risk “Q4” ünïcode", "source": "churn",
                                                "risk_band": "high", "top_n": 300}, "aud-1")
    _same_outcome(left, right)
    aid = right.metrics["audience_id"]
    members = both(pair, "SELECT customer_id, holdout FROM audience_members WHERE audience_id = ? ORDER BY 1", [aid])
    assert len(members) == right.metrics["size"] > 0 and all(h is None for _, h in members)
    both(pair, "SELECT audience_id, name, source, definition, size, excluded_no_consent, created_at, created_by, "
               "channel FROM audiences ORDER BY 1")
    export = right.metrics["export"]
    assert _export(root, "duck", export) == _export(root, "spark", export)
    # the send: consent checked again, a randomised holdout written onto the members (an UPDATE on Parquet)
    send = {"audience": "at-risk “q4” ünïcode", "channel": "email", "variant": "We miss you: 15% off your next order",
            "send_at": "2026-10-05T09:00:00", "holdout_pct": 0.2}
    left, right = act(pair, "schedule_campaign", send, "send-1")
    _same_outcome(left, right)
    arms = both(pair, "SELECT customer_id, holdout FROM audience_members WHERE audience_id = ? ORDER BY 1", [aid])
    held = sum(1 for _, h in arms if h)
    assert held == right.metrics["holdout"] and 0.12 < held / len(arms) < 0.28
    assert _export(root, "duck", right.metrics["export"]) == _export(root, "spark", right.metrics["export"])
    assert {int(line.split(",")[0]) for line in _export(root, "spark", right.metrics["export"]).splitlines()[1:]} \
        == {c for c, h in arms if h is False}  # the holdout is never in the export


def test_budget_change(pair):
    duck, spark, root = pair
    from tools.actions.budgets import current_budgets

    current = current_budgets(duck)
    same(current, current_budgets(spark), "current budgets")
    change = {"daily_budgets": {"search": round(current["search"] * 1.1, 2), "social": round(current["social"] * 0.9)}}
    left, right = act(pair, "update_budget", change, "budget-1")
    _same_outcome(left, right)
    plans = both(pair, "SELECT plan_id, channel, previous_daily_budget, daily_budget, effective_date, created_at, "
                       "created_by FROM budget_plans ORDER BY 1, 2")
    assert [p[1] for p in plans] == ["search", "social"]
    same(current_budgets(duck), current_budgets(spark), "budgets after the plan")  # the plan is read back
    assert current_budgets(spark)["search"] == change["daily_budgets"]["search"]


def test_launch_campaign_after_a_crash_then_measure_it(pair, monkeypatch):
    """The engine's writes follow the local transaction: a failure after the members were written leaves no
    audience, member or campaign in Spark and no outbox row. The retry then creates once, the same rows as on
    DuckDB; a replay writes nothing; the launched campaign is measured alike on both."""
    duck, spark, root = pair
    import tools.actions.campaigns as campaigns
    from tools.warehouse.demo.campaigns import simulate_outcomes

    launch = {"goal": "win_back", "offer": "15% off", "channel": "email", "holdout_pct": 0.15, "top_n": 500,
              "run_id": "churn-seeded", "send_at": "2026-09-01T09:00:00"}
    counts = ("SELECT (SELECT count(*) FROM campaign_launches), (SELECT count(*) FROM campaign_members), "
              "(SELECT count(*) FROM audiences), (SELECT count(*) FROM audience_members)")
    before, outbox = rows(spark, counts)[0], spark.local.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def crash(*a, **k):
        raise RuntimeError("power cut after the members were written")

    with monkeypatch.context() as m:
        m.setattr(campaigns, "export_csv", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            get_tool("launch_campaign").run(spark, launch, _ctx(root, "spark", "launch-1"))
    assert rows(spark, counts)[0] == before
    assert spark.local.execute("SELECT count(*) FROM outbox").fetchone()[0] == outbox
    assert not [p for p in (root / "spark" / "spark").iterdir() if p.name.startswith(".")]  # nothing left aside

    left, right = act(pair, "launch_campaign", launch, "launch-1")
    _same_outcome(left, right)
    again = get_tool("launch_campaign").run(spark, launch, _ctx(root, "spark", "launch-1"))
    assert again.action_id == right.action_id and again.summary == right.summary
    cid = right.metrics["campaign_id"]
    members = right.metrics["recipients"] + right.metrics["holdout"]
    assert rows(spark, counts)[0] == (before[0] + 1, before[1] + members, before[2] + 1, before[3] + members)
    both(pair, "SELECT * FROM campaign_launches WHERE campaign_id = ?", [cid])
    arms = both(pair, "SELECT customer_id, arm FROM campaign_members WHERE campaign_id = ? ORDER BY 1", [cid])
    assert len(arms) == members and 0.08 < sum(a == "holdout" for _, a in arms) / members < 0.22
    assert _export(root, "duck", right.metrics["export"]) == _export(root, "spark", right.metrics["export"])
    # the window's orders (the same seed on both), then the measurement of this launched campaign
    for con in (duck, spark):
        simulate_outcomes(con, cid, true_lift=0.05, seed=3)
    both(pair, "SELECT count(*), sum(revenue) FROM orders WHERE order_date >= DATE '2026-09-01'")
    left, right = (get_tool("measure_campaign").run(c, {"campaign_id": cid, "until": "2026-10-15"})
                   for c in (duck, spark))
    same(left.summary, right.summary, "measure.summary")
    same(left.data, right.data, "measure.data")
    same(left.metrics, right.metrics, "measure.metrics")
    assert left.metrics["conclusive"]
    both(pair, "SELECT campaign_id, measured_at, treated, holdout, lift FROM campaign_outcomes "
               "WHERE campaign_id = ?", [cid])


def test_governance_state_stays_local(pair):
    """Outbox rows (one per executed action) are in the home's DuckDB file, the action results in the engine."""
    duck, spark, root = pair
    sql = "SELECT action_id, action, status FROM outbox ORDER BY 1"
    on_duck = duck.execute(sql).fetchall()
    assert {a for _, a, _ in on_duck} == {"create_audience", "schedule_campaign", "update_budget", "launch_campaign"}
    assert spark.local.execute(sql).fetchall() == on_duck
    engine = root / "spark" / "spark"
    assert not (engine / "outbox").exists() and not (engine / "audit_log").exists()
    for table in ENGINE_TABLES:
        assert (engine / table).is_dir(), table
        assert not spark.local.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table


def test_an_approval_through_the_agent_on_spark(pair, monkeypatch):
    """ask → a pending create_audience → approve: the audience is written to Spark's tables, the approval and the
    outbox row to the local file; a second approval finds nothing waiting."""
    from agent.context import Context
    from agent.runner import Northstar

    duck, spark, root = pair
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", "spark:local[1]")
    ns = Northstar(Context(home=root / "spark", provider="offline", roles={"ben": "analyst", "ana": "approver"}))
    try:
        out = ns.ask("Save the high risk churners as an audience called 'Winback October'", user="ben")
        pending = out["pending_approval"]
        assert pending and pending["action"] == "create_audience", out
        assert not rows(spark, "SELECT count(*) FROM audiences WHERE name = 'Winback October'")[0][0]
        done = ns.decide(out["thread_id"], "approve", user="ana")
    finally:
        ns.close()
    call = [c for c in done["tool_calls"] if c["name"] == "create_audience"][0]
    assert call["ok"], call
    aid = call["result"]["metrics"]["audience_id"]
    size = rows(spark, "SELECT count(*) FROM audience_members WHERE audience_id = ?", [aid])[0][0]
    assert size == call["result"]["metrics"]["size"] > 0
    bad = rows(spark, """SELECT count(*) FROM audience_members m JOIN customers c USING (customer_id)
        WHERE m.audience_id = ? AND c.marketing_opt_in IS NOT TRUE""", [aid])[0][0]
    assert bad == 0
    assert spark.local.execute("SELECT status FROM outbox WHERE action_id = ?", [aid]).fetchall() == [("recorded",)]
    kinds = {r[0] for r in spark.local.execute("SELECT kind FROM audit_log").fetchall()}
    assert "approval" in kinds


def test_writes_and_ordered_lists_mean_the_same_on_spark(pair):
    """The statements the actions rely on, attacked on a scratch table: UPDATE (a subquery on the same table, NULL
    conditions), ordered lists (DESC, NULL keys), DROP of several tables, and a rolled-back transaction that
    appended, rewrote and dropped: every table as it was."""
    duck, spark, root = pair
    setup = ["CREATE TABLE scratch_a AS SELECT customer_id AS id, CASE WHEN customer_id IN (10, 15) THEN NULL "
             "ELSE customer_id % 13 * 100 + customer_id END AS k, 'v' || customer_id AS v FROM customers "
             "WHERE customer_id <= 40",
             "CREATE TABLE scratch_b AS SELECT * FROM scratch_a WHERE id <= 3"]
    steps = ["UPDATE scratch_a SET v = v || '!', k = k + 1 WHERE id IN (SELECT id FROM scratch_a WHERE id % 3 = 0)",
             "UPDATE scratch_a SET v = 'big' WHERE k > 900",  # NULL k: not updated
             "DELETE FROM scratch_a WHERE id = 40"]
    for con in (duck, spark):
        for sql in setup + steps:
            con.execute(sql)
    both(pair, "SELECT id, k, v FROM scratch_a ORDER BY id")
    both(pair, "SELECT id % 2 AS g, list(v ORDER BY k DESC), list(v ORDER BY k), list(id ORDER BY k NULLS FIRST), "
               "list(v ORDER BY id, k) FROM scratch_a GROUP BY 1 ORDER BY 1")
    before = rows(spark, "SELECT id, k, v FROM scratch_a ORDER BY id")
    spark.execute("BEGIN TRANSACTION")
    spark.execute("INSERT INTO scratch_a VALUES (1000, 1, 'new')")
    spark.execute("UPDATE scratch_a SET v = 'changed'")
    spark.execute("DROP TABLE scratch_b")
    assert rows(spark, "SELECT count(*) FROM scratch_a WHERE v = 'changed'")[0][0] == len(before) + 1
    spark.execute("ROLLBACK")
    assert rows(spark, "SELECT id, k, v FROM scratch_a ORDER BY id") == before
    assert rows(spark, "SELECT count(*) FROM scratch_b")[0][0] == 3
    assert not [p for p in (root / "spark" / "spark").iterdir() if p.name.startswith(".")]
    duck.execute("DROP TABLE scratch_a")
    duck.execute("DROP TABLE IF EXISTS scratch_b")
    spark.execute("DROP TABLE IF EXISTS scratch_a, scratch_b")  # several at once: Spark's DROP takes a list
    assert not (root / "spark" / "spark" / "scratch_a").exists() and not (root / "spark" / "spark" / "scratch_b").exists()


def test_a_home_from_before_keeps_its_audiences(pair, tmp_path):
    """Action results used to be kept in the home's DuckDB file on Spark warehouses: opening such a home moves
    them to the engine's tables, so the audiences and campaigns it made stay known."""
    from tools.warehouse import connect as duck_connect
    from tools.warehouse.backends import SparkBackend

    old = duck_connect(tmp_path / "warehouse.duckdb")  # the local file as such a home has it
    old.execute("INSERT INTO audiences (audience_id, name, created_at) VALUES ('A1', 'Old list', "
                "TIMESTAMP '2026-01-01 08:00:00')")
    old.execute("INSERT INTO audience_members VALUES ('A1', 7, NULL), ('A1', 9, true)")
    old.close()
    con = SparkBackend("local[1]").connect(tmp_path / "warehouse.duckdb")
    try:
        assert rows(con, "SELECT audience_id, name, created_at FROM audiences") == [
            ("A1", "Old list", datetime(2026, 1, 1, 8))]
        assert rows(con, "SELECT customer_id, holdout FROM audience_members ORDER BY 1") == [(7, None), (9, True)]
        assert (tmp_path / "spark" / "audience_members").is_dir()
    finally:
        con.close()
