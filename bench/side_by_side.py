"""The same tools on DuckDB and on local Spark at one size, side by side (issue 17; docs/performance.md).

Each engine gets its own demo warehouse built by `init --demo`'s generator (same seed, same rows) in a temporary
home; then, tool by tool, DuckDB and Spark alternate (so a change in the machine's load hits both), each tool in a
fresh process (bench/side_worker.py) that reports the session start, the cold first run (it saves the results the
tool saves) and the median of the warm runs. Probe queries separate each engine's fixed cost per query from its
per-row throughput, which is what the crossover estimate in docs/performance.md reasons from. The numeric metrics of
both engines are compared, so the table also says the two did the same work.

`python -m bench.side_by_side --customers 200000 [--spark 'local[2]'] [--repeat 3] [--tools …]` writes
bench/results/scale-out-<date>.json (key `side_by_side`; the sqlglot-vs-Ibis figures of bench/scale_out_compare.py
in the same file are kept) and prints the table. `make bench` runs it too (bench/harness.py).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

TOOLS = ("campaign_report", "detect_anomalies", "attribute_conversions", "segment_customers", "predict_clv",
         "score_churn", "query_data")
"""The read-only tools the parity suite proves equal on both engines (tests/tools/test_spark_parity.py)."""
DEFAULT_SPARK = "local[2]"
DRIVER_MEMORY = "3g"
"""Spark's driver heap for the bench (the default 1g fails on a million customers' per-customer rows)."""
REL = 1e-6
TIMING = re.compile(r"(^|[._])(elapsed|seconds)|_(ms|s)$")
"""Metrics that time something (query_data's elapsed_ms): they differ by nature and are not compared."""
RESULTS = Path(__file__).resolve().parent / "results"


def _log(msg: str) -> None:
    print(f"[side-by-side {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _env(engine: str, target: str, home: Path) -> dict:
    setting = "duckdb" if engine == "duckdb" else f"spark:{target}"
    env = {"NORTHSTAR_WAREHOUSE": setting, "NORTHSTAR_HOME": str(home)}
    if engine == "spark":
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {DRIVER_MEMORY} pyspark-shell"
    return env


def java_missing() -> str | None:
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return None
    return "no Java runtime (install openjdk-17-jre-headless or set JAVA_HOME): the Spark side was not run"


def run(customers: int, base: Path, *, target: str = DEFAULT_SPARK, repeat: int = 3, seed: int = 7,
        tools: tuple[str, ...] = TOOLS, log=_log) -> dict:
    """Generate both warehouses under `base`, probe both engines, run every tool on both; the results as a dict."""
    from bench.harness import _commit, child

    out: dict = {"meta": {"date": date.today().isoformat(), "commit": _commit(), "customers": customers, "seed": seed,
                          "repeat": repeat,
                          "spark": target, "driver_memory": DRIVER_MEMORY, "cpus": os.cpu_count(),
                          "load_start": round(os.getloadavg()[0], 2)},
                 "generate": {}, "probes": {}, "tools": []}
    started = time.perf_counter()
    engines = ["duckdb"] + ([] if (skip := java_missing()) else ["spark"])
    if skip:
        out["spark_error"] = skip
    for engine in engines:
        home = base / engine / "home"
        env = _env(engine, target, home)
        log(f"{engine}: generating {customers:,} customers …")
        gen = out["generate"][engine] = child({"kind": "generate", "home": str(home), "customers": customers,
                                               "seed": seed}, module="bench.side_worker", env=env)
        log(f"  {gen.get('generate_s')} s" + ("" if gen.get("ok") else f" — {gen.get('error')}"))
        if gen.get("ok"):
            log(f"{engine}: probes …")
            out["probes"][engine] = child({"kind": "probe", "home": str(home), "repeat": repeat},
                                          module="bench.side_worker", env=env)
    for tool in tools:
        row: dict = {"tool": tool}
        for engine in engines:
            if not out["generate"][engine].get("ok"):
                row[engine] = {"ok": False, "error": "no warehouse"}
                continue
            home = base / engine / "home"
            row[engine] = child({"kind": "tool", "tool": tool, "home": str(home), "repeat": repeat},
                                module="bench.side_worker", env=_env(engine, target, home))
            r = row[engine]
            log(f"{tool} on {engine}: cold {r.get('cold_s')} s, warm {r.get('warm_median_s')} s"
                + ("" if r.get("ok") else f" — {r.get('error')}"))
        row["same_numbers"] = agree(row.get("duckdb"), row.get("spark"))
        out["tools"].append(row)
    out["meta"]["total_s"] = round(time.perf_counter() - started, 1)
    out["crossover"] = crossover(out["probes"], target)
    return out


def agree(a: dict | None, b: dict | None) -> dict | None:
    """Whether both engines' numeric metrics agree (within 1e-6 relative; timings are not compared), and for each
    that differs, both values."""
    if not (a and b and a.get("ok") and b.get("ok")):
        return None
    x, y = a.get("numbers") or {}, b.get("numbers") or {}
    keys = sorted(k for k in set(x) | set(y) if not TIMING.search(k))
    differ = [{"metric": k, "duckdb": x.get(k), "spark": y.get(k)} for k in keys
              if k not in x or k not in y or not math.isclose(x[k], y[k], rel_tol=REL, abs_tol=1e-9)]
    return {"ok": not differ, "compared": len([k for k in keys if k in x and k in y]), "differ": differ[:20]}


def crossover(probes: dict, target: str = DEFAULT_SPARK) -> dict:
    """Each engine's fixed cost per query and per-row costs, from the probes (medians of warm runs)."""
    out = {}
    for engine, res in probes.items():
        p = (res or {}).get("probes") or {}
        if not p:
            continue
        fixed = p["fixed cost (37-row table)"]["median_s"]
        scans = [p[k] for k in ("scan orders, 1 row back", "scan events, group by type")]
        back = p["orders per customer, all rows back"]
        out[engine] = {"fixed_s": fixed, "scan_rows_per_s": _rate(scans, fixed),
                       "group_and_return_rows_per_s": _rate([back], fixed)}
    if {"duckdb", "spark"} <= out.keys() and out["duckdb"]["scan_rows_per_s"] and out["spark"]["scan_rows_per_s"]:
        d, s = out["duckdb"], out["spark"]
        ratio = d["scan_rows_per_s"] / s["scan_rows_per_s"]
        out["spark_cores_to_match_duckdb_per_row"] = round(ratio * _cores(target), 1)
        out["note"] = ("Spark's per-row scan rate here used the cores of `local[N]`; a cluster scales it with its "
                       "cores, its fixed cost per query does not shrink.")
    return out


def _rate(probes: list[dict], fixed: float) -> int | None:
    """Rows scanned per second beyond the fixed cost; None when a probe is not clearly above it (too few rows)."""
    if any(p["median_s"] < 1.2 * fixed for p in probes):
        return None
    return round(sum(p["rows_scanned"] for p in probes) / sum(p["median_s"] - fixed for p in probes))


def _cores(target: str) -> int:
    """Cores of the measured local Spark (`local[N]` → N; `local[*]` → the machine's)."""
    inner = target[len("local["):-1] if target.startswith("local[") else "1"
    return int(inner) if inner.isdigit() else (os.cpu_count() or 1)


def _s(v) -> str:
    return "–" if v is None else (f"{v:,.3f}" if v < 10 else f"{v:,.1f}")


def _num(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.6g}"


def _r(rate: int | None) -> str:
    return "– (too few rows to see past the fixed cost)" if rate is None else f"{rate / 1e6:,.1f}M rows/s"


def markdown(res: dict) -> str:
    """The side-by-side table (and the probes behind the crossover estimate) for docs/performance.md."""
    m = res["meta"]
    gen = res.get("generate", {})
    lines = [f"DuckDB vs Spark `{m['spark']}` (driver {m.get('driver_memory')}) at **{m['customers']:,} customers**, "
             f"{m['date']}, {m['cpus']} cores, load average {m['load_start']} at start; each tool in a fresh "
             f"process: cold = first run (saves what the tool saves), warm = median of {m['repeat']} runs. "
             "Demo generated in " + ", ".join(f"{e} {_s(g.get('generate_s'))} s" for e, g in gen.items()) + ".",
             "", "| tool | DuckDB cold s | DuckDB warm s | Spark session start s | Spark cold s | Spark warm s | "
             "Spark ÷ DuckDB (warm) | Spark statements per run | same numbers |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in res.get("tools", []):
        d, s = row.get("duckdb") or {}, row.get("spark") or {}
        ratio = (s["warm_median_s"] / d["warm_median_s"] if d.get("warm_median_s") and s.get("warm_median_s")
                 else None)
        same = row.get("same_numbers")
        mark = "–" if same is None else ("yes" if same["ok"] else "**no**: " + "; ".join(
            f"{d['metric']} {_num(d['duckdb'])} vs {_num(d['spark'])}" for d in same["differ"][:3]))
        if same and same["ok"]:
            mark += f" ({same['compared']} metrics)"
        err = "; ".join(f"{e}: {r.get('error', '')[:100]}" for e, r in (("DuckDB", d), ("Spark", s))
                        if r and not r.get("ok"))
        lines.append(f"| {row['tool']} | {_s(d.get('cold_s'))} | {_s(d.get('warm_median_s'))} | "
                     f"{_s(s.get('session_s'))} | {_s(s.get('cold_s'))} | {_s(s.get('warm_median_s'))} | "
                     f"{'–' if ratio is None else f'{ratio:,.1f}×'} | {s.get('statements') or '–'} | {mark}{' **' + err + '**' if err else ''} |")
    probes = res.get("probes", {})
    if probes:
        names = list(next(iter(probes.values())).get("probes", {}))
        lines += ["", "| probe query | rows scanned | rows back | DuckDB ms | Spark ms |", "| --- | ---: | ---: | ---: | ---: |"]
        for name in names:
            cells = [(probes.get(e) or {}).get("probes", {}).get(name, {}) for e in ("duckdb", "spark")]
            first = cells[0] or cells[1]
            lines.append(f"| {name} | {first.get('rows_scanned', 0):,} | {first.get('rows_returned', 0):,} | "
                         + " | ".join("–" if not c else f"{1000 * c['median_s']:,.1f}" for c in cells) + " |")
    c = res.get("crossover") or {}
    if "duckdb" in c and "spark" in c:
        d, s = c["duckdb"], c["spark"]
        lines += ["", f"Fixed cost per query: DuckDB {1000 * d['fixed_s']:,.1f} ms, Spark {1000 * s['fixed_s']:,.1f} ms; "
                  f"scan throughput beyond it: DuckDB {_r(d['scan_rows_per_s'])}, Spark {_r(s['scan_rows_per_s'])} "
                  f"(group by customer, every row back: {_r(d['group_and_return_rows_per_s'])} vs "
                  f"{_r(s['group_and_return_rows_per_s'])})."]
    if res.get("spark_error"):
        lines += ["", f"Spark: **{res['spark_error']}**"]
    return "\n".join(lines) + "\n"


def save(res: dict, results_dir: Path = RESULTS) -> Path:
    """Into scale-out-<date>.json under `side_by_side`, keeping what bench/scale_out_compare.py wrote there."""
    path = Path(results_dir) / f"scale-out-{res['meta']['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, "side_by_side": res}, indent=2, default=str) + "\n")
    return path


def cli(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--spark", default=DEFAULT_SPARK, help="local[N] (the Spark side's master)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", nargs="*", default=list(TOOLS))
    ap.add_argument("--keep", type=Path, help="Work in this folder and keep it (default: a temporary one).")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--render", type=Path, help="Recompute the agreement and the probes' rates of a saved "
                    "scale-out-<date>.json (rewritten in place) and print its table; runs nothing.")
    a = ap.parse_args(argv)
    if a.render:
        res = json.loads(a.render.read_text())["side_by_side"]
        for row in res["tools"]:
            row["same_numbers"] = agree(row.get("duckdb"), row.get("spark"))
        res["crossover"] = crossover(res["probes"], res["meta"]["spark"])
        save(res, a.render.parent)
        sys.stdout.write(markdown(res))
        return 0
    base = a.keep or Path(tempfile.mkdtemp(prefix="northstar-side-"))
    try:
        res = run(a.customers, base, target=a.spark, repeat=a.repeat, tools=tuple(a.tools))
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    _log(f"results: {save(res, a.results)}")
    sys.stdout.write(markdown(res))
    failed = [r["tool"] for r in res["tools"] for e in ("duckdb", "spark") if not (r.get(e) or {"ok": True})["ok"]]
    return 1 if failed or res.get("spark_error") else 0


if __name__ == "__main__":
    sys.exit(cli())
