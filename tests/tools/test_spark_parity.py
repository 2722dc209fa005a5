"""Parity: the same tools on the same small demo world give the same results on DuckDB and on Spark.

The world (tests/tools/spark_world.py): a real local Spark session (`local[1]`) and a real DuckDB file, both filled
by `init --demo`'s generator (2,000 customers, seed 7). Counts and sums must be equal, floats equal within 1e-9
relative (Spark and DuckDB may add a column's values in another order: the last bits of a double can differ), fitted
models within 1e-6. Java is needed: under CI=true its absence fails the module with what to install; elsewhere it
is skipped with that message. Marked slow (the JVM and the first queries take tens of seconds on a busy machine).
The actions on Spark: test_spark_actions.py.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.tools.spark_world import CUSTOMERS, FITTED_REL, REL, rows, run_both, same, world
from tools import get_tool
from tools.registry import ToolContext, ToolError
from tools.warehouse import WarehouseError, connect, table_names
from tools.warehouse.backends import parse_setting
from tools.warehouse.backends.sqlmap import bind, parse, to_spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]
TRACE: list[str] = []
"""Every statement the tools sent to the Spark connection in this module (bound): the dialect round-trip reads it."""


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(DuckDB connection, Spark connection, root) over the same demo world (tests/tools/spark_world.py)."""
    with world(tmp_path_factory.mktemp("parity"), "Spark's parity suite") as (duck, spark, root):
        spark.trace = TRACE
        yield duck, spark, root


CASES = [
    ("campaign_report", {}),
    ("campaign_report", {"group_by": "week", "channels": ["search", "social"], "start": "2026-06-01",
                         "end": "2026-08-31"}),
    ("detect_anomalies", {"metric": "conversions", "channel": "search", "start": "2026-04-01", "end": "2026-09-30"}),
    ("attribute_conversions", {"start": "2026-07-01", "end": "2026-09-30"}),
    ("segment_customers", {}),
    ("predict_clv", {}),
    ("score_churn", {}),
    ("allocate_budget", {"total_budget": 300_000, "scenarios": [{"shift_from": "search", "shift_to": "social"}]}),
    ("analyze_experiment", {"experiment_id": "EXP-FREESHIP"}),
    ("plan_experiment", {"relative_mde": 0.2, "daily_traffic": 2000}),  # the baseline read from the warehouse
    ("score_leads", {}),
    ("analyze_sentiment", {"start": "2026-06-01", "end": "2026-09-30"}),
    ("generate_content_variants", {"channel": "email_subject", "goal": "win back lapsed customers",
                                   "offer": "15% off", "n": 5}),
    ("plan_campaign", {"goal": "win back lapsed customers", "offer": "15% off", "channel": "email",
                       "holdout_pct": 0.1}),
    ("measure_campaign", {"campaign_id": "WB-2025-12"}),
    ("measure_campaign", {}),  # the most recent campaign, measured again: kept once (INSERT OR REPLACE)
]
"""Every read-only analytics tool but search_knowledge, which reads only the knowledge base's ChromaDB index
(knowledge/index.py), never the warehouse: nothing of it depends on the engine. plan_campaign reads the churn
run score_churn saved just before (on each engine its own); measure_campaign reads the demo's planted launches."""
FITTED = {"predict_clv", "score_churn", "score_leads"}


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_tool_results_are_the_same_on_spark(pair, name, args):
    if name == "plan_campaign" and not rows(pair[1], "SELECT count(*) FROM churn_scores")[0][0]:
        run_both(pair, "score_churn", {})  # run alone (-k): the churn run it plans from
    left, right = run_both(pair, name, args)
    assert left.data, f"{name} returned no rows: the comparison would prove nothing"
    rel = FITTED_REL if name in FITTED else REL
    for part in ("summary", "data", "metrics", "warnings"):
        same(_timeless(getattr(left, part)), _timeless(getattr(right, part)), f"{name}.{part}", rel)


def _timeless(value):
    """`…, saved 3 minutes ago` (how old the run a tool reads is, said to the approver) without its number: each
    engine's run was saved at another moment, and the clock may cross a minute between them."""
    import re

    if isinstance(value, str):
        return re.sub(r"saved \d+ (minute|hour|day)s? ago", "saved … ago", value)
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_timeless(v) for v in value]
    return value


