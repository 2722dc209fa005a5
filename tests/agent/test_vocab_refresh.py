"""The planner's names and date facts stay those of a full read while a refresh reads only what changed (issue 19
goal 4): after this process names something the next step knows it, another process's change is seen within
vocab.TTL_S, and the step after a segment run or an audience scans no big table. Real demo warehouse, real tools."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent import vocab
from agent.context import Context
from agent.planners import briefing
from tools.registry import load_tools
from tools.warehouse import connect
from tools.warehouse import connection as connection_module


def reference(path) -> tuple:
    """The names as the pre-issue-19 loader read them: every query over the whole tables."""
    from tools.warehouse import data_end, table_names

    con = connect(path, migrate_schema=False)
    try:
        q = lambda sql: [r[0] for r in con.execute(sql).fetchall()]  # noqa: E731
        out = {
            "channel": sorted(set(q("SELECT DISTINCT channel FROM ad_spend")) | set(q(
                "SELECT DISTINCT channel FROM touchpoints WHERE touchpoint_id < 100000")) | {"email", "sms", "push"}),
            "experiment_id": q("SELECT experiment_id FROM experiments"),
            "experiment_name": dict(con.execute("SELECT lower(name), experiment_id FROM experiments").fetchall()),
            "segment": sorted(q("SELECT segment_name FROM customer_segments GROUP BY 1")),
            "segment_rows": dict(con.execute("SELECT segment_name, count(*) FROM customer_segments GROUP BY 1")
                                 .fetchall()),
            "segment_run": dict(con.execute(
                "SELECT s.segment_name, arg_max(s.run_id, coalesce(r.saved_at, TIMESTAMP '1970-01-01')) "
                "FROM (SELECT DISTINCT segment_name, run_id FROM customer_segments) s LEFT JOIN saved_runs r "
                "ON r.output_table = 'customer_segments' AND r.run_id = s.run_id GROUP BY 1").fetchall()),
            "audience": q("SELECT name FROM audiences ORDER BY created_at DESC LIMIT 50"),
            "user_table": [n for n in table_names(con) if n not in vocab.BY_NAME and n not in vocab.SYSTEM_TABLES],
            "campaign_id": q("SELECT campaign_id FROM campaigns UNION SELECT campaign_id FROM campaign_launches "
                             "ORDER BY 1"),
            "current": vocab.current_values(con, []),
        }
        return data_end(con), out
    finally:
        con.close()


def same_as_a_full_read(ctx) -> dict:
    today, got = vocab.today_and_vocab(ctx)
    ref_today, ref = reference(ctx.warehouse_path)
    assert today == ref_today
    rows = ref.pop("segment_rows")
    for key, value in ref.items():
        mine = sorted(got[key]) if key == "segment" else got[key]
        assert mine == value, key
    assert [rows[n] for n in got["segment"]] == sorted(rows.values(), reverse=True)  # most rows first
    return got


def sql_run(monkeypatch) -> list[str]:
    """Every statement the warehouse layer runs from now on."""
    seen: list[str] = []
    real = connection_module.SharedConnection.execute
    monkeypatch.setattr(connection_module.SharedConnection, "execute",
                        lambda self, query, parameters=None: seen.append(str(query)) or real(self, query, parameters))
    return seen


def facts_from_scratch(path) -> briefing.WarehouseFacts:
    con = connect(path, migrate_schema=False)
    try:
        return briefing._read_facts(con, {})[0]
    finally:
        con.close()


def opens(monkeypatch) -> list:
    """Every open of the warehouse from now on."""
    import tools.warehouse

    opened = []
    real = connection_module.connect
    monkeypatch.setattr(connection_module, "connect", lambda *a, **k: opened.append(1) or real(*a, **k))
    monkeypatch.setattr(tools.warehouse, "connect", connection_module.connect)
    return opened


def segment_run(path, **args) -> dict:
    con = connect(path, migrate_schema=False)
    try:
        return load_tools()["segment_customers"].run(con, {"method": "rfm", **args}).model_dump(mode="json")
    finally:
        con.close()


@pytest.fixture
def ctx(demo_copy) -> Context:
    vocab.invalidate()  # a cache left by another test's warehouse never matters: it is keyed by path, but be sure
    return Context(home=demo_copy)


def test_every_kind_of_change_is_seen_as_a_full_read_would_see_it(ctx, monkeypatch):
    path = ctx.warehouse_path
    same_as_a_full_read(ctx)
    first = segment_run(path)
    vocab.invalidate()
    names = same_as_a_full_read(ctx)
    assert set(names["segment_run"].values()) == {first["metrics"]["run_id"]}
    con = connect(path)
    # a run saved without a record (a loader, a script), an audience, a loaded table, a new experiment, a channel
    con.execute("INSERT INTO customer_segments SELECT 'legacy-run', customer_id, 'x', 'Ünïcode \"Quoted\" Few' "
                "FROM customers WHERE customer_id <= 3")
    con.execute("INSERT INTO audiences (audience_id, name, source, created_at) VALUES ('aud-1', 'Gold VIPs', "
                "'filter', now())")
    con.execute("CREATE TABLE store_visits AS SELECT 1 AS visit_id")
    con.execute("INSERT INTO experiments (experiment_id, name) VALUES ('EXP-NEW', 'Brand New Test')")
    con.execute("INSERT INTO ad_spend (date, channel, campaign_id, spend) SELECT max(date) + 1, 'podcast', "
                "'POD-1', 10 FROM ad_spend")
    con.close()
    vocab.invalidate()
    names = same_as_a_full_read(ctx)
    assert 'Ünïcode "Quoted" Few' in names["segment"] and names["segment_run"]['Ünïcode "Quoted" Few'] == "legacy-run"
    assert names["audience"][0] == "Gold VIPs" and "store_visits" in names["user_table"]
    assert "podcast" in names["channel"] and names["experiment_name"]["brand new test"] == "EXP-NEW"
    second = segment_run(path, as_of="2026-06-30")  # a newer run of the same segment names
    vocab.invalidate()
    names = same_as_a_full_read(ctx)
    assert names["segment_run"]["Champions"] == second["metrics"]["run_id"] != first["metrics"]["run_id"]
    con = connect(path)
    con.execute("DELETE FROM customer_segments WHERE run_id = ?", [second["metrics"]["run_id"]])
    con.close()
    vocab.invalidate()
    assert same_as_a_full_read(ctx)["segment_run"]["Champions"] == first["metrics"]["run_id"]


def test_the_step_after_a_segment_run_knows_its_names_without_opening_the_warehouse(ctx, monkeypatch):
    """The tool's result says what it saved: the cache takes it as it is, and it equals a full read."""
    vocab.today_and_vocab(ctx)
    result = segment_run(ctx.warehouse_path, as_of="2026-03-31")
    opened = opens(monkeypatch)
    vocab.invalidate("segment_customers", result, ctx.warehouse_path)
    _, names = vocab.today_and_vocab(ctx)
    assert opened == []
    assert names["segment_run"]["Champions"] == result["metrics"]["run_id"]
    assert same_as_a_full_read(ctx) == names  # (the full read opens the file, after the assertion above)


