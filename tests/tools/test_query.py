import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import cli_json
from tools.analytics.query import QueryParams, _sandbox, query_data
from tools.registry import ToolContext, ToolError

VIEWER = ToolContext(role="viewer")
APPROVER = ToolContext(role="approver")

# (attack, words the refusal must contain)
ATTACKS = [
    ("DELETE FROM customers", "only SELECT"),
    ("UPDATE customers SET email = 'x@evil.net'", "only SELECT"),
    ("INSERT INTO customers (customer_id, signup_date) VALUES (999999, DATE '2026-01-01')", "only SELECT"),
    ("DROP TABLE customers", "only SELECT"),
    ("CREATE TABLE stolen AS SELECT * FROM customers", "only SELECT"),
    ("ALTER TABLE customers ADD COLUMN x INT", "SELECT"),
    ("TRUNCATE customers", "SELECT"),
    ("SELECT 1; DROP TABLE customers", "exactly one statement"),
    ("SELECT count(*) FROM orders; DELETE FROM orders", "exactly one statement"),
    ("SELECT 1 --\n; DROP TABLE customers", "exactly one statement"),
    ("SELECT 1 /* harmless */; /* hidden */ DELETE FROM orders", "exactly one statement"),
    ("ATTACH '/tmp/evil.duckdb' AS evil", "only SELECT"),
    ("DETACH warehouse", "only SELECT"),
    ("COPY customers TO '/tmp/northstar_stolen.csv'", "only SELECT"),
    ("COPY (SELECT * FROM customers) TO '/tmp/northstar_stolen.csv'", "only SELECT"),
    ("PRAGMA database_list", "only SELECT"),
    ("CALL pragma_version()", "SELECT"),
    ("SET enable_external_access = true", "only SELECT"),
    ("INSTALL httpfs", "only SELECT"),
    ("LOAD httpfs", "SELECT"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv"),
    ("SELECT * FROM '/etc/passwd'", "reading files"),
    ("SELECT read_text('/etc/passwd')", "read_text"),
    ("SELECT * FROM read_parquet('https://evil.example/x.parquet')", "read_parquet"),
    ("SELECT * FROM glob('/etc/*')", "glob"),
    ("SELECT * FROM query('DROP TABLE customers')", "query"),
    ("SELECT * FROM sqlite_scan('/tmp/x.db', 'users')", "sqlite_scan"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT current_setting('enable_external_access')", "current_setting"),
    ("SELECT * FROM audit_log", "system table"),
    ("SELECT * FROM outbox", "system table"),
    ("SELECT * FROM demo_truth", "system table"),
    ("SELECT * FROM AUDIT_LOG", "system table"),
    ("WITH x AS (SELECT * FROM audit_log) SELECT * FROM x", "system table"),
    ("SELECT * FROM customers WHERE customer_id IN (SELECT 1 FROM outbox)", "system table"),
    ("SELECT * FROM information_schema.tables", "outside"),
    ("SELECT * FROM other_db.main.customers", "outside"),
    ("SELECT * FROM customers UNION ALL SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("EXPLAIN ANALYZE SELECT 1", "SELECT"),
    ("DESCRIBE customers", "SELECT"),
    ("VACUUM", "SELECT"),
    ("CHECKPOINT", "SELECT"),
]


def _fingerprint(con) -> list:
    """Every table's name and row count, and an order-independent hash of the rows of the attacked tables."""
    tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    hashed = ("customers", "campaigns", "audit_log", "outbox", "consent")
    return [(t, con.execute(f'SELECT count(*), {"sum(hash(t::VARCHAR))" if t in hashed else "0"} FROM "{t}" t')
             .fetchone()) for t in tables]


@pytest.fixture(scope="module")
def attack_con(demo_home, tmp_path_factory):
    """One writable copy of the demo warehouse for the whole attack list (the fingerprint proves no change)."""
    import shutil

    from tools.warehouse import connect

    path = tmp_path_factory.mktemp("attacks") / "warehouse.duckdb"
    shutil.copyfile(demo_home / "warehouse.duckdb", path)
    con = connect(path)
    con.execute("INSERT INTO audit_log (event_id, ts, kind) VALUES ('e1', TIMESTAMP '2026-09-30 12:00:00', 'test')")
    yield con, _fingerprint(con)
    con.close()


@pytest.mark.parametrize(("sql", "reason"), ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_attacks_are_refused_and_change_nothing(sql, reason, attack_con):
    con, before = attack_con
    with pytest.raises(ToolError) as info:
        query_data(con, QueryParams(sql=sql), APPROVER)
    message = str(info.value)
    assert reason.lower() in message.lower(), message
    assert message.startswith(("Refused", "Could not parse")), message
    assert _fingerprint(con) == before
    assert not Path("/tmp/northstar_stolen.csv").exists()


def test_sandbox_itself_cannot_touch_files_even_if_a_check_were_bypassed(demo_con, demo_home):
    box, masked = _sandbox(demo_con, ["customers"], mask=True)
    try:
        for sql in ("SELECT * FROM read_csv('/etc/passwd')", "COPY (SELECT 1) TO '/tmp/northstar_x.csv'",
                    "ATTACH '/tmp/northstar_x.duckdb'", f"SELECT * FROM read_text('{demo_home / 'secret.key'}')"):
            with pytest.raises(duckdb.PermissionException):
                box.execute(sql)
        for setting in ("enable_external_access = true", "memory_limit = '100GB'", "threads = 64"):
            with pytest.raises(duckdb.Error, match="locked"):
                box.execute(f"SET {setting}")
        assert box.execute("SELECT count(*) FROM customers WHERE NOT regexp_full_match(email, "
                           "'email_[0-9a-f]{16}')").fetchone()[0] == 0
        assert {c for t, c, _ in masked} == {"email", "first_name", "last_name", "phone"}
    finally:
        box.close()


def test_select_works_with_cte_join_and_user_tables(demo_rw):
    res = query_data(demo_rw, QueryParams(sql="""WITH o AS (SELECT customer_id, sum(revenue) AS rev FROM orders
        GROUP BY 1) SELECT c.country, round(sum(o.rev), 2) AS revenue FROM main.customers c JOIN o USING (customer_id)
        GROUP BY 1 ORDER BY 2 DESC"""), VIEWER)
    expected = demo_rw.execute("""SELECT c.country, round(sum(o.revenue), 2) FROM customers c JOIN orders o
        USING (customer_id) GROUP BY 1 ORDER BY 2 DESC""").fetchall()
    assert [r["country"] for r in res.data] == [e[0] for e in expected]
    assert [r["revenue"] for r in res.data] == pytest.approx([e[1] for e in expected])
    demo_rw.execute("CREATE TABLE survey AS SELECT range AS id, 'ok' AS answer, 'a@b.co' AS contact_email "
                    "FROM range(5)")
    res = query_data(demo_rw, QueryParams(sql="SELECT * FROM Survey ORDER BY id"), VIEWER)
    assert len(res.data) == 5 and res.data[0]["contact_email"].startswith("email_")
    res = query_data(demo_rw, QueryParams(sql="SELECT range AS d FROM range(3)"), VIEWER)
    assert [r["d"] for r in res.data] == [0, 1, 2]


def test_pii_is_masked_unless_approver(demo_con):
    sql = "SELECT customer_id, email, first_name, last_name, phone, city FROM customers ORDER BY customer_id LIMIT 3"
    for ctx in (VIEWER, ToolContext(role="analyst")):
        res = query_data(demo_con, QueryParams(sql=sql), ctx)
        assert all(r[c].startswith(f"{k}_") for r in res.data for c, k in (("email", "email"), ("first_name", "name"),
                                                                              ("last_name", "name"), ("phone", "phone")))
        assert all("@" not in str(v) for r in res.data for v in r.values())
        assert res.data[0]["city"] and "customers.email (e-mail)" in res.summary and "pseudonymised" in res.summary
    # masking happens before the query sees the data: functions of a PII column stay masked
    res = query_data(demo_con, QueryParams(sql="SELECT upper(email) AS e, count(DISTINCT email) AS n "
                                               "FROM customers GROUP BY 1 LIMIT 1"), VIEWER)
    assert "@" not in res.data[0]["e"]
    distinct = query_data(demo_con, QueryParams(sql="SELECT count(DISTINCT email) AS n FROM customers"), VIEWER)
    assert distinct.data[0]["n"] == demo_con.execute("SELECT count(DISTINCT email) FROM customers").fetchone()[0]
    res = query_data(demo_con, QueryParams(sql=sql), APPROVER)
    assert res.data[0]["email"].endswith("@example.com") and "in clear" in res.summary
    assert res.metrics["pii_columns"] == {"email": "email", "first_name": "name", "last_name": "name", "phone": "phone"}


def test_limit_is_enforced(demo_con):
    res = query_data(demo_con, QueryParams(sql="SELECT * FROM orders LIMIT 100000"), VIEWER)
    assert len(res.data) == 100 and res.metrics["truncated"] and res.warnings
    res = query_data(demo_con, QueryParams(sql="SELECT * FROM orders", limit=7), VIEWER)
    assert len(res.data) == 7 and "LIMIT 8" in res.metrics["sql"]
    res = query_data(demo_con, QueryParams(sql="SELECT * FROM orders LIMIT 3"), VIEWER)
    assert len(res.data) == 3 and not res.metrics["truncated"]


def test_time_limit_interrupts_the_query(demo_con):
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="stopped"):
        query_data(demo_con, QueryParams(sql="SELECT count(*) FROM range(1000000000) a, range(1000000) b "
                                             "WHERE (a.range * b.range) % 7 = 3", timeout_s=0.5), VIEWER)
    assert time.perf_counter() - t0 < 10


def test_errors_are_explained(demo_con):
    with pytest.raises(ToolError, match=r"Unknown column 'emial'.*Closest columns: email"):
        query_data(demo_con, QueryParams(sql="SELECT emial FROM customers"), VIEWER)
    with pytest.raises(ToolError, match=r"Unknown column.*revenu.*Closest columns: revenue"):
        query_data(demo_con, QueryParams(sql="SELECT o.revenu FROM orders o"), VIEWER)
    with pytest.raises(ToolError, match="Did you mean customers"):
        query_data(demo_con, QueryParams(sql="SELECT * FROM custmers"), VIEWER)
    with pytest.raises(ToolError, match="Could not parse"):
        query_data(demo_con, QueryParams(sql="SELEC 1 FROM"), VIEWER)


def test_cli_masks_for_a_viewer(demo_copy):
    args = '{"sql": "SELECT email FROM customers ORDER BY customer_id LIMIT 2"}'
    out = cli_json("tool", "query_data", "--args", args, home=demo_copy, env={"NORTHSTAR_USER": "someone"})
    assert all(r["email"].startswith("email_") for r in out["data"])  # (the local user is an approver)