SAVED = [
    ("churn_scores", "customer_id, probability, risk_band, top_reasons", FITTED_REL),
    ("lead_scores", "lead_id, probability, band, queue", FITTED_REL),
    ("review_scores", "source_table, row_key, compound, label", REL),
    ("campaign_outcomes", "campaign_id, measured_at, treated, holdout, rate_treated, rate_holdout, lift, ci_low, "
                          "ci_high, incremental_revenue, roi, conclusive", REL),
]


@pytest.mark.parametrize(("table", "columns", "rel"), SAVED, ids=[t for t, _, _ in SAVED])
def test_saved_results_are_the_same_rows_in_the_engine(pair, table, columns, rel):
    """What the tools above saved is in Spark's tables (not the local file) and the same rows as on DuckDB."""
    duck, spark, root = pair
    sql = f"SELECT {columns} FROM {table} ORDER BY 1, 2"
    left, right = rows(duck, sql), rows(spark, sql)
    assert left, f"no {table} rows: run the parity cases first (same module)"
    same(left, right, table, rel)
    assert (root / "spark" / "spark" / table).is_dir()
    assert not spark.local.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


QUERIES = [
    "SELECT country, count(*) AS customers, min(email) AS first_email FROM customers GROUP BY country ORDER BY 2 DESC",
    "SELECT category, avg(revenue) AS aov, sum(revenue) AS revenue FROM orders WHERE order_date >= DATE '2026-01-01' "
    "GROUP BY category ORDER BY category",
    "WITH m AS (SELECT date_trunc('month', order_date)::DATE AS month, count(*) AS n FROM orders GROUP BY 1) "
    "SELECT * FROM m ORDER BY month DESC LIMIT 5",
    "SELECT c.acquisition_channel, count(DISTINCT o.customer_id) AS buyers FROM customers c JOIN orders o "
    "USING (customer_id) GROUP BY 1 ORDER BY 1",
]


@pytest.mark.parametrize(("sql", "role"), [(QUERIES[0], "viewer"), (QUERIES[0], "approver"), (QUERIES[1], "viewer"),
                                           (QUERIES[2], "analyst"), (QUERIES[3], "viewer")],
                         ids=["q0-viewer", "q0-approver", "q1", "q2", "q3"])
def test_query_data_is_the_same_on_spark(pair, sql, role):
    duck, spark, root = pair
    left, right = run_both(pair, "query_data", {"sql": sql, "timeout_s": 60},
                           ToolContext(home=root, role=role))
    same(left.data, right.data, "query_data.data")
    assert left.metrics["masked_columns"] == right.metrics["masked_columns"]
    if "email" in sql and role == "viewer":  # the e-mails are pseudonymised on Spark too, never shown
        assert all(str(r["first_email"]).startswith("email_") for r in right.data)


@pytest.mark.parametrize(("sql", "why"), [
    ("DROP TABLE customers", "only SELECT"),
    ("SELECT * FROM audit_log", "system table"),
    ("SELECT * FROM read_parquet('/etc/passwd')", "reads files"),
    ("SELECT 1; DELETE FROM orders", "exactly one statement"),
    ("SELECT * FROM main.outbox", "system table"),
])
def test_query_data_refuses_the_same_on_spark(pair, sql, why):
    duck, spark, root = pair
    spec = get_tool("query_data")
    for con in (duck, spark):
        with pytest.raises(ToolError, match=why):
            spec.run(con, {"sql": sql}, ToolContext(home=root))
    assert spark.execute("SELECT count(*) FROM orders").fetchone()[0] > 0  # nothing was dropped or deleted


def test_query_data_row_limit_holds_on_spark(pair):
    duck, spark, root = pair
    out = get_tool("query_data").run(spark, {"sql": "SELECT order_id FROM orders", "limit": 7, "timeout_s": 60},
                                     ToolContext(home=root))
    assert len(out.data) == 7 and out.metrics["truncated"] is True


def test_governance_stays_in_the_local_store(pair, tmp_path):
    """A load into Spark is validated as on DuckDB (same refusal, word for word) and audited locally."""
    duck, spark, root = pair
    bad = tmp_path / "orders_bad.csv"
    bad.write_text("order_id,customer_id,order_date,revenue\n900001,1,2026-09-01,12.5\n900002,1,not a date,3\n")
    messages = []
    for con in (duck, spark):
        with pytest.raises(WarehouseError) as caught:
            from tools.warehouse import load_file

            load_file(con, "orders", bad)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "row 2" in messages[0]
    good = tmp_path / "orders_new.csv"
    good.write_text("order_id,customer_id,order_date,revenue\n900001,1,2026-09-01,12.5\n")
    from tools.warehouse import load_file

    before = spark.execute("SELECT count(*) FROM orders").fetchone()[0]
    report = load_file(spark, "orders", good)
    assert (report.rows_before, report.rows_after) == (before, before + 1)
    row = spark.execute("SELECT revenue, order_date FROM orders WHERE order_id = 900001").fetchall()
    assert row == [(12.5, date(2026, 9, 1))]
    with pytest.raises(WarehouseError, match="already exist"):
        load_file(spark, "orders", good)
    audit = spark.local.execute("SELECT outcome FROM audit_log WHERE kind = 'load' ORDER BY ts").fetchall()
    assert [a[0] for a in audit][-3:] == ["failed", "ok", "failed"]
    assert not (root / "spark" / "spark" / "audit_log").exists()  # never written to the engine
    assert "audit_log" in table_names(spark) and "orders" in table_names(spark)


