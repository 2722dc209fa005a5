"""Names like DuckDB and loads that hold (issue 13, findings 1 and 6, and the load/tool audit of 8 and 10).

Each test reproduces an attack or a careless load that worked before: a file loaded under a differently cased or
quoted name of a system table replaced it (and every later turn failed); `Customers` created a second table; Telco's
`customerID` was not found; tools took `audit_log` as their table; the CLI loaded as anyone and audited nothing;
nan, inf, -1e300 and 9999-12-31 loaded as valid; only the first bad value was named; ragged rows named no row."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli, shared_path
from tools import ToolError, load_tools
from tools.warehouse import WarehouseError, connect, table_names
from tools.warehouse.loader import LoadError, load_file
from tools.warehouse.schema import TABLES

OWNED = sorted({t.name for t in TABLES if t.kind != "canonical"} | {"schema_version"})
"""Every table Northstar writes itself: saved runs, audiences, budget plans, the outbox, the audit log, demo truth."""
SPELLINGS = ["{}", "{upper}", "{title}", '"{upper}"', "main.{}", '"main"."{title}"', "  {}  ", "{wide}", "`{}`",
             "'{upper}'"]
"""How a user (or an attacker) can name a table so that DuckDB resolves it to the same one."""
GOOD = "order_id,customer_id,order_date,revenue\n1,10,2025-01-02,12.5\n2,11,2025-01-03,40\n"
HEADER = "order_id,customer_id,order_date,revenue\n"
TABLE_TOOLS = {"score_churn", "predict_clv", "detect_anomalies", "allocate_budget", "analyze_experiment",
               "analyze_sentiment", "attribute_conversions"}


def spelled(pattern: str, name: str) -> str:
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name.upper())  # full-width letters
    return pattern.format(name, upper=name.upper(), title=name.title(), wide=wide)


def table_hash(con, table: str) -> str:
    """A digest of a table's columns and every row, in a stable order."""
    cols = con.execute(f'SELECT * FROM "{table}" LIMIT 0').description
    rows = con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()
    return hashlib.sha256(repr(([c[0] for c in cols], rows)).encode()).hexdigest()


def audit_rows(con, kind: str) -> list[dict]:
    cur = con.execute("SELECT user_id, kind, name, args, outcome, detail FROM audit_log WHERE kind = ? ORDER BY ts",
                      [kind])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) | {"args": json.loads(r[3] or "{}")} for r in cur.fetchall()]


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    (tmp_path / "good.csv").write_text(GOOD)
    load_file(c, "orders", tmp_path / "good.csv")
    yield c
    c.close()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- finding 1: protected tables, in any spelling -------------------------------------------------------------

@pytest.mark.parametrize("pattern", SPELLINGS)
def test_no_spelling_of_a_protected_table_can_be_loaded_into(con, tmp_path, pattern):
    csv = write(tmp_path, "x.csv", "event_id,ts,kind\nx,2025-01-01,load\n")
    for table in OWNED:
        name = spelled(pattern, table)
        before = {t: table_hash(con, t) for t in table_names(con) if t != "audit_log"}
        audit_before = con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        with pytest.raises(LoadError) as err:
            load_file(con, name, csv, "replace")
        message = str(err.value)
        assert table in message and "system table" in message and "my_" in message, (name, message)
        assert {t: table_hash(con, t) for t in table_names(con) if t != "audit_log"} == before, name
        assert con.execute("SELECT count(*) FROM audit_log").fetchone()[0] == audit_before + 1  # the refusal


@pytest.mark.parametrize("name", ["аudit_log", "AUDIT_LOG\u200b", "_load_stage", "x; DROP TABLE orders",
                                  "other_db.audit_log", "audit_log" + "x" * 10_000])
def test_look_alikes_reserved_and_hostile_names_are_refused_without_a_trace(con, tmp_path, name):
    before = {t: table_hash(con, t) for t in table_names(con) if t != "audit_log"}
    with pytest.raises(LoadError) as err:
        load_file(con, name, write(tmp_path, "x.csv", "a\n1\n"))
    assert len(str(err.value)) < 1000
    assert {t: table_hash(con, t) for t in table_names(con) if t != "audit_log"} == before


