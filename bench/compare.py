"""Side-by-side comparisons: BG/NBD vs lifetimes, exact Markov vs ChannelAttribution, campaign_report vs pandas.

The `job_*` functions run in a bench.worker child (Northstar's environment); the libraries' side runs in
bench/extern.py inside bench/.venv-compare (see bench/venv.py). Both sides read the same input files.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

from bench.measure import summary, timed

JOURNEYS = 1_000_000
PANDAS_COLS = ["spend", "impressions", "clicks", "conversions", "revenue"]


def job_export(job: dict) -> dict:
    """Write the comparison inputs: the warehouse's BG/NBD summary (CSV) and path tables (DuckDB + CSV)."""
    from tools.warehouse import connect

    home, out_dir = Path(job["home"]), Path(job["dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(home / "warehouse.duckdb")
    t0 = time.perf_counter()
    as_of = con.execute("SELECT max(order_date) FROM orders").fetchall()[0][0]
    bg_csv = out_dir / "bgnbd_summary.csv"
    con.execute(f"""COPY (
        WITH days AS (SELECT customer_id, order_date AS d FROM orders WHERE order_date <= DATE '{as_of}'
                      GROUP BY ALL)
        SELECT customer_id, count(*) - 1 AS x, date_diff('day', min(d), max(d)) / 7.0 AS t_x,
               date_diff('day', min(d), DATE '{as_of}') / 7.0 AS T
        FROM days GROUP BY customer_id ORDER BY customer_id) TO '{bg_csv}' (HEADER)""")
    customers = con.execute(f"SELECT count(*) FROM read_csv('{bg_csv}')").fetchall()[0][0]
    con.execute("CREATE OR REPLACE TABLE bench_paths_demo AS SELECT * FROM read_csv(?, delim = ';', header = true)",
                [job["demo_paths"]])
    n = job.get("journeys", JOURNEYS)
    con.execute("""CREATE OR REPLACE TABLE bench_paths_journeys AS
        WITH j AS (SELECT journey_id, string_agg(channel::VARCHAR, ' > ' ORDER BY touch_time, touchpoint_id) AS path
                   FROM touchpoints WHERE journey_id <= $n GROUP BY journey_id),
             c AS (SELECT journey_id, count(*) AS conv, sum(value) AS value FROM conversions
                   WHERE journey_id <= $n GROUP BY journey_id)
        SELECT path, coalesce(c.conv, 0)::DOUBLE AS total_conversions,
               coalesce(c.value, 0)::DOUBLE AS total_conversion_value,
               CASE WHEN c.conv IS NULL THEN 1.0 ELSE 0.0 END AS total_null
        FROM j LEFT JOIN c USING (journey_id) ORDER BY journey_id""", {"n": n})
    paths_csv = out_dir / "journeys.csv"
    con.execute(f"COPY bench_paths_journeys TO '{paths_csv}' (HEADER, DELIMITER ';')")
    journeys, conversions = con.execute("SELECT count(*), sum(total_conversions) FROM bench_paths_journeys").fetchall()[0]
    con.close()
    return {"seconds": round(time.perf_counter() - t0, 3), "as_of": as_of, "bgnbd_csv": str(bg_csv),
            "customers": customers, "journeys_csv": str(paths_csv), "journeys": journeys,
            "journey_conversions": conversions}


def _read_columns(csv: str, columns: list[str]):
    import duckdb
    import numpy as np

    cols = ", ".join(f'"{c}"::DOUBLE AS "{c}"' for c in columns)
    d = duckdb.connect().execute(f"SELECT {cols} FROM read_csv(?)", [csv]).fetchnumpy()
    return [np.asarray(d[c], dtype=float) for c in columns]


def job_ours_bgnbd(job: dict) -> dict:
    """tools.analytics.customers.clv_models.fit_bgnbd on the same input as lifetimes, as the tool fits: from the
    raw rows, identical customers merged inside the fit (exact; the merge is timed); also with one row per repeat
    customer (merge=False), and as predict_clv fits above FIT_CAP (a seeded sample, merged)."""
    import numpy as np

    from tools.analytics.customers.clv_models import BgnbdData, bgnbd_ll, fit_bgnbd

    x, t_x, T = _read_columns(job["csv"], job["columns"])
    fit_bgnbd(x[:1000], t_x[:1000], T[:1000])  # warm-up (first-call costs), not timed; the library gets the same
    names = "r alpha a b".split()
    times, (params, _) = timed(lambda: fit_bgnbd(x, t_x, T), job.get("repeat", 3), job.get("budget_s"))
    out = {"rows": int(x.size), "unique_rows": BgnbdData.build(x, t_x, T).rows,
           "params": dict(zip(names, map(float, params), strict=True)),
           "log_likelihood": float(bgnbd_ll(params, x, t_x, T)), **summary(times)}
    if job.get("plain", True):
        plain_times, (plain, _) = timed(lambda: fit_bgnbd(x, t_x, T, merge=False), job.get("repeat", 3),
                                        job.get("budget_s"))
        out["plain"] = {**summary(plain_times), "params": dict(zip(names, map(float, plain), strict=True))}
    try:  # what predict_clv actually does above FIT_CAP customers: fit on a seeded sample, score everyone
        from tools.analytics.customers.clv import FIT_CAP
    except ImportError:
        FIT_CAP = None
    if FIT_CAP and x.size > FIT_CAP:
        def tool_fit():
            pick = np.sort(np.random.default_rng(0).choice(x.size, FIT_CAP, replace=False))
            return fit_bgnbd(x[pick], t_x[pick], T[pick])[0]

        cap_times, capped = timed(tool_fit, job.get("repeat", 3), job.get("budget_s"))
        out["as_tool"] = {**summary(cap_times), "fit_rows": FIT_CAP,
                          "params": dict(zip(names, map(float, capped), strict=True)),
                          "max_param_gap_vs_all": float(np.max(np.abs(capped - params) / params)),
                          "log_likelihood_all_customers": float(bgnbd_ll(capped, x, t_x, T))}
    return out


def job_ours_markov(job: dict) -> dict:
    """attribute_conversions(model='markov', paths_table=…) end to end (path strings in → credit out)."""
    from bench.worker import safe_registry
    from tools.warehouse import connect

    spec = safe_registry()[0]["attribute_conversions"]
    con = connect(Path(job["home"]) / "warehouse.duckdb")
    params = spec.parse({"model": "markov", "paths_table": job["table"], "separator": ">"})
    con.execute("CREATE OR REPLACE TABLE bench_paths_warmup AS SELECT * FROM bench_paths_demo LIMIT 1000")
    spec.run(con, spec.parse({**params.model_dump(), "paths_table": "bench_paths_warmup"}))  # warm-up, not timed
    times, res = timed(lambda: spec.run(con, params), job.get("repeat", 3), job.get("budget_s"))
    out = {**summary(times), "rows": con.execute(f'SELECT count(*) FROM "{job["table"]}"').fetchall()[0][0],
           "conversions": res.metrics["by_model"]["markov"], "removal_effects": res.metrics["removal_effects"]}
    try:  # split the time: reading the paths (SQL) vs the exact absorbing-chain solve
        from tools.analytics.attribution.models import markov_removal_effects
        from tools.analytics.attribution.paths import table_paths

        read_times, (paths, _) = timed(lambda: table_paths(con, params.paths_table, params.separator), 1)
        solve_times, _ = timed(lambda: markov_removal_effects(paths, 1), job.get("repeat", 3), job.get("budget_s"))
        out["split"] = {"read_paths_s": round(read_times[0], 4), "markov_solve_median_s": summary(solve_times)["median_s"],
                        "states": len(paths.units)}
    except Exception as exc:  # private helpers may change; the end-to-end time above is what counts
        out["split"] = {"error": f"{type(exc).__name__}: {exc}"}
    con.close()
    return out


def pandas_kpis(df, start, end):
    """campaign_report's numbers in pandas: totals, per-channel KPIs and the previous period's change."""
    def ratios(f):
        f = f.copy()
        f["ctr"] = f["clicks"] / f["impressions"]
        f["cvr"] = f["conversions"] / f["clicks"]
        f["cpa"] = f["spend"] / f["conversions"]
        f["roas"] = f["revenue"] / f["spend"]
        return f

    cur = df[(df["date"] >= start) & (df["date"] <= end)]
    total = cur[PANDAS_COLS].sum()
    by_channel = ratios(cur.groupby("channel", observed=True)[PANDAS_COLS].sum()).sort_values("spend",
                                                                                           ascending=False)
    days = (end - start).days + 1
    prev_start, prev_end = start - timedelta(days=days), start - timedelta(days=1)
    prev = df[(df["date"] >= prev_start) & (df["date"] <= prev_end)][PANDAS_COLS].sum()
    change = (total - prev) / prev
    return total, by_channel, change


def job_pandas_kpis(job: dict) -> dict:
    """The same KPIs as campaign_report's example in pandas: compute-only, and load (DuckDB → DataFrame) + compute."""
    import duckdb
    import pandas as pd

    start, end = date.fromisoformat(job["start"]), date.fromisoformat(job["end"])
    con = duckdb.connect(str(Path(job["home"]) / "warehouse.duckdb"), read_only=True)

    def load():
        df = con.sql("SELECT date, channel, campaign_id, spend, impressions, clicks, conversions, revenue "
                     "FROM ad_spend").df()
        df["date"] = pd.to_datetime(df["date"]).dt.date
        return df

    load_times, df = timed(load, job.get("repeat", 3))
    times, (total, _, _) = timed(lambda: pandas_kpis(df, start, end), job.get("repeat", 3))
    both, _ = timed(lambda: pandas_kpis(load(), start, end), job.get("repeat", 3))
    con.close()
    return {"pandas": pd.__version__, "rows": int(len(df)), "compute": summary(times), "load": summary(load_times),
            "load_and_compute": summary(both), "total_spend": float(total["spend"])}
