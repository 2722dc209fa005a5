"""The agent's own cost: per-turn overhead on the offline provider (tool time excluded) and CLI cold starts."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from bench.measure import percentile

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 9, 30)
COLD_QUESTION = "How did our channels perform last month?"


def questions(n: int) -> list[str]:
    """n marketer questions: the single-turn trajectory eval questions, then the registry's example requests."""
    import yaml

    from bench.worker import safe_registry

    out: list[str] = []
    path = ROOT / "evals" / "datasets" / "trajectories_v1.yaml"
    if path.exists():
        out = [c["question"] for c in yaml.safe_load(path.read_text()) or [] if c.get("question")]
    for spec in safe_registry()[0].values():
        out += [r for r in spec.requests if r not in out]
    return out[:n]


def _stats(values: list[float]) -> dict:
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "max": round(max(values), 2), "mean": round(sum(values) / len(values), 2)} if values else {}


NODES = ("guard_input", "plan", "prepare_action", "guard_output")
"""The graph's nodes besides run_tools (whose time is the tools'), profiled with `profile`."""
OWN = ("/agent/", "/knowledge/", "/tools/warehouse/", "/prompts/")


class NodeProfiles:
    """cProfile of each node call, per turn: the graph runs its nodes in worker threads, which a profiler started in
    the main thread never sees, so each node is wrapped (before the graph is built) and profiled where it runs."""

    def __init__(self):
        import agent.nodes as nodes

        if "agent.graph" in sys.modules:
            raise RuntimeError("profile: the graph was built before its nodes could be wrapped; use a fresh process")
        self.turn, self.calls = None, {}
        for name in NODES:
            setattr(nodes, name, self._wrap(getattr(nodes, name)))

    def _wrap(self, fn):
        import cProfile
        import functools

        @functools.wraps(fn)
        def node(*args, **kwargs):
            prof, t0 = cProfile.Profile(), time.perf_counter()
            prof.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                prof.disable()
                self.calls.setdefault(self.turn, []).append((fn.__name__, 1000 * (time.perf_counter() - t0), prof))
        return node

    def report(self, turn: int, top: int = 12) -> dict:
        """Each node call's ms, and the project's functions by cumulative ms over the turn's node calls."""
        import pstats

        calls = self.calls.get(turn) or []
        if not calls:
            return {}
        stats = pstats.Stats(calls[0][2])
        for *_, prof in calls[1:]:
            stats.add(prof)
        rows = sorted(((ct, f"{Path(file).parent.name}/{Path(file).name}:{line}({fn})")
                       for (file, line, fn), (_, _, _, ct, _) in stats.stats.items()
                       if any(part in file for part in OWN)), reverse=True)
        return {"nodes_ms": [[name, round(ms, 1)] for name, ms, _ in calls],
                "top_cumulative_ms": [f"{1000 * ct:.1f} {where}" for ct, where in rows[:top]]}


def job_agent(job: dict) -> dict:
    """Ask n questions, each in a new thread, after the server's warm-up and one warm-up turn; overhead = wall −
    Σ tool_calls[*].ms.

    `pinned`: hold the warehouse open for the whole run, as `northstar serve` does, so no step pays for opening
    the DuckDB file (unpinned, as in-process adapters run, each step opens and closes it; the tool call's open is
    counted in its ms, the vocabulary's in the overhead)."""
    from agent.context import Context
    from agent.runner import Northstar
    from tools.registry import load_first_use
    from tools.warehouse import connect

    profiles = NodeProfiles() if job.get("profile") else None
    pin = connect(Path(job["home"]) / "warehouse.duckdb") if job.get("pinned") else None

    load_at_start = [round(v, 2) for v in os.getloadavg()]
    t0 = time.perf_counter()
    ns = Northstar(Context(home=Path(job["home"]), provider="offline", as_of=AS_OF, user="bench",
                           roles={"bench": "analyst"}))
    startup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ns.ask(COLD_QUESTION)
    load_first_use()  # as `northstar serve` does before it serves …
    ns.warm_up(freeze=True)  # … and after its warm-up
    warmup_s = time.perf_counter() - t0
    turns = []
    for i, q in enumerate(questions(job.get("questions", 50))):
        if profiles:
            profiles.turn = i
        t0 = time.perf_counter()
        try:
            out = ns.ask(q)
        except Exception as exc:  # a crashing turn is recorded, the run goes on
            turns.append({"question": q, "error": f"{type(exc).__name__}: {exc}"[:500]})
            continue
        wall = 1000 * (time.perf_counter() - t0)
        tool_ms = sum(c.get("ms") or 0 for c in out["tool_calls"])
        turns.append({"question": q, "wall_ms": round(wall, 2), "tool_ms": round(tool_ms, 2),
                      "overhead_ms": round(wall - tool_ms, 2), "tools": [c["name"] for c in out["tool_calls"]],
                      "pending_approval": bool(out.get("pending_approval"))})
    ns.close()
    if pin is not None:
        pin.close()
    ok = [t for t in turns if "overhead_ms" in t]
    if profiles:  # the slowest turns' profiles (profiling inflates Python-heavy steps: compare shares, not ms)
        for turn in sorted(ok, key=lambda t: -t["overhead_ms"])[:job["profile"]]:
            turn["profile"] = profiles.report(turns.index(turn))
    return {"pinned": bool(pin), "load_avg": load_at_start, "startup_s": round(startup_s, 3),
            "warmup_turn_s": round(warmup_s, 3), "turns": turns, "n": len(ok), "errors": len(turns) - len(ok),
            "overhead_ms": _stats([t["overhead_ms"] for t in ok]),
            "wall_ms": _stats([t["wall_ms"] for t in ok]), "tool_ms": _stats([t["tool_ms"] for t in ok])}


