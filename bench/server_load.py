"""The team server under load: `northstar serve` with N concurrent API sessions and CLI clients for D seconds.

Each session asks two questions per thread (a first question and a follow-up) over the streaming endpoint, as a
web page would, and measures every turn from the request to its final `answer` event; two CLI loops run
`northstar ask --json` through the server meanwhile (their latency includes the CLI's start-up). Reported: turns,
errors, throughput, p50/p95/max turn latency, and time to the first step. Results go to
bench/results/server-load-<date>.json and into `make bench`'s results (key `server_load`).

    python -m bench.server_load --home /tmp/nb/agent-home --sessions 20 --duration 60
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

from bench.measure import percentile

ROOT = Path(__file__).resolve().parents[1]
PORTS = range(8700, 8750)
QUESTIONS = ["How did our channels perform last month?", "Did the spring email test work?",
             "What are customers complaining about in reviews?", "Which campaigns had the best ROAS last month?",
             "How should we split next month's budget across channels?", "Any anomalies in revenue recently?",
             "Which customers are likely to churn?", "What is the customer lifetime value by segment?"]
USERS = {"ana": "approver", "ben": "analyst", "vic": "viewer"}


def free_port(ports: range = PORTS) -> int:
    """A free local port in `ports` (the bench's servers keep out of the test suite's ranges)."""
    for port in random.sample(list(ports), len(ports)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}–{ports.stop - 1}")


def _stats(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "max": round(max(values), 3), "n": len(values)} if values else {"n": 0}


def _start(home: Path, tokens: dict[str, str]) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = home.parent / f"serve-{port}.log"
    env = {**os.environ, "NORTHSTAR_ROLES": ",".join(f"{u}:{r}" for u, r in USERS.items()),
           "NORTHSTAR_API_TOKENS": ",".join(f"{u}:{t}" for u, t in tokens.items()), "NORTHSTAR_LOG_LEVEL": "warning",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli.app", "--home", str(home), "serve", "--port",
                                 str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def _wait(proc: subprocess.Popen, url: str, log: Path, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-1500:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not start within {timeout_s:.0f} s")


def _session(i: int, url: str, token: str, stop_at: float, turns: list, errors: list) -> None:
    import httpx

    from ui.server.sse import parse

    rng = random.Random(i)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=900,
                      trust_env=False) as client:
        while time.monotonic() < stop_at:
            thread = None
            for question in rng.sample(QUESTIONS, 2):
                t0, first, last = time.perf_counter(), None, None
                try:
                    with client.stream("POST", "/api/v1/ask/stream",
                                       json={"question": question, "thread_id": thread}) as response:
                        for event in parse(response.iter_lines()):
                            if first is None and event["event"] not in ("accepted", "queued"):
                                first = time.perf_counter() - t0
                            last = event
                except Exception as exc:  # noqa: BLE001 - counted, the session goes on
                    errors.append(f"session {i}: {type(exc).__name__}: {exc}"[:300])
                    break
                if not last or last["event"] != "result":
                    errors.append(f"session {i}: {json.dumps(last)[:300]}")
                    break
                thread = last["result"]["thread_id"]
                turns.append({"kind": "api", "s": time.perf_counter() - t0, "first_step_s": first})


def _cli(i: int, url: str, token: str, stop_at: float, turns: list, errors: list, work: Path) -> None:
    env = {**os.environ, "NORTHSTAR_SERVER": url, "NORTHSTAR_API_TOKEN": token, "PYTHONPATH": str(ROOT)}
    while time.monotonic() < stop_at:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ui.cli.app", "--home", str(work / f"cli{i}"), "ask",
                               QUESTIONS[i % len(QUESTIONS)], "--json"], capture_output=True, text=True, env=env,
                              cwd=ROOT, timeout=900)
        if proc.returncode != 0:
            errors.append(f"cli {i}: exit {proc.returncode}: {proc.stderr[-300:]}")
            continue
        turns.append({"kind": "cli", "s": time.perf_counter() - t0})


def run(home: Path, *, sessions: int = 20, duration_s: float = 60, cli_clients: int = 2,
        results_dir: Path | None = None) -> dict:
    """Serve a copy of `home` and load it; the summary (also written to bench/results/)."""
    tokens = {u: f"{u}-bench-{os.urandom(12).hex()}" for u in USERS}
    work = Path(tempfile.mkdtemp(prefix="northstar-serverload-"))
    proc = None
    try:
        served = work / "home"
        shutil.copytree(home, served, ignore=shutil.ignore_patterns("server.json", "*.wal"))
        proc, url, log = _start(served, tokens)
        t0 = time.perf_counter()
        _wait(proc, url, log)
        startup_s = time.perf_counter() - t0
        turns: list[dict] = []
        errors: list[str] = []
        names = list(USERS)
        started = time.perf_counter()
        stop_at = time.monotonic() + duration_s
        workers = [threading.Thread(target=_session, args=(i, url, tokens[names[i % 3]], stop_at, turns, errors))
                   for i in range(sessions)]
        workers += [threading.Thread(target=_cli, args=(i, url, tokens["ben"], stop_at, turns, errors, work))
                    for i in range(cli_clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - started
        api = [t["s"] for t in turns if t["kind"] == "api"]
        result = {"ok": not errors, "sessions": sessions, "cli_clients": cli_clients, "duration_s": duration_s,
                  "wall_s": round(wall, 1), "server_start_s": round(startup_s, 1), "turns": len(turns),
                  "errors": len(errors), "error_samples": errors[:5], "turns_per_s": round(len(turns) / wall, 2),
                  "turn_s": _stats(api), "first_step_s": _stats([t["first_step_s"] for t in turns
                                                                 if t.get("first_step_s") is not None]),
                  "cli_turn_s": _stats([t["s"] for t in turns if t["kind"] == "cli"]),
                  "server_log_lock_errors": log.read_text().count("Could not set lock"),
                  "date": date.today().isoformat(), "load_start": round(os.getloadavg()[0], 2)}
    except Exception as exc:  # noqa: BLE001 - the bench records a failure and goes on
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    out_dir = Path(results_dir) if results_dir else ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"server-load-{date.today().isoformat()}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def cli(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.server_load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, help="A home with a warehouse (default: a new 20,000-customer demo).")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--cli-clients", type=int, default=2)
    ap.add_argument("--results", type=Path)
    a = ap.parse_args(argv)
    home, tmp = a.home, None
    if home is None:
        from bench.harness import child

        tmp = Path(tempfile.mkdtemp(prefix="northstar-serverload-home-"))
        home = tmp / "home"
        gen = child({"kind": "generate", "home": str(home), "customers": 20_000, "seed": 7, "bench_reviews": False})
        if not gen.get("ok"):
            print(json.dumps(gen), file=sys.stderr)
            return 1
    try:
        result = run(home, sessions=a.sessions, duration_s=a.duration, cli_clients=a.cli_clients,
                     results_dir=a.results)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(cli())