def test_a_result_that_saved_nothing_or_says_nothing_refreshes_or_changes_nothing(ctx):
    _, before = vocab.today_and_vocab(ctx)
    unsaved = {"metrics": {"run_id": "seg-x"}, "data": [{"segment_name": "Ghosts", "customers": 5}],
               "summary": "5 customers segmented … Membership was not saved (read-only)."}
    vocab.invalidate("segment_customers", unsaved, ctx.warehouse_path)
    assert "Ghosts" not in vocab.today_and_vocab(ctx)[1]["segment"]
    vocab.invalidate("segment_customers", {"summary": "odd"}, ctx.warehouse_path)  # nothing usable: a refresh
    assert vocab.today_and_vocab(ctx)[1] == before == same_as_a_full_read(ctx)


def test_a_refresh_after_small_changes_scans_no_big_table(ctx, monkeypatch):
    vocab.today_and_vocab(ctx)
    briefing.warehouse_facts(str(ctx.warehouse_path), 0)
    con = connect(ctx.warehouse_path)
    con.execute("INSERT INTO audiences (audience_id, name, source, created_at) VALUES ('aud-2', 'Lapsed', 'x', now())")
    con.execute("INSERT INTO experiments (experiment_id, name, start_date) VALUES ('EXP-9', 'Nine', DATE '2020-02-02')")
    con.close()
    seen = sql_run(monkeypatch)
    vocab.invalidate()
    assert vocab.today_and_vocab(ctx)[1]["audience"][0] == "Lapsed"
    facts = briefing.warehouse_facts(str(ctx.warehouse_path), 0)
    big = ("orders", "events", "touchpoints", "customer_segments", "ad_spend")
    scans = [s for s in seen if any(f"FROM {t}" in s or f'FROM "{t}"' in s for t in big) and "count(*) FROM" not in s]
    assert scans == [s for s in scans if "ad_spend" in s and "max(date)" in s]  # only the budget reader's window
    assert [s for s in seen if "min(" in s] == ['SELECT min("start_date")::DATE, max("start_date")::DATE '
                                                'FROM "experiments"']  # only the changed table's dates
    assert any(line.startswith("experiments 2020-02-02..") for line in facts.tables) and facts.start == "2020-02-02"
    assert facts == facts_from_scratch(ctx.warehouse_path)


