"""Shared fixtures: one demo warehouse per session, the shared datasets, a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NORTHSTAR_SHARED", ROOT.parent / "shared"))
DEMO_CUSTOMERS = 50_000
DEMO_SEED = 7

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NORTHSTAR_PROVIDER", "NORTHSTAR_HOME", "NORTHSTAR_ROLES"):
    os.environ.pop(var, None)


def shared_path(relative: str) -> Path:
    """A file under ../shared; skipped with a notice when absent, but a failure in CI (CI=true)."""
    path = SHARED / relative
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing: in CI the shared datasets must be beside the checkout")
        pytest.skip(f"shared dataset {relative} not found beside the checkout (../shared); skipped")
    return path


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A home with the default demo warehouse (50k customers, seed 7), built once per session."""
    from tools.warehouse import connect
    from tools.warehouse.demo import generate

    home = tmp_path_factory.mktemp("demo_home")
    con = connect(home / "warehouse.duckdb")
    generate(con, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    con.close()
    return home


@pytest.fixture
def demo_copy(demo_home, tmp_path) -> Path:
    """A private copy of the demo home that a test may change."""
    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    return home


@pytest.fixture(scope="session")
def demo_con(demo_home):
    """A read-only connection to the session's demo warehouse (copied so writers elsewhere never clash)."""
    import duckdb

    con = duckdb.connect(str(demo_home / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


@pytest.fixture
def demo_rw(demo_copy):
    """A writable connection to a private copy of the demo warehouse."""
    from tools.warehouse import connect

    con = connect(demo_copy / "warehouse.duckdb")
    yield con
    con.close()


def run_cli(*args: str, home: Path | None = None, check: bool = False, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real `northstar` console script in a subprocess."""
    cmd = [str(Path(sys.executable).parent / "northstar")]
    if home is not None:
        cmd += ["--home", str(home)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, cwd=ROOT,
                          input=input, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"northstar {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    return proc


def cli_json(*args: str, home: Path | None = None, env: dict | None = None):
    proc = run_cli(*args, "--json", home=home, check=True, env=env)
    return json.loads(proc.stdout)
