"""The comparison libraries' own virtualenv (bench/.venv-compare): created on first use from
bench/requirements-compare.txt with `python3.11 -m venv` + pip, never part of Northstar's lock file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
VENV = Path(os.environ.get("NORTHSTAR_BENCH_VENV", BENCH / ".venv-compare"))
REQUIREMENTS = BENCH / "requirements-compare.txt"
INSTALL_TIMEOUT_S = 1800


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _base_python() -> str:
    return shutil.which("python3.11") or getattr(sys, "_base_executable", None) or sys.executable


def ensure(log=print) -> dict:
    """Create or reuse the venv; {"ok", "python", "packages"} or {"ok": False, "error"} (then no comparison runs)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    marker = VENV / ".requirements-sha"
    py = _python(VENV)
    if not (py.exists() and marker.exists() and marker.read_text().strip() == digest):
        log(f"creating the comparison venv {VENV} (lifetimes, ChannelAttribution; ChannelAttribution compiles C++, "
            "a few minutes the first time) …")
        shutil.rmtree(VENV, ignore_errors=True)
        steps = [[_base_python(), "-m", "venv", str(VENV)],
                 [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]]
        for cmd in steps:
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return {"ok": False, "error": f"{' '.join(cmd[:4])}: {exc}"}
            if proc.returncode != 0:
                return {"ok": False, "error": f"{' '.join(cmd[:4])} failed ({proc.returncode}): "
                                              f"{(proc.stderr or proc.stdout)[-1500:]}"}
        marker.write_text(digest)
    freeze = subprocess.run([str(py), "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True,
                            text=True, timeout=120)
    return {"ok": True, "python": str(py), "venv": str(VENV), "packages": freeze.stdout.split()}


def run(python: str, job: dict, timeout_s: float = 3600) -> dict:
    """Run one bench/extern.py job in the comparison venv; failures come back as {"ok": False, "error"}."""
    with tempfile.TemporaryDirectory(prefix="northstar-extern-") as tmp:
        job = {**job, "out": str(Path(tmp) / "out.json")}
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(job))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        try:
            proc = subprocess.run([python, str(BENCH / "extern.py"), str(path)], capture_output=True, text=True,
                                  timeout=timeout_s, cwd=tmp, env=env)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
        out = Path(job["out"])
        if not out.exists():
            return {"ok": False, "error": f"exit {proc.returncode}: {proc.stderr[-1500:]}"}
        return json.loads(out.read_text())