def test_the_setting_selects_the_backend(pair, monkeypatch):
    duck, spark, root = pair
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", "spark:local[1]")
    con = connect(root / "spark" / "warehouse.duckdb", read_only=True)
    try:
        assert con.engine == "spark"
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == CUSTOMERS
        from tools.analytics.customers.runs import read_only

        assert read_only(con) and not read_only(spark)  # tools then warn instead of saving a run
        with pytest.raises(Exception, match="read-only"):
            con.execute("DELETE FROM orders")
    finally:
        con.close()
    for bad in ("spark", "spark:yarn", "postgres:local", "spark:local[two]"):
        with pytest.raises(WarehouseError, match="NORTHSTAR_WAREHOUSE"):
            parse_setting(bad)
    assert parse_setting("duckdb") is None and parse_setting("") is None


@pytest.mark.parametrize("value", ["x' OR '1'='1", "back\\slash'); DROP TABLE orders; --", "ümlaut ☃ \"q\"", "$s ?"])
def test_parameters_are_bound_as_literals(pair, value):
    """Whatever a parameter holds, it stays one string value on Spark (no quote or backslash escapes it)."""
    duck, spark, root = pair
    sql = "SELECT ? AS v, length(?) AS n"
    assert spark.execute(sql, [value, value]).fetchall() == duck.execute(sql, [value, value]).fetchall()
    import sqlglot

    spark_sql = to_spark(parse(bind("SELECT * FROM orders WHERE channel = $c", {"c": value})))
    back = sqlglot.parse(spark_sql, read="spark")  # read back as Spark reads it: one SELECT, the value intact
    assert len(back) == 1 and isinstance(back[0], sqlglot.exp.Select)
    assert [lit.this for lit in back[0].find_all(sqlglot.exp.Literal)] == [value]


def test_ask_answers_from_a_spark_warehouse(pair, monkeypatch):
    """The agent, unchanged, answers from Spark (NORTHSTAR_WAREHOUSE) with the figures DuckDB gives."""
    from agent.context import Context
    from agent.runner import Northstar

    duck, spark, root = pair
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", "spark:local[1]")
    ns = Northstar(Context(home=root / "spark", provider="offline", roles={"local": "approver"}))
    try:
        out = ns.ask("How did search do last month?")
    finally:
        ns.close()
    call = out["tool_calls"][0]
    assert call["name"] == "campaign_report" and call["ok"], out
    expected = get_tool("campaign_report").run(duck, call["args"]).metrics
    assert call["result"]["metrics"]["spend"] == pytest.approx(expected["spend"], rel=REL)
    assert f"{expected['spend']:,.0f}" in out["answer"]


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake"])
def test_the_tools_sql_transpiles_to_other_warehouses(pair, dialect):
    """Offline: every statement the tools ran above (bound, DuckDB dialect) is written by sqlglot for BigQuery and
    Snowflake without an unsupported construct, and reads back as one statement of the same kind."""
    import sqlglot

    from tools.warehouse.backends.sqlmap import to_dialect

    statements = sorted(set(TRACE))
    assert len(statements) > 30, "the parity tests above should have run first (same module)"
    failures = []
    for sql in statements:
        try:
            out = to_dialect(parse(sql), dialect)
            back = sqlglot.parse_one(out, read=dialect)
            if type(back) is not type(sqlglot.parse_one(sql, read="duckdb")):
                failures.append(f"{type(back).__name__}: {sql[:120]}")
        except sqlglot.errors.SqlglotError as exc:
            failures.append(f"{str(exc).splitlines()[0][:100]}: {sql[:120]}")
    assert not failures, f"{len(failures)} of {len(statements)} statements do not transpile to {dialect}:\n" + \
        "\n".join(failures[:15])
