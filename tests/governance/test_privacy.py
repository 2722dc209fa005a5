"""Personal data cannot be recovered from what a viewer, an analyst or a model sees (issue 13 finding 2), and
masking never alters a number or a date (issue 14 item 1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from concurrent.futures import ProcessPoolExecutor

import duckdb
import pytest

from agent import guardrails
from tools.analytics.query import QueryParams, query_data
from tools.privacy import EMAIL, KEY_FILE, Pseudonymiser, home_key, name_kind
from tools.registry import ToolContext, load_tools

VIEWER, ANALYST, APPROVER = (ToolContext(role=r) for r in ("viewer", "analyst", "approver"))
HASHES = ("md5({v})", "sha1({v})", "sha256({v})", "lower(hex(hash({v})))", "lower(hex(md5_number({v})))",
          "sha256('' || {v})", "sha256('northstar' || {v})", "sha256({v} || 'northstar')")


def _stripped(code: str) -> str:
    """What an attacker would compare: the hex part of any masked value."""
    return re.sub(r"^[a-z]+[_:]", "", code).lower()


def test_a_viewer_recovers_nothing_by_hashing_every_candidate(demo_con):
    """The attack of finding 2: every real phone, e-mail and name as candidates, hashed every way, joined."""
    sql = "SELECT email, phone, first_name, last_name FROM customers ORDER BY customer_id"
    for ctx in (VIEWER, ANALYST):
        masked = query_data(demo_con, QueryParams(sql=sql, limit=200), ctx).data
        codes = {_stripped(v) for row in masked for v in row.values()}
        assert len(codes) > 300  # e-mails and phones are all distinct, names repeat
        hashed = " UNION ALL ".join(f"SELECT {h.format(v='v')} AS h FROM candidates" for h in HASHES)
        joins = " UNION ALL ".join(f"SELECT code FROM codes JOIN hashes ON left(h, {n}) = code"
                                   for n in sorted({len(c) for c in codes}))
        recovered = demo_con.execute(f"""
            WITH candidates AS (
                SELECT '+44 7700 ' || lpad(range::VARCHAR, 6, '0') AS v FROM range(0, 100000)
                UNION SELECT email FROM customers UNION SELECT first_name FROM customers
                UNION SELECT last_name FROM customers),
            hashes AS ({hashed}),
            codes AS (SELECT unnest(?::VARCHAR[]) AS code)
            SELECT count(DISTINCT code) FROM ({joins})""", [sorted(codes)]).fetchall()[0][0]
        assert recovered == 0


def test_nor_by_joining_candidates_inside_the_sandbox(demo_con):
    """The same attack written as one query_data call: the key never reaches the sandbox."""
    sql = """WITH k AS (SELECT '+44 7700 ' || lpad(range::VARCHAR, 6, '0') AS v FROM range(0, 60000)),
             h AS (SELECT v AS x FROM k UNION ALL SELECT md5(v) FROM k UNION ALL SELECT sha256(v) FROM k
                   UNION ALL SELECT 'phone_' || left(sha256(v), 16) FROM k
                   UNION ALL SELECT 'masked:' || left(md5(v), 8) FROM k)
             SELECT count(*) AS hits FROM customers c JOIN h ON c.phone = h.x"""
    assert query_data(demo_con, QueryParams(sql=sql, timeout_s=60), VIEWER).data == [{"hits": 0}]
    assert query_data(demo_con, QueryParams(sql=sql, timeout_s=60), APPROVER).data[0]["hits"] > 0  # control


def test_codes_are_stable_in_a_home_join_across_tables_and_differ_across_homes(demo_copy, tmp_path):
    from tools.warehouse import connect

    con = connect(demo_copy / "warehouse.duckdb")
    con.execute("CREATE TABLE crm AS SELECT email AS contact_email, 'vip' AS tier FROM customers "
                "WHERE customer_id % 100 = 0")
    join = "SELECT count(*) AS n FROM customers c JOIN crm ON c.email = crm.contact_email"
    assert (query_data(con, QueryParams(sql=join), VIEWER).data == query_data(con, QueryParams(sql=join), APPROVER).data
            == [{"n": 500}])
    first = "SELECT email, phone FROM customers ORDER BY customer_id LIMIT 3"
    codes = query_data(con, QueryParams(sql=first), VIEWER).data
    assert codes == query_data(con, QueryParams(sql=first), ANALYST).data
    con.close()
    other = tmp_path / "other"
    shutil.copytree(demo_copy, other)
    (other / KEY_FILE).unlink()
    con = connect(other / "warehouse.duckdb")
    try:
        elsewhere = query_data(con, QueryParams(sql=first), VIEWER).data
    finally:
        con.close()
    assert all(a[c] != b[c] for a, b in zip(codes, elsewhere, strict=True) for c in ("email", "phone"))


def test_the_key_is_private_to_the_home_and_in_no_table(demo_copy):
    from tools.warehouse import connect, table_names

    con = connect(demo_copy / "warehouse.duckdb")
    try:
        query_data(con, QueryParams(sql="SELECT email FROM customers LIMIT 1"), VIEWER)
        path = demo_copy / KEY_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and re.fullmatch(r"[0-9a-f]{64}", path.read_text())
        key = path.read_text()
        for table in table_names(con):
            texts = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                               "table_name = ? AND data_type = 'VARCHAR'", [table]).fetchall()]
            if texts:
                hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE ' + " OR ".join(
                    f'contains("{c}", ?)' for c in texts), [key[:16]] * len(texts)).fetchall()[0][0]
                assert hits == 0, table
    finally:
        con.close()


def _key_of(home: str) -> str:
    return home_key(home).hex()


def test_concurrent_first_uses_agree_on_one_key(tmp_path):
    with ProcessPoolExecutor(max_workers=6) as pool:
        keys = set(pool.map(_key_of, [str(tmp_path)] * 12))
    assert len(keys) == 1 and sorted(os.listdir(tmp_path)) == [KEY_FILE]


USER_TABLE = """CREATE TABLE signups AS SELECT range AS id,
    '+44 7700 ' || lpad(range::VARCHAR, 6, '0') AS phone_number, '020 7946 ' || lpad(range::VARCHAR, 4, '0') AS telephone,
    '07700 9' || lpad(range::VARCHAR, 5, '0') AS mobile_no, 'u' || range || '@example.org' AS mail,
    'Ana Lopez ' || range AS "name", DATE '1980-03-04' + range::INT AS date_of_birth,
    lpad(range::VARCHAR, 3, '1') || '-45-' || lpad(range::VARCHAR, 4, '0') AS ssn,
    'u' || range || '@example.org' AS "customerEmail", 'x' || range || '@example.org' AS contact,
    '10.0.' || (range % 200) || '.' || (range % 250) AS last_seen_from, 'AB ' || lpad(range::VARCHAR, 6, '0') || ' C' AS ni,
    'Loved it, call me on +44 7700 900' || lpad(range::VARCHAR, 3, '0') || ' on 2026-09-01' AS note,
    'Summer sale' AS campaign_name, range % 7 AS email_opens, 12.5 * range AS revenue, DATE '2026-09-01' AS order_date
    FROM range(1, 400)"""
PII = {"phone_number": "phone", "telephone": "phone", "mobile_no": "phone", "mail": "email", "name": "name",
       "date_of_birth": "birth_date", "ssn": "national_id", "customerEmail": "email", "contact": "email",
       "last_seen_from": "ip", "ni": "national_id", "note": "text"}


def test_personal_data_in_user_tables_is_found_by_name_and_by_value(demo_rw):
    demo_rw.execute(USER_TABLE)
    clear = query_data(demo_rw, QueryParams(sql="SELECT * FROM signups ORDER BY id LIMIT 3"), APPROVER)
    for ctx in (VIEWER, ANALYST):
        res = query_data(demo_rw, QueryParams(sql="SELECT * FROM signups ORDER BY id LIMIT 3"), ctx)
        for row, raw in zip(res.data, clear.data, strict=True):
            for col, kind in PII.items():
                if kind == "birth_date":
                    assert row[col] == raw[col][:4] + "-01-01"
                elif kind == "text":
                    assert "7700" not in row[col] and row[col].endswith(" on 2026-09-01") and "phone_" in row[col]
                else:
                    assert re.fullmatch(r"[a-z]+_[0-9a-f]{16}", row[col]) and row[col] != raw[col], (col, row[col])
            assert {k: row[k] for k in ("id", "campaign_name", "email_opens", "revenue", "order_date")} == {
                k: raw[k] for k in ("id", "campaign_name", "email_opens", "revenue", "order_date")}
        for col in PII:
            assert f"signups.{col} (" in res.summary
        assert "pseudonymised" in res.summary and "cannot be turned back" in res.summary
    assert all(r["phone_number"].startswith("+44") for r in clear.data) and "in clear" in clear.summary


@pytest.mark.parametrize(("column", "kind"), [
    ("email", "email"), ("E-Mail Address", "email"), ("customerEmail", "email"), ("contact_email", "email"),
    ("MAIL", "email"), ("еmail", "email"), ("phone", "phone"), ("PhoneNumber", "phone"), ("mobile_no", "phone"),
    ("Telephone", "phone"), ("first_name", "name"), ("LastName", "name"), ("full name", "name"),
    ("customer_name", "name"), ("name", "name"), ("surname", "name"), ("street", "address"),
    ("Billing Address", "address"), ("zip", "address"), ("post_code", "address"), ("date_of_birth", "birth_date"),
    ("DOB", "birth_date"), ("birthDate", "birth_date"), ("ssn", "national_id"), ("national_insurance_number",
                                                                                 "national_id"),
    ("NIN", "national_id"), ("ip_address", "ip"), ("client-IP", "ip"),
    ("emails_opened", None), ("email_opens", None), ("email_domain", None), ("has_email", None),
    ("marketing_opt_in", None), ("campaign_name", None), ("segment_name", None), ("product_name", None),
    ("city", None), ("country", None), ("customer_id", None), ("channel", None), ("phone_calls", None),
    ("subject_line", None), ("order_date", None)])
def test_names_that_announce_personal_data(column, kind):
    assert name_kind(column) == kind


def test_a_bare_name_key_in_a_tool_result_is_a_campaign_not_a_person():
    assert name_kind("name", strict=True) is None and name_kind("first_name", strict=True) == "name"


# ---- what the model receives ------------------------------------------------------------------------------------

NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")


def _leaves(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


def _figures(obj) -> set[tuple[str, str]]:
    """Every number (JSON numbers, and numbers and dates written in text) with where it is."""
    out = set()
    for path, value in _leaves(obj):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            out.add((path, repr(value)))
        elif isinstance(value, float):  # binary noise past 12 significant figures is not a figure anyone reads
            out.add((path, f"{value:.12g}"))
        elif isinstance(value, str):
            out |= {(path, m) for m in NUMBER.findall(re.sub(r"\b[a-z]+_[0-9a-f]{16}\b", " ", value))}
    return out


def _sent(payload: dict, home) -> dict:
    """The tool message exactly as agent/nodes.py builds it, read back."""
    from agent.planners.context_budget import read_tool_content, tool_content

    content = tool_content(guardrails.mask({k: v for k, v in payload.items() if k != "chart"}, home))
    return read_tool_content(content)


@pytest.fixture(scope="module")
def example_results(demo_home, tmp_path_factory):
    """Every read-only tool's example result on the demo warehouse, and a query over personal data."""
    from tools.warehouse import connect

    home = tmp_path_factory.mktemp("examples")
    shutil.copyfile(demo_home / "warehouse.duckdb", home / "warehouse.duckdb")
    con = connect(home / "warehouse.duckdb")
    results = {}
    try:
        for name, spec in sorted(load_tools().items()):
            if not spec.approval:
                results[name] = spec.run(con, spec.example, ToolContext(home=home, role="analyst")).model_dump(
                    mode="json")
        for role in ("approver", "viewer"):
            results[f"query_data/pii/{role}"] = query_data(con, QueryParams(
                sql="SELECT customer_id, email, phone, first_name || ' ' || last_name AS who, signup_date, city "
                    "FROM customers ORDER BY customer_id LIMIT 40"), ToolContext(home=home, role=role)).model_dump(
                mode="json")
        results["query_data/reviews"] = query_data(con, QueryParams(
            sql="SELECT review_id, review_date, rating, text FROM reviews WHERE review_id BETWEEN 95 AND 110"),
            ToolContext(home=home, role="approver")).model_dump(mode="json")
        customers = con.execute("SELECT email, phone, first_name || ' ' || last_name FROM customers").fetchall()
    finally:
        con.close()
    return home, results, customers


