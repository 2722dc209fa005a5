"""`northstar bench`: every analytics tool on a demo warehouse of N customers, the library comparisons, the agent.

Each measurement runs in a child process (`python -m bench.worker`), so its peak RSS is its own and a tool that
crashes or hangs is recorded as such while the run goes on. Results: bench/results/<date>.json, and the table
in docs/performance.md (full runs at 1M or more customers only, unless a docs path is given).

Per tool: the first run in its fresh process (cold: lazy imports, saving what the tool saves — the headline
figure) and the median of the runs after it (warm), reported apart. Time budget: about 15 min at 1M customers
plus about 30 min for the DuckDB-vs-Spark comparison; at 10M (`--customers 10000000`) about an hour, 90 min
at most on a quiet machine (generation ~10 min, tools ~15 min, library comparisons ~25 min, agent, cold starts
and the server load ~10 min); Spark is left out above 1M (`--spark local[2]` adds hours).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import report, server_load

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NORTHSTAR_SHARED", ROOT.parent / "shared"))
DEFAULT_CUSTOMERS = 1_000_000
CATALOG = ("campaign_report", "segment_customers", "score_churn", "score_leads", "predict_clv",
           "attribute_conversions", "analyze_experiment", "plan_experiment", "allocate_budget", "detect_anomalies",
           "analyze_sentiment", "search_knowledge", "generate_content_variants", "query_data")
TOOL_BUDGET_S = 600
"""Stop repeating a tool once its runs add up to this (one run always happens)."""
JOB_TIMEOUT_S = 3600


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child(job: dict, timeout_s: float = JOB_TIMEOUT_S, *, module: str = "bench.worker",
          env: dict | None = None) -> dict:
    """Run one job of `module` (bench.worker, bench.side_worker) in a fresh Python process, with `env` added to a
    clean environment; its failure or timeout comes back as a result."""
    with tempfile.TemporaryDirectory(prefix="northstar-job-") as tmp:
        job = {**job, "out": str(Path(tmp) / "out.json")}
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(job, default=str))
        extra, env = env or {}, {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                                 "GRADIO_ANALYTICS_ENABLED": "False"}
        for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "NORTHSTAR_PROVIDER", "NORTHSTAR_HOME", "NORTHSTAR_WAREHOUSE"):
            env.pop(var, None)
        env.update(extra)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", module, str(path)], capture_output=True, text=True,
                                  timeout=timeout_s, cwd=ROOT, env=env)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s", "process_s": timeout_s}
        out = Path(job["out"])
        if not out.exists():  # killed (e.g. out of memory) or crashed before writing
            return {"ok": False, "error": f"worker exit {proc.returncode}: {proc.stderr.strip()[-1500:]}",
                    "process_s": round(time.perf_counter() - t0, 3)}
        res = json.loads(out.read_text())
        res["process_s"] = round(time.perf_counter() - t0, 3)
        return res


def tool_cases(registry: dict, repeat: int) -> list[dict]:
    """One case per analytics tool (its registry example; allocate_budget's budget scaled to the warehouse), plus
    sentiment on 100k distinct reviews and search_knowledge's latency over every example request."""
    names = sorted(set(CATALOG) | {n for n, s in registry.items() if not s.approval})
    queries = [r for s in registry.values() for r in s.requests]
    cases = []
    for name in names:
        cases.append({"tool": name, "case": "example", "repeat": repeat, "budget_s": TOOL_BUDGET_S,
                      **({"dynamic": "current_budget"} if name == "allocate_budget" else {})})
        if name == "analyze_sentiment":
            cases.append({"tool": name, "case": "100k distinct reviews", "dynamic": "bench_reviews",
                          "repeat": repeat, "budget_s": TOOL_BUDGET_S})
        if name == "search_knowledge":
            cases.append({"tool": name, "case": "latency", "queries": queries})
    return cases


def run_tools(home: Path, registry: dict, import_errors: dict, repeat: int, isolate: bool,
              only: list[str] | None = None) -> list[dict]:
    cases = [c for c in tool_cases(registry, repeat) if not only or c["tool"] in only]
    missing = [c for c in cases if c["tool"] not in registry]
    todo = [c for c in cases if c["tool"] in registry]
    hint = f" (import errors: {'; '.join(f'{k}: {v}' for k, v in import_errors.items())})" if import_errors else ""
    out = [{"tool": c["tool"], "case": c["case"], "ok": False, "error": "not registered" + hint} for c in missing]
    if isolate:
        for c in todo:
            _log(f"{c['tool']} ({c['case']}) …")
            res = child({"kind": "tools", "home": str(home), "cases": [c]})
            case = res["cases"][0] if res.get("cases") else {"tool": c["tool"], "case": c["case"], "ok": False,
                                                              "error": res.get("error")}
            case["process_s"], case["import_s"] = res.get("process_s"), res.get("import_s")
            _log(f"  {'ok' if case.get('ok') else 'FAILED'}: median {case.get('median_s')} s, "
                 f"peak RSS {case.get('peak_rss_mb')} MB" + ("" if case.get("ok") else f" — {case.get('error')}"))
            out.append(case)
    elif todo:
        _log(f"{len(todo)} tool cases in one process …")
        res = child({"kind": "tools", "home": str(home), "cases": todo})
        out += res.get("cases") or [{"tool": c["tool"], "case": c["case"], "ok": False, "error": res.get("error")}
                                    for c in todo]
    return sorted(out, key=lambda c: (c["tool"], c["case"] != "example", c["case"]))


def _meta(customers: int, repeat: int, seed: int) -> dict:
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    import platform

    import duckdb
    import numpy

    return {"date": date.today().isoformat(), "customers": customers, "repeat": repeat, "seed": seed,
            "cpus": os.cpu_count(), "mem_gb": round(mem / 2**20, 1), "load_start": round(os.getloadavg()[0], 2),
            "load_avg_start": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "duckdb": duckdb.__version__, "numpy": numpy.__version__,
            "commit": _commit(), "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE")}


