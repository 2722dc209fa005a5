import pytest

from tests.conftest import run_cli, shared_path
from tools.warehouse import connect
from tools.warehouse.loader import LoadError, load_file, sniff_delimiter

GOOD = "order_id,customer_id,order_date,revenue\n1,10,2025-01-02,12.5\n2,11,2025-01-03,40\n"


@pytest.fixture
def con(tmp_path):
    c = connect(tmp_path / "w.duckdb")
    yield c
    c.close()


def _count(con, table="orders"):
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_good_file_loads_and_appends(con, tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(GOOD)
    report = load_file(con, "orders", f)
    assert (report.rows_before, report.rows_after) == (0, 2)
    assert con.execute("SELECT revenue FROM orders WHERE order_id = 2").fetchone()[0] == 40.0


@pytest.mark.parametrize("text, expected", [
    ("order_id,customer_id,revenue\n1,10,12.5\n", "missing required column(s) for table orders: order_date"),
    ("order_id,customer_id,order_date,revenue\n1,10,2025-01-02,1\n2,11,2025-13-45,3\n",
     "row 2 (line 3), column order_date: '2025-13-45' is not a date"),
    ("order_id,customer_id,order_date,revenue\n1,10,2025-01-02,1\n1,11,2025-01-03,3\n",
     "duplicate key order_id=1 in rows 1, 2"),
    ("order_id,customer_id,order_date,revenue\n1,10,2025-01-02,abc\n", "column revenue: 'abc' is not a number"),
    ("order_id,customer_id,order_date,revenue\n1,,2025-01-02,3\n", "column customer_id: value is empty"),
])
def test_bad_file_names_the_problem_and_changes_nothing(con, tmp_path, text, expected):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    load_file(con, "orders", good)
    before = con.execute("SELECT * FROM orders ORDER BY order_id").fetchall()
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    for mode in ("append", "replace"):
        with pytest.raises(LoadError) as err:
            load_file(con, "orders", bad, mode)
        assert expected in str(err.value)
        assert "bad.csv" in str(err.value)
        assert con.execute("SELECT * FROM orders ORDER BY order_id").fetchall() == before


def test_append_key_clash_is_refused_replace_works(con, tmp_path):
    f = tmp_path / "o.csv"
    f.write_text(GOOD)
    load_file(con, "orders", f)
    with pytest.raises(LoadError, match="already exist"):
        load_file(con, "orders", f)
    assert _count(con) == 2
    load_file(con, "orders", f, "replace")
    assert _count(con) == 2


def test_semicolon_and_date_format_and_extra_column(con, tmp_path):
    f = tmp_path / "o.csv"
    f.write_text("order_id;customer_id;order_date;revenue;note\n1;10;02/01/2025;12.5;x\n")
    assert sniff_delimiter(f) == ";"
    report = load_file(con, "orders", f, date_format="%d/%m/%Y")
    assert any("note" in w for w in report.warnings)
    assert str(con.execute("SELECT order_date FROM orders").fetchone()[0]) == "2025-01-02"


def test_user_table_types_inferred_and_system_tables_refused(con, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("id,when,amount,label,code\n1,2025-01-01,2.5,a,1_1\n2,2025-02-01,,b,1_10\n")
    load_file(con, "my_table", f)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'my_table'").fetchall())
    assert types == {"id": "BIGINT", "when": "DATE", "amount": "DOUBLE", "label": "VARCHAR", "code": "VARCHAR"}
    with pytest.raises(LoadError, match="written by Northstar"):
        load_file(con, "audit_log", f)
    with pytest.raises(LoadError, match="not a valid table name"):
        load_file(con, "x; drop table orders", f)


def test_whitespace_separated_file_with_columns(con, tmp_path):
    f = tmp_path / "cd.txt"
    f.write_text(" 00004 0001 19970101  2   29.33\r\n 00004 0001 19970118  2   29.73\r\n")
    load_file(con, "cd", f, header=False, columns=["customer", "sample", "day", "cds", "dollars"])
    assert con.execute("SELECT customer, day, dollars FROM cd ORDER BY day").fetchall() == [
        (4, 19970101, 29.33), (4, 19970118, 29.73)]


def test_cli_load_failure_exit_code_and_counts(tmp_path):
    home = tmp_path / "h"
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    run_cli("load", "orders", str(good), home=home, check=True)
    bad = tmp_path / "bad.csv"
    bad.write_text("order_id,customer_id,order_date,revenue\n7,1,not-a-date,3\n")
    proc = run_cli("load", "orders", str(bad), home=home)
    assert proc.returncode == 1
    assert "bad.csv, row 1 (line 2), column order_date" in proc.stderr
    tables = {r.split()[1]: r for r in run_cli("tables", home=home, check=True).stdout.splitlines() if "orders" in r}
    assert "2" in tables["orders"]


def test_real_telco_file_loads_as_user_table(con):
    path = shared_path("datasets/churn/telco_customer_churn.csv")
    report = load_file(con, "telco", path)
    assert report.rows_after == 7043
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'telco'").fetchall())
    assert types["totalcharges"] == "DOUBLE" and types["tenure"] == "BIGINT"
    assert con.execute("SELECT count(*) FROM telco WHERE totalcharges IS NULL").fetchone()[0] == 11


@pytest.mark.parametrize("chunk", [3, 7, 64, 1 << 22])
def test_record_lines_agree_with_the_csv_module(tmp_path, chunk):
    """Where each record starts (blank lines skipped, quoted line breaks kept), checked against Python's csv reader
    and across chunk boundaries."""
    import csv
    import random

    from tools.warehouse.loader import record_lines

    rng = random.Random(7)
    pieces = []
    for i in range(300):
        field = rng.choice(["x", '"a\nb"', '"say ""hi"""', '"\r\n"', "", "y z"])
        pieces.append(f"{i},{field}" + rng.choice(["\n", "\r\n", "\n\n", "\n\r\n"]))
    path = tmp_path / "r.csv"
    path.write_bytes(("id,v\n" + "".join(pieces)).encode())
    with path.open(newline="") as fh:
        reader, expected, last = csv.reader(fh), [], 0
        for record in reader:
            if record:
                expected.append(last + 1)
            last = reader.line_num
    starts, _ = record_lines(path, '"', chunk=chunk)
    assert starts.tolist() == expected


def test_load_and_refusal_are_audited_with_user_file_mode_and_rows(con, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    load_file(con, "Orders", good, user="ben")
    with pytest.raises(LoadError):
        load_file(con, "orders", good, user="ben")  # the keys exist already
    rows = con.execute("SELECT user_id, name, outcome, args FROM audit_log WHERE kind = 'load' ORDER BY ts").fetchall()
    assert [r[:3] for r in rows] == [("ben", "orders", "ok"), ("ben", "orders", "failed")]
    assert '"rows": 2' in rows[0][3] and str(good) in rows[1][3]