def test_every_number_and_date_reaches_the_model_intact(example_results):
    home, results, _ = example_results
    assert {n for n, s in load_tools().items() if not s.approval} <= set(results)
    for name, payload in results.items():
        sent = _sent(payload, home)
        source = {(p, f) for p, f in _figures({k: v for k, v in payload.items() if k != "chart"})
                  if not re.search(r"\.(email|phone|who)$", p)}  # personal data is not a figure to keep
        assert source <= _figures(sent), (name, sorted(source - _figures(sent))[:5])


def test_issue_14_corruptions_are_gone(tmp_path):
    result = {"summary": "ROAS 2.6012345678 on 5,699 orders from 2026-09-01 to 2026-09-30 (run churn_20260930a).",
              "data": [{"roas": 2.6012345678, "orders": 5699, "revenue": 1234567890.25, "date": "2026-09-01",
                        "range": "2026-09-01 2026-09-30", "campaign_id": "SOC-2", "email": 0.42,
                        "name": "Autumn 2026 (EU) 10-20-30", "customer_id": 123456789012}],
              "metrics": {"email": {"spend": 15877.5}, "phone": 2.5}, "warnings": ["3.14 159 265 358"]}
    assert _sent(result, tmp_path) == result


def test_no_customer_email_phone_or_name_reaches_the_model(example_results):
    home, results, customers = example_results
    emails, phones, names = (set(c) for c in zip(*customers, strict=True))
    for name, payload in results.items():
        text = json.dumps(_sent(payload, home), ensure_ascii=False)
        assert not re.search(EMAIL, text), (name, re.search(EMAIL, text))
        pairs = set(re.findall(r"[A-ZÀ-Ý][\w'-]+ [A-ZÀ-Ý][\w'-]+", text))
        assert "7700 0" not in text and not pairs & names, (name, pairs & names)
    viewer = _sent(results["query_data/pii/viewer"], home)["data"]
    approver = _sent(results["query_data/pii/approver"], home)["data"]
    assert [r["email"] for r in viewer] == [r["email"] for r in approver]  # the model sees what a viewer sees
    assert approver[0]["customer_id"] == 1 and approver[0]["city"] == results["query_data/pii/approver"]["data"][0]["city"]
    assert emails and phones


