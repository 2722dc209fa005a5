import json

from tests.conftest import run_cli


def test_help_lists_commands():
    out = run_cli("--help", check=True).stdout
    for cmd in ("init", "load", "tables", "tools", "tool"):
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