def _time_command(cmd: list[str], n: int, env: dict, prime: bool = False) -> dict:
    walls, tool_ms, error = [], [], None
    if prime:  # one untimed run that writes the bytecode cache
        subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            error = f"exit {proc.returncode}: {proc.stderr[-800:]}"
            break
        if "ask" in cmd:
            try:
                tool_ms.append(sum(c.get("ms") or 0 for c in json.loads(proc.stdout)["tool_calls"]))
            except (ValueError, KeyError):
                pass
    out = {"median_s": round(statistics.median(walls), 3), "first_s": round(walls[0], 3),
           "runs_s": [round(w, 3) for w in walls], **({"error": error} if error else {})}
    if tool_ms:
        out["tool_ms_median"] = round(statistics.median(tool_ms), 1)
    return out


def cold_starts(home: Path, runs: int = 5, ask: bool = True) -> dict:
    """Wall time of fresh `northstar --help` and `northstar ask … --json` processes, in this environment and —
    when PYTHONDONTWRITEBYTECODE is set, so every start compiles every imported module from source — also with
    the bytecode cache allowed (primed by one untimed run), as after `uv sync --compile-bytecode`."""
    exe = str(Path(sys.executable).parent / "northstar")
    env = {**os.environ, "NORTHSTAR_AS_OF": AS_OF.isoformat(), "NORTHSTAR_PROVIDER": "offline",
           "NORTHSTAR_SERVER": "off"}  # in-process: a server running for the home would answer instead
    env.pop("OPENAI_API_KEY", None)
    commands = [("help", [exe, "--help"], runs)]
    if ask:
        commands.append(("ask", [exe, "--home", str(home), "ask", COLD_QUESTION, "--json"], runs))
    out = {}
    for name, cmd, n in commands:
        out[name] = _time_command(cmd, n, env)
    if env.get("PYTHONDONTWRITEBYTECODE"):
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for name, cmd, n in commands:
            out[f"{name} (bytecode cached)"] = _time_command(cmd, n, cached, prime=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.agent_bench --home DIR`: the overhead run and the cold starts alone, on an existing home
    (`northstar init --demo --customers 20000` makes one), JSON to stdout. The home's threads grow with each run:
    compare runs on copies of one home."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.agent_bench", description=main.__doc__)
    ap.add_argument("--home", type=Path, required=True, help="A home with a warehouse (it gains threads).")
    ap.add_argument("--questions", type=int, default=50)
    ap.add_argument("--cold-runs", type=int, default=5, help="Fresh processes per cold-start figure (0: none).")
    ap.add_argument("--pinned", action="store_true", help="Hold the warehouse open, as the server does.")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="Profile the graph's nodes (cProfile, in their threads) and show the N slowest turns' "
                         "profiles (the overhead figures are then inflated by the profiler).")
    args = ap.parse_args(argv)
    if not (args.home / "warehouse.duckdb").exists():
        ap.error(f"no warehouse in {args.home}: run `northstar --home {args.home} init --demo` first")
    res = job_agent({"home": str(args.home), "questions": args.questions, "pinned": args.pinned,
                     "profile": args.profile})
    out = {k: v for k, v in res.items() if k != "turns"}
    out["slowest"] = sorted((t for t in res["turns"] if "overhead_ms" in t),
                            key=lambda t: -t["overhead_ms"])[:max(5, args.profile)]
    if args.cold_runs:
        out["cold_start"] = cold_starts(args.home, args.cold_runs)
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0 if not res["errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
