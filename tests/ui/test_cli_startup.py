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