def test_the_date_facts_follow_loads_and_stay_those_of_a_full_read(ctx):
    path = str(ctx.warehouse_path)
    before = briefing.warehouse_facts(path, 0)
    con = connect(ctx.warehouse_path)
    con.execute("INSERT INTO orders (order_id, customer_id, order_date, revenue) SELECT order_id + 10000000, "
                "customer_id, DATE '2027-01-15', revenue FROM orders LIMIT 1")
    con.execute("CREATE TABLE web_visits AS SELECT DATE '2023-05-01' AS day, 3 AS n")
    con.close()
    assert briefing.warehouse_facts(path, 0) == before  # cached within the window …
    vocab.invalidate()  # … and read again after this process changed names or tables
    after = briefing.warehouse_facts(path, 0)
    assert (after.start, after.end) == ("2023-05-01", "2027-01-15")  # user tables count, as canonical ones
    assert any(line.startswith("web_visits 2023-05-01..2023-05-01: day, n") for line in after.tables)
    assert after == facts_from_scratch(path)


def test_another_process_change_is_seen_within_the_ttl(ctx, monkeypatch):
    now = [1000.0 * vocab.TTL_S]
    monkeypatch.setattr(vocab, "_clock", lambda: now[0])
    vocab.today_and_vocab(ctx)
    subprocess.run([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute(\"INSERT "
                    "INTO audiences (audience_id, name, source, created_at) VALUES ('a9', 'From Elsewhere', 'x', "
                    "now())\"); c.close()", str(ctx.warehouse_path)], check=True)
    assert "From Elsewhere" not in vocab.today_and_vocab(ctx)[1]["audience"]  # cached …
    now[0] += vocab.TTL_S
    assert vocab.today_and_vocab(ctx)[1]["audience"][0] == "From Elsewhere"  # … for at most TTL_S


def test_what_a_row_count_cannot_see_is_read_again_after_full_s(ctx, monkeypatch):
    now = [1000.0 * vocab.FULL_S]
    monkeypatch.setattr(vocab, "_clock", lambda: now[0])
    vocab.today_and_vocab(ctx)
    con = connect(ctx.warehouse_path)
    con.execute("UPDATE ad_spend SET channel = 'radio' WHERE channel = 'video'")  # same rows, same columns
    con.close()
    vocab.invalidate()
    assert "radio" not in vocab.today_and_vocab(ctx)[1]["channel"]
    now[0] += vocab.FULL_S
    assert "radio" in same_as_a_full_read(ctx)["channel"]


def test_an_agent_turn_that_segments_is_known_on_the_next_turn(agent, agent_ctx):
    """Through the runner as it calls `invalidate` today (with or without the tool's result)."""
    agent.ask("How did search do last month?")
    out = agent.ask("Run an RFM analysis of the customer base")
    run = next(c for c in out["tool_calls"] if c["name"] == "segment_customers")["result"]["metrics"]["run_id"]
    _, names = vocab.today_and_vocab(agent_ctx)
    assert names["segment_run"]["Champions"] == run
    assert same_as_a_full_read(agent_ctx) == names


def test_the_date_facts_are_refreshed_on_the_vocabularys_open_and_follow_the_first_segment_run(ctx, monkeypatch):
    path = str(ctx.warehouse_path)
    window = int(briefing.time.monotonic() // briefing.TTL_S)
    assert any(line.startswith("customer_segments (empty):") for line in briefing.warehouse_facts(path, window).tables)
    vocab.today_and_vocab(ctx)
    first = segment_run(ctx.warehouse_path)
    opened = opens(monkeypatch)
    vocab.invalidate("segment_customers", first, ctx.warehouse_path)  # the table had no rows: the facts change
    vocab.today_and_vocab(ctx)
    assert opened == []
    facts = briefing.warehouse_facts(path, window)
    assert "customer_segments: run_id, customer_id, segment_id, segment_name" in facts.tables and len(opened) == 1
    vocab.invalidate()  # a refresh of the names reads the facts on the same open
    vocab.today_and_vocab(ctx)
    assert briefing.warehouse_facts(path, window) == facts and len(opened) == 2
    second = segment_run(ctx.warehouse_path, as_of="2026-05-31")
    vocab.invalidate("segment_customers", second, ctx.warehouse_path)  # more rows in a table without dates: no read
    vocab.today_and_vocab(ctx)
    assert briefing.warehouse_facts(path, window) == facts and len(opened) == 2
    assert facts == facts_from_scratch(path)