def test_free_text_keeps_dates_and_numbers(tmp_path):
    pseudo = Pseudonymiser.for_home(tmp_path)
    text = ("Call +44 7700 900123 or (020) 7946 0958, mail ana@example.com; on 2026-09-01 to 2026-09-30 ROAS "
            "2.6012345678, 5,699 orders, 1 234 567 visits, id ID12345 678 901, pi 3.14 159 265 358, at 10:30")
    out = pseudo.text(text)
    assert "7700" not in out and "7946" not in out and "ana@" not in out
    for kept in ("2026-09-01 to 2026-09-30", "2.6012345678", "5,699", "1 234 567", "ID12345 678 901",
                 "3.14 159 265 358", "10:30"):
        assert kept in out
    assert guardrails.mask_text(text) == Pseudonymiser(None).text(text) and "[email]" in guardrails.mask_text(text)


def test_sql_and_python_give_the_same_codes(tmp_path):
    pseudo, values = Pseudonymiser.for_home(tmp_path), ["ana@example.com", "+44 7700 900123", "Zoë", "", "x" * 300]
    got = duckdb.connect().execute(f"SELECT {pseudo.sql('email', 'v', 'VARCHAR')} FROM "
                                   "(SELECT unnest($vals::VARCHAR[]) AS v)", {**pseudo.params, "vals": values}).fetchall()
    assert [g[0] for g in got] == [pseudo.code("email", v) for v in values]


