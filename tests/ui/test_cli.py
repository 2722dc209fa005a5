import json

from tests.conftest import run_cli


def test_help_lists_commands():
    out = run_cli("--help", check=True).stdout
    for cmd in ("init", "load", "tables", "tools", "tool", "serve", "ask", "approvals", "approve"):
        assert cmd in out


def test_tools_json_has_schemas():
    tools = json.loads(run_cli("tools", "--json", check=True).stdout)
    names = {t["name"] for t in tools}
    assert "campaign_report" in names
    assert all(t["parameters"]["type"] == "object" for t in tools)


def test_init_demo_small_and_tables_json(tmp_path):
    home = tmp_path / "h"
    proc = run_cli("init", "--demo", "--customers", "2000", "--seed", "1", home=home, check=True)
    assert "Demo warehouse" in proc.stderr
    rows = json.loads(run_cli("tables", "--json", home=home, check=True).stdout)
    counts = {r["table"]: r["rows"] for r in rows}
    assert counts["customers"] == 2000 and counts["orders"] > 2000


def test_tables_without_warehouse_explains(tmp_path):
    proc = run_cli("tables", home=tmp_path / "empty")
    assert proc.returncode == 1 and "northstar init --demo" in proc.stderr


def test_home_from_env(tmp_path):
    home = tmp_path / "envhome"
    run_cli("init", env={"NORTHSTAR_HOME": str(home)}, check=True)
    assert (home / "warehouse.duckdb").exists()


def test_chat_answers_then_ends_on_empty_line(demo_copy):
    proc = run_cli("chat", home=demo_copy, input="How did our channels perform last month?\n\n")
    assert proc.returncode == 0, proc.stderr
    assert "campaign report" in proc.stdout and "ROAS" in proc.stdout


def test_ask_json_shape_and_bad_provider(demo_copy):
    out = json.loads(run_cli("ask", "Which campaigns had the best ROAS last month?", "--json", home=demo_copy,
                             check=True).stdout)
    assert set(out) >= {"thread_id", "provider", "answer", "tool_calls", "pending_approval", "blocked",
                        "grounded", "fallback"}
    assert out["tool_calls"][0]["name"] == "campaign_report" and out["grounded"] is True
    bad = run_cli("ask", "hi", "--provider", "gpt", home=demo_copy)
    assert bad.returncode == 2 and "--provider" in bad.stderr