def _commit() -> str | None:
    """The checked-out commit, read from .git (no git command needed)."""
    try:
        head = (ROOT / ".git" / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (ROOT / ".git" / ref).exists():
            return (ROOT / ".git" / ref).read_text().strip()
        for line in (ROOT / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return None


def main(customers: int = DEFAULT_CUSTOMERS, repeat: int = 3, compare: bool = True, as_json: bool = False, *,
         seed: int = 7, home: Path | None = None, keep: bool = False, results_dir: Path | None = None,
         docs_path: Path | None = None, isolate: bool = True, agent: bool = True, agent_questions: int = 50,
         agent_customers: int = 20_000, cold_runs: int = 5, cold_ask: bool = True,
         only: list[str] | None = None, pairs: list[str] | None = None, spark: str | None = "auto") -> int:
    """Run the benchmark; returns the exit code (0: everything ran, 1: something failed — see the results).

    `spark`: the local Spark master of the DuckDB-vs-Spark comparison (bench/side_by_side.py) at the same size;
    "auto" runs it on `NORTHSTAR_BENCH_SPARK` (default local[2]; "off" skips it) unless the run is reduced."""
    from bench.worker import safe_registry

    started = time.perf_counter()
    results: dict = {"meta": _meta(customers, repeat, seed)}
    owned = home is None
    base = Path(tempfile.mkdtemp(prefix="northstar-bench-")) if owned else Path(home)
    main_home = base / "home"
    try:
        if (main_home / "warehouse.duckdb").exists() and not owned:
            _log(f"reusing the warehouse in {main_home}")
            results["demo"] = {"ok": True, "reused": str(main_home)}
        else:
            _log(f"generating the demo warehouse: {customers:,} customers in {main_home} …")
            results["demo"] = child({"kind": "generate", "home": str(main_home), "customers": customers, "seed": seed,
                                     "knowledge": not only or "search_knowledge" in only,
                                     "bench_reviews": not only or "analyze_sentiment" in only})
            _log(f"  {results['demo'].get('generate_s')} s, peak RSS {results['demo'].get('peak_rss_mb')} MB"
                 + ("" if results["demo"].get("ok") else f" — {results['demo'].get('error')}"))
        if results["demo"].get("ok"):
            registry, errors = safe_registry()
            results["import_errors"] = errors
            results["tools"] = run_tools(main_home, registry, errors, repeat, isolate, only)
            if cold_runs and (not only or "campaign_report" in only):
                _log("`northstar tool campaign_report` end to end, fresh processes …")
                results["cli_tool"] = cli_tool(main_home, cold_runs)
                _log(f"  {results['cli_tool']}")
            if compare:
                from bench.comparisons import run_comparisons

                results["compare"] = run_comparisons(main_home, base / "compare", results, repeat, child, _log,
                                                       **({"pairs": tuple(pairs)} if pairs else {}))
            if agent:
                results.update(_agent(base, main_home, customers, seed, agent_questions, agent_customers, cold_runs,
                                      cold_ask))
                if customers >= DEFAULT_CUSTOMERS:  # the team server under load (bench/server_load.py), full runs
                    results["server_load"] = server_load.run(base / "agent-home", results_dir=results_dir)
            if target := _spark_target(spark, only, pairs, customers):
                from bench import side_by_side

                _log(f"DuckDB vs Spark {target}, {customers:,} customers …")
                results["side_by_side"] = side_by_side.run(customers, base / "side-by-side", target=target,
                                                           repeat=repeat, seed=seed, log=_log)
                _log(f"  written to {side_by_side.save(results['side_by_side'], results_dir or ROOT / 'bench' / 'results')}")
    finally:
        if owned and not keep:
            shutil.rmtree(base, ignore_errors=True)
        elif keep or not owned:
            _log(f"kept {base}")
    results["meta"]["total_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = report.targets(results)
    partial = bool(only or pairs or not compare or not agent)  # never replaces a full run's table or file
    stamp = (results["meta"]["date"] + ("" if customers == DEFAULT_CUSTOMERS else f"-{customers}")
             + ("-partial" if partial else ""))
    out_dir = Path(results_dir) if results_dir else ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stamp}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    _log(f"results: {out_dir / f'{stamp}.json'}")
    block = report.markdown(results)  # after the results are safe on disk
    if docs_path is not None or (customers >= DEFAULT_CUSTOMERS and not partial):
        report.write_docs(Path(docs_path) if docs_path else ROOT / "docs" / "performance.md", block)
    sys.stdout.write(json.dumps(results, indent=1, default=str) + "\n" if as_json else block)
    return 0 if _all_ok(results, compare, agent) else 1


def _agent(base: Path, main_home: Path, customers: int, seed: int, questions: int, agent_customers: int,
           cold_runs: int, cold_ask: bool) -> dict:
    from bench.agent_bench import cold_starts

    home, size = main_home, customers
    if customers > agent_customers:
        home, size = base / "agent-home", agent_customers
        _log(f"agent warehouse: {agent_customers:,} customers …")
        gen = child({"kind": "generate", "home": str(home), "customers": agent_customers, "seed": seed,
                     "bench_reviews": False})
        if not gen.get("ok"):
            return {"agent": {"ok": False, "error": f"agent warehouse: {gen.get('error')}"}}
    _log(f"agent: {questions} questions on the offline provider …")
    res = child({"kind": "agent", "home": str(home), "questions": questions})
    res["customers"] = size
    _log(f"  overhead {res.get('overhead_ms')}" + ("" if res.get("ok") else f" — {res.get('error')}"))
    _log("cold starts …")
    cold = cold_starts(home, cold_runs, ask=cold_ask)
    if cold_ask and cold_runs:
        _log("`northstar ask` through a running server …")
        cold["ask (through a running server)"] = ask_through_server(home, cold_runs)
    _log(f"  {cold}")
    return {"agent": res, "cold_start": cold}


CLI_TOOL_ARGS = '{"group_by": "channel"}'
"""The last 30 days with data, by channel: what `northstar tool campaign_report` is typically asked."""


def cli_tool(home: Path, runs: int) -> dict:
    """Goal 1's campaign_report as a user meets it: wall time of fresh `northstar --home H tool campaign_report
    --args … --json` processes on the benchmark's warehouse, no server (imports, opening the file, the tool, the
    audit row, closing). One untimed run first writes the bytecode cache an installed Northstar has."""
    from bench.agent_bench import _time_command

    exe = str(Path(sys.executable).parent / "northstar")
    env = {**os.environ, "NORTHSTAR_SERVER": "off", "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        return {**_time_command([exe, "--home", str(home), "tool", "campaign_report", "--args", CLI_TOOL_ARGS,
                                 "--json"], runs, env, prime=True), "args": CLI_TOOL_ARGS}
    except Exception as exc:  # noqa: BLE001 - the bench records a failure and goes on
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def ask_through_server(home: Path, runs: int, ports: range = server_load.PORTS) -> dict:
    """Goal 3's `northstar ask` when the team server runs: fresh `northstar --home H ask … --json` processes that
    find the idle `northstar serve` of H (a copy of `home`) from its server.json, as a user's shell would. One
    untimed ask first, so the server's own warm-up is not counted. The server holds the warehouse open, so an ask
    that did not reach it fails on the lock instead of answering in-process. Never raises: a failure is the
    result."""
    from bench.agent_bench import AS_OF, COLD_QUESTION, _time_command

    work = Path(tempfile.mkdtemp(prefix="northstar-serverask-"))
    proc = None
    try:
        served = work / "home"
        shutil.copytree(home, served, ignore=shutil.ignore_patterns("server.json", "*.wal"))
        env = {**os.environ, "NORTHSTAR_AS_OF": AS_OF.isoformat(), "NORTHSTAR_PROVIDER": "offline",
               "NORTHSTAR_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
        for var in ("OPENAI_API_KEY", "NORTHSTAR_SERVER", "NORTHSTAR_API_TOKEN"):
            env.pop(var, None)
        port, log = server_load.free_port(ports), work / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "ui.cli.app", "--home", str(served), "serve", "--port",
                                     str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        server_load._wait(proc, f"http://127.0.0.1:{port}", log)
        if not (served / "server.json").exists():  # the CLI would not find the server and answer in-process
            return {"error": f"the server wrote no server.json in {served}"}
        exe = str(Path(sys.executable).parent / "northstar")
        return _time_command([exe, "--home", str(served), "ask", COLD_QUESTION, "--json"], runs, env, prime=True)
    except Exception as exc:  # noqa: BLE001 - the bench records a failure and goes on
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def _spark_target(spark: str | None, only, pairs, customers: int = DEFAULT_CUSTOMERS) -> str | None:
    """The Spark master to compare on. "auto" leaves Spark out of reduced runs and above 1M customers: at 10M the
    Spark side alone would take hours on local[2] (at 1M it took about 30 min), far outside the 10M run's budget;
    pass a master explicitly (`--spark local[2]`) to run it anyway."""
    if spark == "auto":
        if only or pairs or customers > DEFAULT_CUSTOMERS:
            return None
        spark = os.environ.get("NORTHSTAR_BENCH_SPARK", "local[2]")
    return None if not spark or spark.strip().lower() in ("off", "0", "no", "none") else spark.strip()


def _all_ok(results: dict, compare: bool, agent: bool) -> bool:
    ok = results.get("demo", {}).get("ok") and all(c.get("ok") for c in results.get("tools", []))
    ok = ok and not (results.get("cli_tool") or {}).get("error")
    if compare:
        ok = ok and not (results.get("compare") or {}).get("error") and all(
            c.get("ok", True) for c in (results.get("compare") or {}).values() if isinstance(c, dict))
    if agent:
        ok = ok and (results.get("agent") or {}).get("ok") and not any(
            v.get("error") for v in (results.get("cold_start") or {}).values())
    side = results.get("side_by_side")
    if side:
        ok = ok and not side.get("spark_error") and all(
            (r.get(e) or {}).get("ok") for r in side.get("tools", []) for e in ("duckdb", "spark"))
    return bool(ok)


def cli(argv: list[str] | None = None) -> int:
    """`python -m bench.harness`: the same run with the developer options the CLI does not expose."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.harness", description=__doc__)
    ap.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--home", type=Path, help="Work folder to reuse (its home/warehouse.duckdb is kept).")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary work folder.")
    ap.add_argument("--only", nargs="*", help="Benchmark only these tools.")
    ap.add_argument("--pairs", nargs="*", help="Run only these comparisons: pandas vader bgnbd markov segments.")
    ap.add_argument("--no-agent", action="store_true")
    ap.add_argument("--questions", type=int, default=50)
    ap.add_argument("--docs", type=Path, help="Write the table into this page even for a reduced size.")
    ap.add_argument("--results", type=Path, help="Folder for the JSON results.")
    ap.add_argument("--spark", default="auto", help="Local Spark master of the DuckDB-vs-Spark comparison "
                    "(default: NORTHSTAR_BENCH_SPARK or local[2]; `off` skips it).")
    a = ap.parse_args(argv)
    return main(customers=a.customers, repeat=a.repeat, compare=not a.skip_compare, as_json=a.json, home=a.home,
                keep=a.keep, only=a.only, agent=not a.no_agent, agent_questions=a.questions, docs_path=a.docs,
                results_dir=a.results, pairs=a.pairs, spark=a.spark)


if __name__ == "__main__":
    sys.exit(cli())
