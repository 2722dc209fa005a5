"""The agent's own cost, by structure (times are measured by bench/agent_bench.py, never asserted here): warming
up a server's agent plans without writing anything; the steps' connections skip the migration check and still
report a warehouse another process holds. (That an in-process `northstar ask` opens the file once is in
tests/ui/test_cli_startup.py.)"""

from __future__ import annotations

import pytest

from tools.warehouse import connect


def _rows(home, sql: str) -> int:
    con = connect(home / "warehouse.duckdb")
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_a_taken_warehouse_fails_the_turn_as_before_and_the_thread_goes_on(agent, agent_ctx):
    """When another process has the file, the turn's steps meet it and say so in words, and the thread answers
    once the file is free."""
    import subprocess
    import sys

    from tools.warehouse import WarehouseError

    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(120)", str(agent_ctx.warehouse_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseError, match="in use by process"):
            agent.ask("How did search do last month?", thread_id="t-taken")
    finally:
        holder.kill()
        holder.wait()
    out = agent.ask("How did search do last month?", thread_id="t-taken")
    assert [c["name"] for c in out["tool_calls"]] == ["campaign_report"] and out["tool_calls"][0]["ok"]
    assert any("failed" in m["content"] for m in agent.history("t-taken") if m["role"] == "assistant")


def test_warm_up_plans_without_writing_anything(agent, agent_ctx):
    audit_before = _rows(agent_ctx.home, "SELECT count(*) FROM audit_log")
    agent.warm_up()
    agent.warm_up("Which segment should we target with a win-back email?")  # an action's plan drafts nothing
    assert _rows(agent_ctx.home, "SELECT count(*) FROM audit_log") == audit_before
    assert agent.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0
    assert agent.threads() == [] and agent.pending() == []
    out = agent.ask("How did search do last month?")
    assert [c["name"] for c in out["tool_calls"]] == ["campaign_report"]


def test_warm_up_survives_a_broken_warehouse(agent, agent_ctx):
    """Best effort: a server starts even if planning fails; the first turn reports the problem."""
    con = connect(agent_ctx.warehouse_path)
    con.execute("DROP TABLE ad_spend")
    con.close()
    agent.warm_up()  # no exception


def test_a_turn_does_not_repeat_the_migration_check(agent, monkeypatch):
    """The runner migrates the warehouse when it is made; the turn's own opens (the tool call, its audit row) do not
    check again (two catalog queries on every open)."""
    import tools.warehouse.connection as connection

    checks = []
    real = connection.migrate
    monkeypatch.setattr(connection, "migrate", lambda con: checks.append(1) or real(con))
    out = agent.ask("How did search do last month?")
    assert [c["name"] for c in out["tool_calls"]] == ["campaign_report"] and out["tool_calls"][0]["ok"]
    assert checks == []
    connection.connect(agent.ctx.warehouse_path).close()  # the check itself still runs where it is asked for
    assert checks == [1]


def test_the_data_range_is_read_only_for_a_date_nothing_else_covers():
    """guard_output's evidence reads the warehouse's date range (a scan of every table's dates) lazily; the verdicts
    are those of the range read up front."""
    from dataclasses import replace

    from agent.grounding import check_answer
    from tests.agent.test_grounding import evidence

    eager = evidence("report_sep", questions=["How did September go?"])
    reads = []

    def read_range():
        reads.append(1)
        return eager.data_range

    answers = ["From September 1 to 30, 2026 spend was 104,132.",  # the result's own period: no read
               "Spend was 104,132 in September 2026, ROAS 2.66.",
               "Our data starts on 2024-10-01; September spend was 104,132.",  # only the range covers it
               "On 2027-03-01 spend will be 104,132.", "Back in 2017 ROAS was 2.66."]  # nothing covers these
    for i, answer in enumerate(answers):
        lazy = replace(eager, data_range=read_range)
        assert check_answer(answer, lazy) == check_answer(answer, eager), answer
        assert len(reads) == (0 if i < 2 else i - 1), (answer, reads)
    assert check_answer(answers[2], eager).grounded and not check_answer(answers[3], eager).grounded
    assert not check_answer(answers[2], replace(eager, data_range=lambda: None)).grounded  # no range, no cover


def test_the_bench_shows_where_the_slowest_turns_spend_their_overhead(demo_copy):
    """`python -m bench.agent_bench --profile N`: the graph's nodes run in worker threads, so they are profiled
    where they run; the N slowest turns carry each node call's ms and the project's functions by cumulative ms."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-m", "bench.agent_bench", "--home", str(demo_copy), "--questions", "3",
                           "--cold-runs", "0", "--profile", "1"], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    slowest = json.loads(proc.stdout)["slowest"]
    profile = slowest[0]["profile"]
    assert [name for name, _ in profile["nodes_ms"]][:2] == ["guard_input", "plan"]
    assert "run_tools" not in {name for name, _ in profile["nodes_ms"]}  # tool time is not overhead
    assert any("nodes.py" in line and "(plan)" in line for line in profile["top_cumulative_ms"])
    assert len(slowest) == 3 and all("profile" not in turn for turn in slowest[1:])


def test_a_server_loads_the_tools_libraries_first_and_its_warm_up_freezes_what_start_up_built(agent):
    """`northstar serve` imports the libraries the tools load on first use before it serves (in one thread: a
    background import racing a request's can raise Python's import-deadlock error), then warms up with
    freeze=True: the collector stops walking start-up's objects (full collections cost 90-145 ms in a turn)."""
    import gc
    import importlib
    import inspect
    import sys

    from tools.registry import ON_FIRST_USE, load_first_use
    from ui.server import app

    for module in ON_FIRST_USE:  # each name is a real module (a typo would silently import nothing)
        importlib.import_module(module)
    load_first_use()
    source = inspect.getsource(app.serve)
    assert source.index("load_first_use()") < source.index("create_app(")  # before any request can arrive
    agent.warm_up()
    assert gc.get_freeze_count() == 0  # tests and short commands never freeze: their garbage must still be freed
    try:
        agent.warm_up(freeze=True)
        assert gc.get_freeze_count() > 10_000 and set(ON_FIRST_USE) <= set(sys.modules)
    finally:
        gc.unfreeze()

