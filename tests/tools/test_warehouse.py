from tests.conftest import ROOT
from tools.warehouse import WarehouseError, connect, migrate, require_table, schema_version, table_names
from tools.warehouse.schema import CANONICAL, SCHEMA_VERSION, TABLES, schema_markdown


def test_migrations_create_every_table_and_are_idempotent(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    assert schema_version(con) == SCHEMA_VERSION
    assert {t.name for t in TABLES} <= set(table_names(con))
    assert migrate(con) == SCHEMA_VERSION
    assert con.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_schema_doc_is_current():
    assert (ROOT / "docs/schema.md").read_text() == schema_markdown(), "run `make docs`"


def test_orders_minimal_columns_required():
    orders = next(t for t in TABLES if t.name == "orders")
    assert set(orders.required) == {"order_id", "customer_id", "order_date", "revenue"}
    assert len(CANONICAL) >= 12


def test_require_table_suggests_close_names(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    try:
        require_table(con, "order")
    except WarehouseError as exc:
        assert "orders" in str(exc)
    else:
        raise AssertionError("expected an error")
    try:
        require_table(con, "orders", ["revenu"])
    except WarehouseError as exc:
        assert "revenue" in str(exc)
    else:
        raise AssertionError("expected an error")


def test_read_only_missing_warehouse_is_a_clear_error(tmp_path):
    try:
        connect(tmp_path / "nope.duckdb", read_only=True)
    except WarehouseError as exc:
        assert "northstar init --demo" in str(exc)
    else:
        raise AssertionError("expected an error")


def test_names_resolve_in_any_case_as_in_duckdb(tmp_path):
    from tools.warehouse import columns_of, plain_name, protected_refusal, table_exists

    con = connect(tmp_path / "w.duckdb")
    require_table(con, "ORDERS", ["Revenue", "ORDER_DATE"])
    assert table_exists(con, "Orders") and list(columns_of(con, "oRdErS"))[:2] == ["order_id", "customer_id"]
    assert plain_name(' "main"."Orders" ') == "Orders" and plain_name("ｏｒｄｅｒｓ") == "orders"
    assert protected_refusal("orders") is None
    assert all("audit_log" in protected_refusal(n) for n in ("AUDIT_LOG", "[audit_log]", "main.Audit_Log"))
    con.close()
