"""The child process of a benchmark: `python -m bench.worker JOB.json` runs one job and writes its result JSON.

Each measurement runs in a fresh process so that its peak RSS (getrusage ru_maxrss) belongs to it alone; with
several tool cases in one process (the smoke test), the kernel's peak mark is reset before each case instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.measure import cold_warm, peak_rss_mb, percentile, reset_peak, rss_mb, summary, tables_read, timed

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT_REVIEWS = 100_000
CORPORA = ("tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt")


def job_generate(job: dict) -> dict:
    """Build the demo warehouse (timed: generation, then the CHECKPOINT that writes it), then the knowledge index."""
    from tools.warehouse import connect
    from tools.warehouse.demo import generate

    home = Path(job["home"])
    con = connect(home / "warehouse.duckdb")
    t0 = time.perf_counter()
    counts = generate(con, customers=job["customers"], seed=job.get("seed", 7))
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    con.execute("CHECKPOINT")
    out = {"generate_s": round(gen_s, 3), "checkpoint_s": round(time.perf_counter() - t0, 3), "rows": counts,
           "peak_rss_mb": peak_rss_mb()}
    con.close()
    out["warehouse_mb"] = round((home / "warehouse.duckdb").stat().st_size / 2**20, 1)
    if job.get("bench_reviews", True):
        t0 = time.perf_counter()
        con = connect(home / "warehouse.duckdb")
        out["bench_reviews"] = {**bench_reviews(con, SENTIMENT_REVIEWS, job.get("seed", 7)),
                                "seconds": round(time.perf_counter() - t0, 3)}
        con.close()
    if job.get("knowledge", True):
        try:
            from knowledge.index import rebuild

            t0 = time.perf_counter()
            info = rebuild(home)
            out["knowledge"] = {"seconds": round(time.perf_counter() - t0, 3), "chunks": info.get("chunks")}
        except Exception as exc:  # the knowledge base is only needed by search_knowledge
            out["knowledge"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _input_tables(con) -> set[str]:
    from tools.warehouse.schema import BY_NAME

    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = 'main'").fetchall()}
    return {n for n in names if n not in BY_NAME or BY_NAME[n].kind == "canonical"}


def bench_reviews(con, n: int = SENTIMENT_REVIEWS, seed: int = 7) -> dict:
    """A user table of n reviews with (almost) all-distinct texts, for analyze_sentiment at scale.

    The demo's reviews are assembled from a few dozen template sentences, and the tool scores each distinct
    text once, so they cost next to nothing; real reviews are all different. Each text here joins two real
    sentences from VADER's validation corpora (../shared/datasets/sentiment), or, without them, two demo reviews,
    each prefixed with the review's number so that no sentence repeats either (the tool also scores the
    sentences that mention an aspect, once per distinct sentence)."""
    import numpy as np
    import pyarrow as pa

    shared = Path(os.environ.get("NORTHSTAR_SHARED", ROOT.parent / "shared")) / "datasets" / "sentiment"
    files = [str(shared / f) for f in CORPORA if (shared / f).exists()]
    source = ("SELECT DISTINCT text FROM read_csv(?, delim = '\t', header = false, quote = '', escape = '', "
              "columns = {'id': 'VARCHAR', 'rating': 'DOUBLE', 'text': 'VARCHAR'}, ignore_errors = true)"
              if files else "SELECT DISTINCT text FROM reviews")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _bench_sentences AS SELECT row_number() OVER () - 1 AS i, text "
                f"FROM ({source}) WHERE text IS NOT NULL", [files] if files else [])
    m = con.execute("SELECT count(*) FROM _bench_sentences").fetchall()[0][0]  # fetchall completes the result
    rng = np.random.default_rng(seed)
    con.register("_bench_pairs", pa.table({"k": np.arange(n), "a": rng.integers(0, m, n), "b": rng.integers(0, m, n),
                                           "day": rng.integers(0, 365, n)}))
    con.execute("""CREATE OR REPLACE TABLE bench_reviews AS
        SELECT k + 1 AS review_id, DATE '2025-10-01' + day::INTEGER AS review_date,
               'Order ' || (k + 1) || ': ' || sa.text || ' Also, on visit ' || (k + 1) || ', ' || sb.text AS text
        FROM _bench_pairs JOIN _bench_sentences sa ON sa.i = a JOIN _bench_sentences sb ON sb.i = b
        ORDER BY review_id""")
    con.unregister("_bench_pairs")
    rows, distinct = con.execute("SELECT count(*), count(DISTINCT text) FROM bench_reviews").fetchall()[0]
    return {"rows": rows, "distinct_texts": distinct, "source": "VADER corpora" if files else "demo reviews"}


def _bench_reviews_args(con) -> dict:
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'bench_reviews'").fetchall()[0][0]:
        bench_reviews(con)  # a warehouse built before this table existed
    return {"table": "bench_reviews", "text_column": "text", "date_column": "review_date", "id_column": "review_id",
            "start": None, "end": None}


def _current_budget(con) -> dict:
    """allocate_budget's example budget is sized for 50k customers: use the last 30 days' actual spend instead."""
    spend = con.execute("SELECT sum(spend) FROM ad_spend WHERE date > (SELECT max(date) FROM ad_spend) - 30"
                        ).fetchall()[0][0]
    return {"total_budget": round(float(spend or 0), -3) or 1000.0, "horizon_days": 30}


DYNAMIC = {"bench_reviews": _bench_reviews_args, "current_budget": _current_budget}


def _run_case(con, registry: dict, case: dict, home: Path, shared: bool, known: set[str]) -> dict:
    from tools.registry import ToolContext

    name = case["tool"]
    out: dict = {"tool": name, "case": case.get("case", "example")}
    spec = registry.get(name)
    if spec is None:
        return {**out, "ok": False, "error": "not registered"}
    try:
        args = spec.example.model_dump(mode="json")
        if case.get("dynamic"):
            args.update(DYNAMIC[case["dynamic"]](con))
        args.update(case.get("args") or {})
        params = spec.parse(args)
    except Exception as exc:
        return {**out, "ok": False, "error": f"bad arguments: {type(exc).__name__}: {exc}"}
    out["args"] = params.model_dump(mode="json", exclude_defaults=True)
    ctx = ToolContext(home=home, user="bench", role="analyst")
    peak_mode = "VmHWM" if shared and reset_peak() else "ru_maxrss"
    out["rss_before_mb"] = rss_mb()
    out["load_start"] = round(os.getloadavg()[0], 2)  # runs of a 10M bench span an hour: the load per tool
    con.execute("CALL enable_logging('QueryLog')")
    try:
        if case.get("queries"):  # latency mode: one warm-up call, then each query once
            t0 = time.perf_counter()
            spec.run(con, params, ctx)
            out["warmup_s"] = out["first_s"] = round(time.perf_counter() - t0, 4)
            lat = []
            for q in case["queries"]:
                p = spec.parse({**args, "query": q})
                t0 = time.perf_counter()
                spec.run(con, p, ctx)
                lat.append(1000 * (time.perf_counter() - t0))
            out.update(latency_ms={"n": len(lat), "p50": round(percentile(lat, 50), 2),
                                   "p95": round(percentile(lat, 95), 2), "max": round(max(lat), 2)})
            times = [x / 1000 for x in lat]
            res = None
        else:
            times, res = timed(lambda: spec.run(con, params, ctx), case.get("repeat", 3), case.get("budget_s"))
        out.update(ok=True, **summary(times))
        if not case.get("queries"):
            out.update(cold_warm(times))
    except Exception as exc:  # a failing tool is a result, not a crash of the run
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:2000],
                   traceback=traceback.format_exc(limit=-4)[-3000:])
        res = None
    out["peak_rss_mb"] = rss_mb("VmHWM") if peak_mode == "VmHWM" else peak_rss_mb()
    out["peak_rss_source"] = peak_mode
    try:
        logged = [r[0] for r in con.execute("SELECT DISTINCT message FROM duckdb_logs "
                                            "WHERE type = 'QueryLog'").fetchall()]
        con.execute("CALL disable_logging()")
        con.execute("CALL truncate_duckdb_logs()")
        read = sorted(tables_read(logged, known))
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in read}
        out.update(tables_read=counts, rows=sum(counts.values()), queries=len(logged))
    except Exception as exc:
        out.update(rows=None, rows_error=f"{type(exc).__name__}: {exc}")
    if res is not None:
        out["summary"] = res.summary[:400]
        out["metrics"] = {k: v for k, v in res.metrics.items() if isinstance(v, int | float) and
                          not isinstance(v, bool)}
    return out


def safe_registry() -> tuple[dict, dict[str, str]]:
    """Like tools.registry.load_tools, but a tool module that fails to import is reported, not fatal."""
    import importlib

    from tools.registry import TOOLS, tool_modules

    errors = {}
    for mod in tool_modules():
        try:
            importlib.import_module(mod)
        except Exception as exc:
            errors[mod] = f"{type(exc).__name__}: {exc}"[:500]
    return dict(sorted(TOOLS.items())), errors


def job_tools(job: dict) -> dict:
    """Run tool cases against the warehouse in job['home'] (all in this process: pass one case for a clean RSS)."""
    t0 = time.perf_counter()
    from tools.warehouse import connect

    registry, _ = safe_registry()
    import_s = time.perf_counter() - t0
    home = Path(job["home"])
    con = connect(home / "warehouse.duckdb")
    known = _input_tables(con)
    shared = len(job["cases"]) > 1
    cases = [_run_case(con, registry, c, home, shared, known) for c in job["cases"]]
    con.close()
    return {"import_s": round(import_s, 3), "cases": cases}


def _jobs() -> dict:
    from bench import agent_bench, compare, compare_segments

    return {"generate": job_generate, "tools": job_tools, "agent": agent_bench.job_agent,
            "export": compare.job_export, "ours_bgnbd": compare.job_ours_bgnbd,
            "ours_markov": compare.job_ours_markov, "pandas_kpis": compare.job_pandas_kpis,
            "segments": compare_segments.job_segments}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    try:
        out = _jobs()[job["kind"]](job)
        out.setdefault("ok", True)
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
               "traceback": traceback.format_exc(limit=-6)[-4000:]}
    out.setdefault("peak_rss_mb", peak_rss_mb())
    Path(job["out"]).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
