"""Ibis or sqlglot for "SQL written once"? Three representative tool queries, both ways, timed (docs/scale-out.md).

* sqlglot: the tool's SQL as it is (DuckDB dialect) runs unchanged on DuckDB; on Spark the connection binds the
  parameters and transpiles it (tools/warehouse/backends/sqlmap.py). Measured: the DuckDB run, and the transpile
  cost that only Spark pays.
* Ibis: the same question as an Ibis expression, executed by Ibis's DuckDB backend (and compiled to Spark SQL).

Usage: `python -m bench.scale_out_compare [--customers 100000] [--repeat 5] [--spark]`. Writes
bench/results/scale-out-<date>.json and prints a Markdown table. Results are checked equal before timing.
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

START, END, AS_OF = date(2026, 6, 1), date(2026, 8, 31), date(2026, 9, 30)
CHANNELS = ["search", "social", "display"]

# ---- 1. campaign_report's KPIs by channel (tools/analytics/campaigns.py) ----
KPI_SQL = """SELECT channel AS grp, sum(spend) AS spend, sum(impressions) AS impressions, sum(clicks) AS clicks,
    sum(conversions) AS conversions, sum(revenue) AS revenue
  FROM ad_spend WHERE date BETWEEN ? AND ? AND channel IN (SELECT unnest(?)) GROUP BY 1 ORDER BY 1"""


def kpi_ibis(t):
    s = t.table("ad_spend")
    s = s.filter(s.date.between(START, END), s.channel.isin(CHANNELS))
    return (s.group_by(grp=s.channel)
            .aggregate(spend=s.spend.sum(), impressions=s.impressions.sum(), clicks=s.clicks.sum(),
                       conversions=s.conversions.sum(), revenue=s.revenue.sum())
            .order_by("grp"))


# ---- 2. detect_anomalies' daily series (tools/analytics/anomalies.py) ----
SERIES_SQL = """SELECT date AS d, sum(conversions)::DOUBLE AS num, sum(clicks)::DOUBLE AS den
  FROM ad_spend WHERE date BETWEEN ? AND ? AND channel = ? GROUP BY 1 ORDER BY 1"""


def series_ibis(t):
    s = t.table("ad_spend")
    s = s.filter(s.date.between(START, END), s.channel == "search")
    return (s.group_by(d=s.date).aggregate(num=s.conversions.sum().cast("float64"),
                                           den=s.clicks.sum().cast("float64")).order_by("d"))


# ---- 3. segment_customers' RFM base (tools/analytics/customers/segmentation.py) ----
RFM_SQL = """SELECT o.customer_id, date_diff('day', max(o.order_date), ?::DATE) AS recency_days,
    count(*) AS frequency, sum(o.revenue) AS monetary, any_value(c.acquisition_channel) AS channel
  FROM orders o JOIN customers c USING (customer_id) WHERE o.order_date <= ?
  GROUP BY o.customer_id ORDER BY o.customer_id"""


def rfm_ibis(t):
    import ibis

    o, c = t.table("orders"), t.table("customers")
    o = o.filter(o.order_date <= AS_OF)
    j = o.join(c, "customer_id")
    return (j.group_by("customer_id")
            .aggregate(recency_days=(ibis.literal(AS_OF) - j.order_date.max()).cast("int64"),
                       frequency=j.count(), monetary=j.revenue.sum(), channel=j.acquisition_channel.arbitrary())
            .order_by("customer_id"))


QUERIES = {"campaign KPIs": (KPI_SQL, [START, END, CHANNELS], kpi_ibis),
           "anomaly series": (SERIES_SQL, [START, END, "search"], series_ibis),
           "RFM base": (RFM_SQL, [AS_OF, AS_OF], rfm_ibis)}


def _median(fn, repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rows(table) -> list[tuple]:
    cols = [c.to_pylist() for c in table.columns]
    return [tuple(round(v, 6) if isinstance(v, float) else (v.days if hasattr(v, "days") else v) for v in row)
            for row in zip(*cols, strict=True)]


def main() -> None:
    import ibis

    from tools.warehouse import connect, generate
    from tools.warehouse.backends.sqlmap import bind, parse, to_spark

    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--spark", action="store_true", help="also time both on a local Spark session")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="scaleout"))
    con = connect(home / "warehouse.duckdb")
    generate(con, customers=args.customers, seed=7)
    raw = con._cursor if hasattr(con, "_cursor") else con  # the DuckDB connection itself, for Ibis
    ib = ibis.duckdb.from_connection(raw)
    out = []
    for name, (sql, params, build) in QUERIES.items():
        expr = build(ib)
        sql_rows = _rows(con.execute(sql, params).to_arrow_table())
        ibis_rows = _rows(expr.to_pyarrow())
        assert sql_rows == ibis_rows, f"{name}: Ibis and SQL disagree"
        t_sql = _median(lambda sql=sql, params=params: con.execute(sql, params).to_arrow_table(), args.repeat)
        t_ibis = _median(lambda expr=expr: expr.to_pyarrow(), args.repeat)
        t_build = _median(lambda build=build: ibis.to_sql(build(ib), dialect="duckdb"), args.repeat)
        t_transpile = _median(lambda sql=sql, params=params: to_spark(parse(bind(sql, params))), args.repeat)
        row = {"query": name, "rows": len(sql_rows), "duckdb_sql_ms": round(t_sql * 1000, 2),
               "duckdb_ibis_ms": round(t_ibis * 1000, 2), "ibis_vs_sql": round(t_ibis / t_sql - 1, 3),
               "ibis_build_compile_ms": round(t_build * 1000, 2), "sqlglot_transpile_ms": round(t_transpile * 1000, 2),
               "sql_lines": len(sql.strip().splitlines()),
               "ibis_lines": len(inspect.getsource(build).strip().splitlines()) - 1}
        out.append(row)
    if args.spark:
        _spark_side(home, args, out)
    result = {"date": date.today().isoformat(), "customers": args.customers, "repeat": args.repeat, "rows": out}
    path = Path(__file__).parent / "results" / f"scale-out-{date.today().isoformat()}.json"
    old = json.loads(path.read_text()) if path.exists() else {}  # keeps bench/side_by_side.py's figures
    path.write_text(json.dumps({**old, **result}, indent=2))
    keys = list(out[0])
    print("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in out:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    print(f"written {path}")


def _spark_side(home: Path, args, out: list[dict]) -> None:
    """Both on local Spark: the connection's transpiled SQL, and Ibis's pyspark backend on the same views."""
    import ibis

    from tools.warehouse import generate
    from tools.warehouse.backends import SparkBackend

    sp = SparkBackend("local[2]").connect(home / "spark" / "warehouse.duckdb")
    generate(sp, customers=args.customers, seed=7)
    sp.store.ensure_views(["ad_spend", "orders", "customers"])
    ib = ibis.pyspark.connect(sp.spark)
    for row, (sql, params, build) in zip(out, QUERIES.values(), strict=True):
        expr = build(ib)
        assert _rows(sp.execute(sql, params).arrow()) == _rows(expr.to_pyarrow()), f"{row['query']}: Spark differs"
        row["spark_sql_ms"] = round(_median(lambda sql=sql, params=params: sp.execute(sql, params), 3) * 1000, 1)
        row["spark_ibis_ms"] = round(_median(lambda expr=expr: expr.to_pyarrow(), 3) * 1000, 1)


if __name__ == "__main__":
    main()
