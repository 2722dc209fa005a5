"""What `northstar`'s fast paths load: structure, not time (times are measured by bench/agent_bench.py).

`northstar --help` must not import the agent's stack; `northstar ask` through a running server must not import
the agent in the client at all; an in-process `ask` opens the warehouse file once. Each probe runs the real CLI in
a fresh subprocess and reads `sys.modules` (and DuckDB's opens) at its exit. Servers here use 127.0.0.1 ports
18650–18699.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.ui.test_gradio_app import free_port_in

HEAVY = ("langgraph", "langchain_core", "langsmith", "chromadb", "scipy", "sklearn", "gradio", "pandas",
         "onnxruntime", "tokenizers", "duckdb", "pyspark", "fastapi", "uvicorn", "numpy")
"""Packages none of which `--help` needs (each costs from tens of ms to seconds to import)."""
AGENT = ("agent.runner", "agent.graph", "agent.nodes", "agent.planners", "tools.registry", "tools.warehouse")

PROBE = """
import atexit, json, sys
out = sys.argv.pop(1)
opens = []
if "--count-opens" in sys.argv:
    sys.argv.remove("--count-opens")
    import duckdb
    real = duckdb.connect
    def counted(database=":memory:", *args, **kwargs):
        opens.append(str(database))
        return real(database, *args, **kwargs)
    duckdb.connect = counted
atexit.register(lambda: open(out, "w").write(json.dumps({"modules": sorted(sys.modules), "opens": opens})))
sys.argv = ["northstar", *sys.argv[1:]]
from ui.cli.app import main
main()
"""


def probe(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    """Run `northstar ARGS` in a fresh interpreter; what it had imported (and opened) when it exited."""
    out = tmp_path / f"probe-{time.monotonic_ns()}.json"
    full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True, cwd=ROOT,
                          env=full_env, timeout=600)
    assert out.exists(), f"the probe wrote nothing (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text()), proc


def loaded(modules: list[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m in roots or m.startswith(tuple(r + "." for r in roots)))


@pytest.mark.parametrize("args", [("--help",), ("ask", "--help"), ("knowledge", "--help")])
def test_help_imports_no_agent_stack(tmp_path, args):
    seen, proc = probe(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert loaded(seen["modules"], HEAVY) == []
    assert loaded(seen["modules"], AGENT) == []


def test_the_probe_sees_what_a_command_imports(tmp_path):
    """The guard above could pass vacuously if the probe missed imports: an in-process command is seen loading
    the stack (`tools` lists the registry, so it imports tools.registry and pydantic)."""
    seen, proc = probe(tmp_path, "tools", "--json", env={"NORTHSTAR_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    assert "tools.registry" in seen["modules"] and "pydantic" in seen["modules"]


@pytest.fixture(scope="module")
def served(demo_home, tmp_path_factory):
    """The server's app (`create_app`, web UI left out) in a uvicorn thread, writing the home's server.json as
    `northstar serve` does, over a copy of the demo home."""
    import shutil

    import uvicorn

    from agent.context import Context
    from ui.server.app import create_app

    home = tmp_path_factory.mktemp("startup") / "home"
    shutil.copytree(demo_home, home)
    port = free_port_in(range(18650, 18700))
    url = f"http://127.0.0.1:{port}"
    app = create_app(Context(home=home, provider="offline"), url=url, web=False, environ={})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 120
    while not (server.started and (home / "server.json").exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield home, app
    finally:
        server.should_exit = True
        runner.join(timeout=30)


def test_ask_through_a_running_server_does_not_import_the_agent(served, tmp_path):
    home, app = served
    seen, proc = probe(tmp_path, "--home", str(home), "ask", "How did search do last month?", "--json",
                       env={"NORTHSTAR_SERVER": "", "NORTHSTAR_API_TOKEN": ""})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [c["name"] for c in out["tool_calls"]] == ["campaign_report"]
    assert out["thread_id"] in {t["thread_id"] for t in app.state.ns.threads()}  # the server ran the turn
    assert loaded(seen["modules"], AGENT) == []
    assert loaded(seen["modules"], HEAVY) == []


def test_an_in_process_ask_opens_the_warehouse_once(demo_copy, tmp_path):
    """Without a server the CLI holds the warehouse for the command (as the server does): making the agent, the
    turn's steps, its tool call and audit rows share one DuckDB open of the file."""
    seen, proc = probe(tmp_path, "--count-opens", "--home", str(demo_copy), "ask", "How did search do last month?",
                       "--json", env={"NORTHSTAR_SERVER": "off", "NORTHSTAR_PROVIDER": "offline"})
    assert proc.returncode == 0, proc.stderr
    assert [c["name"] for c in json.loads(proc.stdout)["tool_calls"]] == ["campaign_report"]
    warehouse = str(demo_copy / "warehouse.duckdb")
    assert [p for p in seen["opens"] if Path(p) == Path(warehouse)] == [warehouse]
    assert "agent.runner" in seen["modules"]  # it did run in-process