def test_through_the_agent_the_model_never_sees_personal_data(demo_copy):
    """An approver's turn end to end (real openai client, local server): the model gets codes, numbers intact."""
    from agent.context import Context
    from agent.runner import Northstar
    from tests.agent.fake_openai import FakeOpenAI

    sql = "SELECT customer_id, email, phone, first_name AS who, signup_date FROM customers ORDER BY 1 LIMIT 5"
    with FakeOpenAI() as fake:
        fake.enqueue({"tool_calls": [{"name": "query_data", "args": {"sql": sql}}]}, {"content": "Five customers."})
        ns = Northstar(Context(home=demo_copy, provider="openai", openai_api_key="k", openai_base_url=fake.url,
                               model="fake", user="ana", roles={"ana": "approver"}))
        try:
            out = ns.ask("Show the first 5 customers with signup dates between 2020-01-01 and 2026-09-30")
        finally:
            ns.close()
        sent = fake.requests[1]["messages"]
    shown = out["tool_calls"][0]["result"]["data"]
    assert shown[0]["email"].endswith("@example.com")  # the approver sees clear values
    tool_msg = json.loads([m for m in sent if m["role"] == "tool"][0]["content"].split("\n", 1)[1])
    for row, clear in zip(tool_msg["data"], shown, strict=True):
        assert (row["customer_id"], row["signup_date"]) == (clear["customer_id"], clear["signup_date"])
        assert all(row[c] != clear[c] and re.fullmatch(r"[a-z]+_[0-9a-f]{16}|\[[a-z]+\]", row[c])
                   for c in ("email", "phone", "who"))
    assert not re.search(EMAIL, json.dumps(sent)) and "7700 0" not in json.dumps(sent)
    assert "2020-01-01 and 2026-09-30" in json.dumps(sent)  # the question's own dates arrive as written


