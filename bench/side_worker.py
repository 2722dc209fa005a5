"""The child process of the DuckDB-vs-Spark comparison: `python -m bench.side_worker JOB.json`.

The engine is chosen the way a user chooses it, by NORTHSTAR_WAREHOUSE in the child's environment (set by
bench/side_by_side.py), and the warehouse is opened through `tools.warehouse.connect`, so both sides run the
product's own code path. Each job runs in a fresh process: a Spark job pays for starting its JVM (reported apart
as `session_s`), exactly as a `northstar` command would.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

from bench.measure import peak_rss_mb

PROBES = {
    "fixed cost (37-row table)": ("SELECT count(*) AS n FROM campaigns", "campaigns"),
    "scan orders, 1 row back": ("SELECT count(*) AS n, sum(revenue) AS r, sum(items) AS i FROM orders", "orders"),
    "scan events, group by type": ("SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "events"),
    "orders per customer, all rows back": (
        "SELECT customer_id, count(*) AS n, sum(revenue) AS r, max(order_date) AS last FROM orders "
        "GROUP BY customer_id", "orders"),
}
"""Queries that separate an engine's fixed cost per query from its per-row throughput (the crossover estimate)."""


def _open(home: Path):
    """The warehouse of `home` on the engine NORTHSTAR_WAREHOUSE names; seconds to open it (Spark: JVM start)."""
    from tools.warehouse import connect

    t0 = time.perf_counter()
    con = connect(home / "warehouse.duckdb")
    con.execute("SELECT count(*) FROM campaigns").fetchall()  # a session is only usable after its first query
    return con, round(time.perf_counter() - t0, 3)


def job_generate(job: dict) -> dict:
    """`init --demo`'s generator at N customers on the selected engine."""
    from tools.warehouse.demo import generate

    home = Path(job["home"])
    t0 = time.perf_counter()
    from tools.warehouse import connect

    con = connect(home / "warehouse.duckdb")
    session_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = generate(con, customers=job["customers"], seed=job.get("seed", 7))
    gen_s = time.perf_counter() - t0
    con.close()
    return {"session_s": round(session_s, 3), "generate_s": round(gen_s, 3), "rows": counts}


def numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """A result's numeric metrics, nested ones flattened (`bgnbd.r`): what the two engines must agree on."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, dict):
            out.update(numbers(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[prefix + key] = value
    return out


def job_tool(job: dict) -> dict:
    """One tool: the first run in this fresh process (cold: lazy imports, the engine's first plans, saving the
    results the tool saves), then `repeat` warm runs (saved runs are found and not written again)."""
    from tools import get_tool, load_tools
    from tools.registry import ToolContext

    load_tools()
    spec = get_tool(job["tool"])
    params = spec.parse({**spec.example.model_dump(mode="json"), **(job.get("args") or {})})
    home = Path(job["home"])
    con, session_s = _open(home)
    ctx = ToolContext(home=home, user="bench", role="analyst")
    t0 = time.perf_counter()
    res = spec.run(con, params, ctx)
    cold = time.perf_counter() - t0
    warm: list[float] = []
    for _ in range(job.get("repeat", 3)):
        if sum(warm) + cold > job.get("budget_s", 900):
            break
        if hasattr(con, "trace"):  # Spark: count the statements of one warm run
            con.trace = []
        t0 = time.perf_counter()
        res = spec.run(con, params, ctx)
        warm.append(time.perf_counter() - t0)
    statements = len(con.trace) if getattr(con, "trace", None) is not None else None
    con.close()
    return {"tool": job["tool"], "statements": statements, "args": params.model_dump(mode="json", exclude_defaults=True),
            "session_s": session_s, "cold_s": round(cold, 4),
            "warm_median_s": round(statistics.median(warm), 4) if warm else None,
            "warm_runs_s": [round(t, 4) for t in warm], "rows_returned": len(res.data or []),
            "summary": (res.summary or "")[:300], "numbers": numbers(res.metrics)}


def job_probe(job: dict) -> dict:
    """PROBES on the selected engine: one warm-up each, then the median of `repeat` runs, with the rows scanned."""
    home = Path(job["home"])
    con, session_s = _open(home)
    out = {"session_s": session_s, "probes": {}}
    for name, (sql, table) in PROBES.items():
        scanned = con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]
        returned = _arrow(con, sql).num_rows  # also the warm-up
        times = []
        for _ in range(job.get("repeat", 3)):
            t0 = time.perf_counter()
            _arrow(con, sql)
            times.append(time.perf_counter() - t0)
        out["probes"][name] = {"sql": sql, "rows_scanned": scanned, "rows_returned": returned,
                               "median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times]}
    con.close()
    return out


def _arrow(con, sql: str):
    """All rows as Arrow, as the tools fetch them (DuckDB's note about the extra copy is silenced)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return con.execute(sql).to_arrow_table()


JOBS = {"generate": job_generate, "tool": job_tool, "probe": job_probe}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    load = round(os.getloadavg()[0], 2)
    try:
        out = {"ok": True, **JOBS[job["kind"]](job)}
    except Exception as exc:  # a failure is a result: the comparison goes on and shows it
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:1500],
               "traceback": traceback.format_exc(limit=-6)[-3000:]}
    out.update(load_start=load, peak_rss_mb=peak_rss_mb())
    Path(job["out"]).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