TOOL_MODULES = ("tools.analytics", "tools.actions")


def test_the_tool_index_names_the_module_of_every_tool():
    """TOOL_INDEX (what `get_tool` imports for one tool) agrees with a full `load_tools()`: no tool missing, none
    pointing at a module that does not define it. On failure, paste the dict printed here into tools/registry.py."""
    from tools.registry import TOOL_INDEX, tool_index

    expected = tool_index()
    assert expected == TOOL_INDEX, "TOOL_INDEX is stale; it should be:\n" + "\n".join(
        f'    "{name}": "{module}",' for name, module in expected.items())


def test_tool_imports_only_the_module_of_its_tool(demo_copy, tmp_path):
    """`northstar tool campaign_report` (no server) imports campaign_report's module and no other tool's, answers
    what the registry's full import answers, and still writes its run to the audit log."""
    args = '{"start": "2026-09-01", "end": "2026-09-30", "group_by": "channel"}'
    seen, proc = probe(tmp_path, "--count-opens", "--home", str(demo_copy), "tool", "campaign_report", "--args",
                       args, "--json", env={"NORTHSTAR_SERVER": "off"})
    assert proc.returncode == 0, proc.stderr
    assert loaded(seen["modules"], TOOL_MODULES) == ["tools.analytics", "tools.analytics.campaigns"]
    assert [Path(p) for p in seen["opens"]] == [demo_copy / "warehouse.duckdb"]  # one open, for run and audit
    assert loaded(seen["modules"], ("scipy", "sklearn", "pyarrow", "numpy", "pandas")) == []
    from tools.registry import ToolContext, load_tools
    from tools.warehouse import connect

    con = connect(demo_copy / "warehouse.duckdb")
    try:
        expected = load_tools()["campaign_report"].run(con, json.loads(args), ToolContext(home=demo_copy))
        assert json.loads(proc.stdout) == expected.model_dump(mode="json")
        rows = con.execute("SELECT user_id, outcome, args FROM audit_log WHERE name = 'campaign_report'").fetchall()
    finally:
        con.close()
    assert [(r[1], json.loads(r[2])["group_by"]) for r in rows] == [("ok", "channel")], rows


def test_tool_still_refuses_unknown_names_and_actions(demo_copy, tmp_path):
    """A name outside the index imports every tool (so the error can suggest the closest ones); an action is
    still refused from `northstar tool`."""
    seen, proc = probe(tmp_path, "--home", str(demo_copy), "tool", "campain_report", "--json",
                       env={"NORTHSTAR_SERVER": "off"})
    assert proc.returncode == 2 and "Did you mean campaign_report?" in proc.stderr, proc.stderr
    assert "tools.analytics.customers.churn" in seen["modules"]  # the full import happened
    seen, proc = probe(tmp_path, "--home", str(demo_copy), "tool", "update_budget", "--json",
                       env={"NORTHSTAR_SERVER": "off"})
    assert proc.returncode == 2 and "needs approval" in proc.stderr, proc.stderr


def test_a_stale_index_entry_falls_back_to_the_full_import():
    """An entry naming a module that is gone, or one that does not register the tool, costs speed, not an error."""
    code = """
import tools.registry as r
r.TOOL_INDEX["campaign_report"] = "tools.analytics.no_such_module"
r.TOOL_INDEX["detect_anomalies"] = "tools.analytics.campaigns"
assert r.get_tool("detect_anomalies").fn.__module__ == "tools.analytics.anomalies"
assert r.get_tool("campaign_report").name == "campaign_report"
try:
    r.TOOL_INDEX["query_data"] = "tools.analytics.no_such_package.mod"
    r.get_tool("nope")
except r.ToolError as exc:
    print("refused:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "refused: Unknown tool 'nope'" in proc.stdout


def test_the_tools_list_still_imports_every_tool(tmp_path):
    from tools.registry import TOOL_INDEX

    seen, proc = probe(tmp_path, "tools", "--json", env={"NORTHSTAR_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    assert {t["name"] for t in json.loads(proc.stdout)} == set(TOOL_INDEX)
    assert set(TOOL_INDEX.values()) <= set(seen["modules"])