def test_a_failed_attack_leaves_the_next_turn_working(demo_copy, tmp_path):
    from agent.context import Context
    from agent.runner import Northstar

    csv = write(tmp_path, "evil.csv", "a\n1\n")
    wh = connect(demo_copy / "warehouse.duckdb")
    for name in ("Audit_Log", '"OUTBOX"', " customers ", "Orders", "main.Audit_Log", "Schema_Version"):
        with pytest.raises(LoadError):
            load_file(wh, name, csv, "replace", user="ben")
    assert wh.execute("SELECT count(*) FROM customers").fetchone()[0] == 50_000
    wh.close()
    ns = Northstar(Context(home=demo_copy))
    try:
        out = ns.ask("How did our channels perform last month?")
    finally:
        ns.close()
    assert out["tool_calls"] and all(c["ok"] for c in out["tool_calls"]), out["tool_calls"]


def test_a_differently_cased_canonical_name_loads_into_the_canonical_table(con, tmp_path):
    report = load_file(con, "Customers", write(tmp_path, "c.csv", "customer_id,signup_date,email\n1,2025-01-01,a@x\n"))
    assert report.table == "customers" and report.canonical and report.rows_after == 1
    assert [t for t in table_names(con) if t.lower() == "customers"] == ["customers"]
    with pytest.raises(LoadError, match="missing required column.*signup_date"):  # the canonical validation
        load_file(con, ' "CUSTOMERS" ', write(tmp_path, "d.csv", "customer_id,email\n2,b@x\n"))
    load_file(con, "MyData", write(tmp_path, "m.csv", "a\n1\n"))
    load_file(con, "mydata", write(tmp_path, "n.csv", "a\n2\n"))  # the same table, appended
    assert [t for t in table_names(con) if t.lower() == "mydata"] == ["MyData"]
    assert con.execute("SELECT count(*) FROM mydata").fetchone()[0] == 2