def test_what_the_lineage_cannot_follow_stays_masked(demo_con, monkeypatch):
    import dataclasses

    import tools.analytics.query as query

    sql = "SELECT COLUMNS('.*_name') FROM customers ORDER BY customer_id LIMIT 2"
    assert all(v.startswith("name_") for r in query_data(demo_con, QueryParams(sql=sql), VIEWER).data
               for v in r.values())
    assert query_data(demo_con, QueryParams(sql=sql), APPROVER).metrics["pii_columns"] == {
        "first_name": "pii", "last_name": "pii"}  # so the model gets codes for them
    real = query.lineage

    def short(stmt, kinds):  # a lineage that misses a column the query reads
        found = real(stmt, kinds)
        return found and dataclasses.replace(found, needed={t: c[:1] for t, c in found.needed.items()})

    monkeypatch.setattr(query, "lineage", short)
    sql = "SELECT email, phone FROM customers ORDER BY customer_id LIMIT 2"
    viewer = query_data(demo_con, QueryParams(sql=sql), VIEWER)
    assert all(r["email"].startswith("email_") and r["phone"].startswith("phone_") for r in viewer.data)
    assert query_data(demo_con, QueryParams(sql=sql), APPROVER).metrics["pii_columns"] == {"email": "pii",
                                                                                            "phone": "pii"}