def test_score_churn_takes_telco_columns_as_they_are_in_the_file(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    load_file(con, "Telco", shared_path("datasets/churn/telco_customer_churn.csv"))
    spec = load_tools()["score_churn"]
    res = spec.run(con, {"table": "TELCO", "id_column": "customerID", "label_column": "Churn",
                         "feature_columns": ["tenure", "MonthlyCharges", "Contract", "InternetService"], "limit": 3})
    assert res.metrics["scored"] == 7043 and res.metrics["holdout_auc"] > 0.75
    assert "in Telco" in res.summary  # the warehouse's spelling (loaded as Telco), whatever was typed
    with pytest.raises(ToolError, match="no column 'MonthlyCharge'.*Did you mean monthlycharges"):
        spec.run(con, {"table": "telco", "id_column": "customerID", "label_column": "Churn",
                       "feature_columns": ["MonthlyCharge"]})
    con.close()


def test_every_tool_with_a_table_argument_refuses_protected_tables(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    with_tables = {}
    for name, spec in load_tools().items():
        fields = [f for f in spec.params.model_fields if f == "table" or f.endswith(("_table", "_tables"))]
        if fields:
            with_tables[name] = (spec, fields)
    assert set(with_tables) >= TABLE_TOOLS, sorted(with_tables)
    for name, (spec, fields) in with_tables.items():
        for field_name in fields:
            for table in OWNED:
                for pattern in SPELLINGS:
                    value = spelled(pattern, table)
                    with pytest.raises(ToolError) as err:
                        spec.run(con, {field_name: value})
                    assert table in str(err.value) and "system table" in str(err.value), (name, value, err.value)
    con.close()


def test_resolution_speaks_of_the_table_as_duckdb_does(con):
    from tools.warehouse import resolve_columns, resolve_table

    assert resolve_table(con, ' "ORDERS" ') == "orders" == resolve_table(con, "main.Orders")
    assert resolve_columns(con, "ORDERS", ["Order_ID", "REVENUE", "order date"]) == ["order_id", "revenue",
                                                                                     "order_date"]
    with pytest.raises(WarehouseError, match="Did you mean orders"):
        resolve_table(con, "order")
    with pytest.raises(WarehouseError, match="system table"):
        resolve_table(con, "Outbox")


# ---- finding 1 (roles) and 10: who may load, and every load and tool run in the audit log ----------------------

def test_cli_load_needs_the_analyst_role_and_every_outcome_is_audited(tmp_path):
    home = tmp_path / "h"
    env = {"NORTHSTAR_ROLES": "ben:analyst,vic:viewer"}
    good = write(tmp_path, "good.csv", GOOD)
    refused = run_cli("load", "orders", str(good), "--user", "vic", home=home, env=env)
    assert refused.returncode == 3 and "vic is a viewer" in refused.stderr and "analyst" in refused.stderr
    run_cli("load", "orders", str(good), "--user", "ben", home=home, env=env, check=True)
    bad = write(tmp_path, "bad.csv", HEADER + "7,1,2025-01-01,nan\n")
    assert run_cli("load", "orders", str(bad), "--user", "ben", home=home, env=env).returncode == 1
    system = run_cli("load", "AUDIT_LOG", str(good), "--user", "ben", home=home, env=env)
    assert system.returncode == 2 and "audit_log is a system table" in system.stderr
    run_cli("load", "orders", str(good), "--mode", "replace", home=home, check=True)  # the local user: approver
    wh = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    loads = audit_rows(wh, "load")
    assert wh.execute("SELECT count(*) FROM orders").fetchone()[0] == 2
    wh.close()
    assert [(r["user_id"], r["name"], r["outcome"]) for r in loads] == [
        ("vic", "orders", "refused"), ("ben", "orders", "ok"), ("ben", "orders", "failed"),
        ("ben", "audit_log", "refused"), ("local", "orders", "ok")]
    assert loads[1]["args"] == {"table": "orders", "file": str(good), "mode": "append", "rows": 2, "rows_before": 0,
                                "rows_after": 2}
    assert "viewer" in loads[0]["detail"] and "nan" in loads[2]["detail"] and loads[2]["args"]["file"] == str(bad)
    assert loads[3]["args"]["table"] == "AUDIT_LOG"  # as typed; audited under the table it means


def test_cli_tool_runs_are_audited_with_user_args_and_outcome(tmp_path):
    home = tmp_path / "h"
    write(tmp_path, "good.csv", GOOD)
    run_cli("load", "orders", str(tmp_path / "good.csv"), home=home, check=True)
    ok = run_cli("tool", "query_data", "--args", '{"sql": "SELECT count(*) AS n FROM orders"}', "--user", "ben",
                 home=home, env={"NORTHSTAR_ROLES": "ben:analyst"})
    assert ok.returncode == 0, ok.stderr
    refused = run_cli("tool", "detect_anomalies", "--args", '{"table": "Audit_Log", "value_column": "ts"}',
                      home=home)
    assert refused.returncode == 2 and "audit_log is a system table" in refused.stderr
    failed = run_cli("tool", "score_churn", "--args", '{"table": "nope"}', home=home)
    assert failed.returncode == 1
    wh = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    runs = audit_rows(wh, "tool_call")
    wh.close()
    assert [(r["user_id"], r["name"], r["outcome"]) for r in runs] == [
        ("ben", "query_data", "ok"), ("local", "detect_anomalies", "refused"), ("local", "score_churn", "error")]
    assert runs[0]["args"] == {"sql": "SELECT count(*) AS n FROM orders"} and "northstar tool" in runs[0]["detail"]
    assert runs[1]["args"]["table"] == "Audit_Log"


def test_a_crash_while_auditing_a_load_loads_nothing(con, tmp_path, monkeypatch):
    import tools.warehouse.loader as loader

    def broken(con, kind, name, **kw):
        if kw.get("outcome") == "ok":
            raise duckdb.IOException("disk full")
        return real(con, kind, name, **kw)

    real = loader.audit
    monkeypatch.setattr(loader, "audit", broken)
    before = table_hash(con, "orders")
    with pytest.raises(LoadError, match="orders is unchanged"):
        load_file(con, "orders", write(tmp_path, "more.csv", HEADER + "3,1,2025-01-01,5\n"))
    assert table_hash(con, "orders") == before


# ---- finding 6: values a warehouse cannot believe ---------------------------------------------------------------

@pytest.mark.parametrize("row, column, problem", [
    ("5,1,2025-01-01,nan", "revenue", "'nan' is not a finite number"),
    ("5,1,2025-01-01,-inf", "revenue", "'-inf' is not a finite number"),
    ("5,1,2025-01-01,Infinity", "revenue", "'Infinity' is not a finite number"),
    ("5,1,2025-01-01,1e309", "revenue", "'1e309' is not a finite number"),
    ("5,1,2025-01-01,-1e300", "revenue", "'-1e300' is beyond ±1,000,000,000,000"),
    ("5,1,9999-12-31,3", "order_date", "'9999-12-31' is outside the plausible dates 1990-01-01.."),
    ("5,1,infinity,3", "order_date", "'infinity' is outside the plausible dates"),
    ("5,1,1899-12-31,3", "order_date", "'1899-12-31' is outside the plausible dates"),
])
def test_implausible_values_are_refused_by_row_and_column_and_change_nothing(con, tmp_path, row, column, problem):
    before = table_hash(con, "orders")
    bad = write(tmp_path, "bad.csv", HEADER + "3,1,2025-01-01,4\n" + row + "\n")
    for mode in ("append", "replace"):
        with pytest.raises(LoadError) as err:
            load_file(con, "orders", bad, mode)
        assert f"bad.csv, row 2 (line 3), column {column}: {problem}" in str(err.value)
        assert table_hash(con, "orders") == before


def test_the_date_window_is_configurable(con, tmp_path, monkeypatch):
    future = write(tmp_path, "f.csv", HEADER + "3,1,2031-06-30,4\n")
    with pytest.raises(LoadError, match="--date-window"):
        load_file(con, "orders", future)
    monkeypatch.setenv("NORTHSTAR_DATE_WINDOW", "1990-01-01..2031-12-31")
    assert load_file(con, "orders", future).rows_after == 3
    old = write(tmp_path, "o.csv", HEADER + "4,1,1985-06-30,4\n")
    with pytest.raises(LoadError, match="outside the plausible dates 1990-01-01..2031-12-31"):
        load_file(con, "orders", old)
    assert load_file(con, "orders", old, date_window="1980-01-01..").rows_after == 4
    with pytest.raises(LoadError, match="not FROM..TO"):
        load_file(con, "orders", old, date_window="2020")


def test_all_bad_rows_are_listed_up_to_twenty(con, tmp_path):
    rows = [f"{100 + i},1,2025-01-01,{'nan' if i % 2 else '1'}" for i in range(60)]
    with pytest.raises(LoadError) as err:
        load_file(con, "orders", write(tmp_path, "many.csv", HEADER + "\n".join(rows) + "\n"))
    message = str(err.value)
    assert "30 bad value(s)" in message and "the first 20" in message
    listed = [ln for ln in message.splitlines() if ln.startswith("- row ")]
    assert len(listed) == 20
    assert listed[0] == "- row 2 (line 3), column revenue: 'nan' is not a finite number"
    assert listed[-1].startswith("- row 40 (line 41), column revenue")


def test_ragged_rows_and_over_long_lines_name_the_row_and_line(con, tmp_path):
    before = table_hash(con, "orders")
    text = (HEADER + "20,1,2025-01-01,3\n\n"          # line 3 blank (skipped, as DuckDB does)
            + '21,1,2025-01-01,"a\nb"\n'               # row 2 spans lines 4-5 (a quoted line break)
            + "22,1,2025-01-01\n"                      # row 3, line 6: a field short
            + "23,1,2025-01-01,3,4\n")                 # row 4, line 7: a field too many
    with pytest.raises(LoadError) as err:
        load_file(con, "orders", write(tmp_path, "rag.csv", text))
    message = str(err.value)
    assert "- row 3 (line 6) has 3 field(s) where the header has 4: '22,1,2025-01-01'" in message
    assert "- row 4 (line 7) has 5 fields where the header has 4" in message
    long = write(tmp_path, "long.csv", HEADER + "30,1,2025-01-01,3\n31,1,2025-01-01," + "9" * 2_100_000 + "\n")
    with pytest.raises(LoadError, match=r"long.csv, row 2 \(line 3\) is longer than 2,000,000 bytes"):
        load_file(con, "orders", long)
    spaced = write(tmp_path, "cd.txt", " 1 2 3\n\n 4 5\n")
    with pytest.raises(LoadError, match=r"row 2 \(line 3\) has 2 field\(s\) where the first line has 3"):
        load_file(con, "cd", spaced, header=False)
    assert table_hash(con, "orders") == before and "cd" not in table_names(con)


def test_user_tables_refuse_non_finite_numbers_but_keep_their_own_dates(con, tmp_path):
    with pytest.raises(LoadError, match=r"row 2 \(line 3\), column score: 'inf' is not a finite number"):
        load_file(con, "scores", write(tmp_path, "s.csv", "id,score\n1,0.5\n2,inf\n"))
    assert "scores" not in table_names(con)
    report = load_file(con, "people", write(tmp_path, "p.csv", "id,born,until\n1,1950-03-01,9999-12-31\n"))
    assert report.rows_after == 1  # a user table's dates are the user's business (birth dates, open-ended ends)
