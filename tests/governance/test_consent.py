"""Issue 13, finding 3: consent is an event log on every channel. The latest event per (customer, channel) decides;
appending a newer event is a normal load; channel spellings are normalised on load and on read; audiences and sends
check the channel they are for, again at send time, and say how many they left out and why."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.conftest import run_cli
from tools.actions.audiences import AudienceParams, create_audience, preview_create_audience
from tools.actions.sends import ScheduleParams, preview_schedule_campaign, schedule_campaign
from tools.registry import ToolContext, ToolError
from tools.warehouse import connect, schema_version
from tools.warehouse.schema import CHANNELS, SCHEMA_VERSION

T0 = datetime(2026, 1, 1, 9, 0)
VARIANT = {"email": "Your October picks are here", "sms": "Fieldhouse: your picks are in. Reply STOP to opt out",
           "push": "Your picks are in"}
SPELLINGS = {"email": ("email", "Email", "E-mail", "e_mail"), "sms": ("sms", "SMS", "text"), "push": ("push", "Push")}
NORMAL = {spelling: channel for channel, spellings in SPELLINGS.items() for spelling in spellings}


def _ctx(home: Path, request: str = "r-1") -> ToolContext:
    return ToolContext(home=home, user="ana", role="approver", thread_id="t-consent", request_id=request)


def _warehouse(home: Path, opt_in: dict[int, bool | None]) -> duckdb.DuckDBPyConnection:
    """A warehouse with these customers (id → marketing_opt_in) and no consent events yet."""
    con = connect(home / "warehouse.duckdb")
    ids = sorted(opt_in)
    con.execute("""INSERT INTO customers (customer_id, email, phone, signup_date, marketing_opt_in)
        SELECT unnest(?), unnest(?), unnest(?), DATE '2025-01-01', unnest(?)""",
                [ids, [f"c{i}@example.com" for i in ids], [f"07700 900{i:03d}" for i in ids],
                 [opt_in[i] for i in ids]])
    return con


def _events(con, events: list[tuple[int, str, bool, datetime]]) -> None:
    """Append consent events as stored (spellings as given, as an older warehouse may hold them)."""
    if events:
        con.executemany("INSERT INTO consent VALUES (?, ?, ?, ?, 'test')", [list(e) for e in events])


def _ids(path: Path) -> set[int]:
    lines = path.read_text().splitlines()[1:]
    return {int(line.split(",")[0]) for line in lines}


def _members(con, audience_id: str) -> set[int]:
    return {r[0] for r in con.execute("SELECT customer_id FROM audience_members WHERE audience_id = ?",
                                      [audience_id]).fetchall()}


# ---- the reported attack ------------------------------------------------------------------------------------

def test_sms_send_leaves_out_customers_whose_latest_sms_consent_is_withdrawn(tmp_path):
    """An e-mail audience scheduled by SMS: the send checks SMS consent when it runs."""
    con = _warehouse(tmp_path, {i: True for i in range(1, 9)})
    _events(con, [(i, "email", True, T0) for i in range(1, 9)]
            + [(i, "sms", True, T0) for i in range(1, 9)]
            + [(i, "sms", False, T0 + timedelta(days=30)) for i in (2, 4, 6)])  # withdrew later
    audience = create_audience(con, AudienceParams(name="Everyone", source="customers",
                                                   customer_ids=list(range(1, 9))), _ctx(tmp_path))
    assert audience.metrics["size"] == 8
    send = schedule_campaign(con, ScheduleParams(audience="Everyone", channel="sms", variant=VARIANT["sms"],
                                                 send_at=datetime(2026, 10, 5, 9), holdout_pct=0.0), _ctx(tmp_path))
    assert send.metrics["recipients"] == 5
    assert send.metrics["excluded"] == {"withdrew sms consent": 3}
    assert _ids(tmp_path / "outbox" / send.metrics["export"]) == {1, 3, 5, 7, 8}
    assert "3 excluded: 3 withdrew sms consent" in send.summary


def test_withdrawal_after_the_audience_was_made_is_excluded_at_send(tmp_path):
    con = _warehouse(tmp_path, {i: True for i in range(1, 6)})
    _events(con, [(i, "push", True, T0) for i in range(1, 6)])
    create_audience(con, AudienceParams(name="Push fans", source="customers", channel="push",
                                        customer_ids=[1, 2, 3, 4, 5]), _ctx(tmp_path))
    _events(con, [(3, "Push", False, T0 + timedelta(days=2))])  # spelled as an old export would
    params = ScheduleParams(audience="Push fans", channel="push", variant=VARIANT["push"],
                            send_at=datetime(2026, 10, 5, 9), holdout_pct=0.0)
    preview = preview_schedule_campaign(con, params, _ctx(tmp_path))
    assert preview["recipients"] == 4 and "1 withdrew push consent" in preview["description"]
    send = schedule_campaign(con, params, _ctx(tmp_path, "r-2"))
    assert _ids(tmp_path / "outbox" / send.metrics["export"]) == {1, 2, 4, 5}
    held = dict(con.execute("SELECT customer_id, holdout FROM audience_members").fetchall())
    assert held[3] is None and all(held[i] is False for i in (1, 2, 4, 5))


# ---- event log: appending is a normal load -------------------------------------------------------------------

def test_a_later_withdrawal_is_appended_with_a_normal_load(tmp_path):
    con = _warehouse(tmp_path, {1: True, 2: True})
    _events(con, [(1, "sms", True, T0), (2, "sms", True, T0)])
    con.close()
    withdrawal = tmp_path / "withdrawal.csv"
    withdrawal.write_text("customer_id,channel,opted_in,updated_at,source\n"
                          "1,sms,false,2026-03-01 10:00:00,unsubscribe_link\n")
    out = run_cli("load", "consent", str(withdrawal), home=tmp_path, check=True)
    assert "2 → 3 rows" in out.stdout
    con = connect(tmp_path / "warehouse.duckdb")
    assert con.execute("SELECT count(*) FROM consent WHERE customer_id = 1").fetchone()[0] == 2  # history kept
    audience = create_audience(con, AudienceParams(name="Texts", source="customers", channel="sms",
                                                   customer_ids=[1, 2]), _ctx(tmp_path))
    assert _members(con, audience.metrics["audience_id"]) == {2}
    con.close()
    # the same event twice is still refused: the key is (customer, channel, time)
    again = run_cli("load", "consent", str(withdrawal), home=tmp_path)
    assert again.returncode != 0 and "already exist" in again.stderr


def test_withdrawal_spelled_Email_is_honoured(tmp_path):
    """`Email` was accepted by the loader and then never matched: now it is the e-mail channel."""
    con = _warehouse(tmp_path, {1: True, 2: True, 3: True})
    _events(con, [(i, "email", True, T0) for i in (1, 2, 3)])
    con.close()
    events = tmp_path / "unsubscribes.csv"
    events.write_text("customer_id,channel,opted_in,updated_at\n2,Email,false,2026-02-01 08:00:00\n"
                      "3,E-mail,false,2026-02-01 08:00:00\n")
    run_cli("load", "consent", str(events), home=tmp_path, check=True)
    con = connect(tmp_path / "warehouse.duckdb")
    audience = create_audience(con, AudienceParams(name="Mail", source="customers", customer_ids=[1, 2, 3]),
                               _ctx(tmp_path))
    assert _members(con, audience.metrics["audience_id"]) == {1}
    assert _ids(tmp_path / "outbox" / audience.metrics["export"]) == {1}


def test_load_normalises_channel_spellings_and_refuses_unknown_ones(tmp_path):
    con = _warehouse(tmp_path, {1: True})
    con.close()
    good = tmp_path / "consent.csv"
    good.write_text("customer_id,channel,opted_in,updated_at\n" + "".join(
        f"1,{spelling},true,2026-01-0{day} 09:00:00\n"
        for day, spelling in enumerate(("Email", "E-mail", "e_mail", "SMS", "text", "Push"), start=1)))
    run_cli("load", "consent", str(good), home=tmp_path, check=True)
    stored = [r[0] for r in duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True).execute(
        "SELECT channel FROM consent ORDER BY updated_at").fetchall()]
    assert stored == ["email", "email", "email", "sms", "sms", "push"]
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,channel,opted_in,updated_at\n1,sms,false,2026-02-01 09:00:00\n"
                   "1,fax,false,2026-02-01 09:00:00\n")
    proc = run_cli("load", "consent", str(bad), home=tmp_path)
    assert proc.returncode != 0
    assert "'fax'" in proc.stderr and "email, sms, push" in proc.stderr and "row 2" in proc.stderr
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM consent").fetchone()[0] == 6  # refused: nothing changed


def test_channel_arguments_accept_spellings_and_list_the_channels():
    assert AudienceParams(name="x1", channel="E-mail").channel == "email"
    assert ScheduleParams(audience="a", channel="Text", variant="abc", send_at=T0).channel == "sms"
    with pytest.raises(ValidationError, match="'email', 'sms' or 'push'"):
        AudienceParams(name="x1", channel="fax")
    assert AudienceParams.model_json_schema()["properties"]["channel"]["enum"] == ["email", "sms", "push"]


SQL_READ = duckdb.connect()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=20), st.sampled_from(
    ["Email", " e-mail ", "E_MAIL", "e.mail", "SMS", "Text", "text message", "PUSH", "push_notification",
     "Еmail", "ЅMS", "e\u200bmail", "emaİl", "mail", "fax", "", "\temail\r\n"])))
def test_python_and_sql_read_a_spelling_alike(text):
    """Look-alikes (Cyrillic Е, Ѕ; dotted İ; zero-width space) are refused by both, never guessed."""
    read = SQL_READ.execute(f"SELECT {CHANNELS.sql('?')}", [text] * 4).fetchone()[0]
    assert read == CHANNELS.normalise(text)


# ---- previews say how many and why --------------------------------------------------------------------------

def test_preview_counts_exclusions_by_reason(tmp_path):
    con = _warehouse(tmp_path, {1: True, 2: False, 3: True, 4: True, 5: None})
    _events(con, [(1, "sms", True, T0), (2, "sms", True, T0), (3, "sms", True, T0),
                  (3, "SMS", False, T0 + timedelta(hours=1))])  # 4 has no sms event at all
    sms = preview_create_audience(con, AudienceParams(name="Texts", source="customers", channel="sms",
                                                      customer_ids=[1, 2, 3, 4, 5, 99]), _ctx(tmp_path))
    assert sms["size"] == 1 and sms["excluded"] == {
        "no marketing opt-in": 2, "no sms consent on record": 1, "not in customers": 1, "withdrew sms consent": 1}
    assert "5 excluded: 2 no marketing opt-in, 1 no sms consent on record" in sms["description"]
    email = preview_create_audience(con, AudienceParams(name="Mails", source="customers",
                                                        customer_ids=[1, 3, 4]), _ctx(tmp_path))
    assert email["size"] == 3  # e-mail follows the marketing opt-in when no e-mail event is on record
    with pytest.raises(ToolError, match="none who may be contacted by push"):
        create_audience(con, AudienceParams(name="Nobody", source="customers", channel="push",
                                            customer_ids=[1, 3, 4]), _ctx(tmp_path))
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


# ---- migration ------------------------------------------------------------------------------------------------

V1_CONSENT = """CREATE TABLE consent (customer_id BIGINT NOT NULL, channel VARCHAR NOT NULL, opted_in BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL, source VARCHAR, PRIMARY KEY (customer_id, channel))"""


def _version_1(path: Path) -> None:
    """Turn a current warehouse back into a version-1 one holding consent rows as version 1 allowed them."""
    con = connect(path)
    con.execute("DROP TABLE consent")
    con.execute(V1_CONSENT)
    con.execute("ALTER TABLE audiences DROP COLUMN channel")
    con.execute("ALTER TABLE outbox DROP COLUMN claimed_by")
    con.execute("ALTER TABLE outbox DROP COLUMN last_attempt_at")
    con.execute("DELETE FROM schema_version WHERE version > 1")
    _events(con, [(1, "Email", True, T0), (1, "email", False, T0), (2, "SMS", True, T0),
                  (3, "text", True, T0), (3, "sms", False, T0 + timedelta(days=1)), (4, "fax", True, T0)])
    con.close()


def _key(con) -> list[str]:
    return con.execute("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = 'consent' "
                       "AND constraint_type = 'PRIMARY KEY'").fetchone()[0]


def test_migration_rebuilds_consent_with_the_event_time_in_its_key(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    _version_1(path)
    con = connect(path)
    assert schema_version(con) == SCHEMA_VERSION and _key(con) == ["customer_id", "channel", "updated_at"]
    rows = con.execute("SELECT customer_id, channel, opted_in, updated_at FROM consent ORDER BY ALL").fetchall()
    assert rows == [(1, "email", False, T0),  # two spellings at one time: the withdrawal wins
                    (2, "sms", True, T0), (3, "sms", False, T0 + timedelta(days=1)), (3, "sms", True, T0),
                    (4, "fax", True, T0)]
    con.execute("INSERT INTO consent VALUES (2, 'sms', false, ?, 'unsubscribe_link')", [T0 + timedelta(days=3)])
    assert {c[0] for c in con.execute("DESCRIBE outbox").fetchall()} >= {"claimed_by", "last_attempt_at"}


def test_a_failing_migration_leaves_the_old_table_whole(tmp_path, monkeypatch):
    """A crash between the rebuild's writes: the migration is one transaction, so nothing is half done."""
    import tools.warehouse.connection as connection
    from tools.warehouse.schema import migrations

    path = tmp_path / "warehouse.duckdb"
    _version_1(path)
    real = migrations()
    real[1].statements.insert(real[1].statements.index('DROP TABLE "consent"') + 1, "SELECT no_such_function()")
    monkeypatch.setattr(connection, "migrations", lambda: real)
    with pytest.raises(duckdb.Error):
        connect(path)
    con = duckdb.connect(str(path), read_only=True)
    assert schema_version(con) == 1 and _key(con) == ["customer_id", "channel"]
    assert con.execute("SELECT count(*) FROM consent").fetchone()[0] == 6
    assert "_rebuild_consent" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}


# ---- the property -------------------------------------------------------------------------------------------

CUSTOMERS = 6
_event = st.tuples(st.integers(1, CUSTOMERS), st.sampled_from(sorted(NORMAL)), st.booleans())


@st.composite
def histories(draw):
    """Marketing opt-ins, events before the audience is made, events after it, the two channels and a holdout."""
    opt_in = draw(st.lists(st.sampled_from([True, True, True, False, None]), min_size=CUSTOMERS, max_size=CUSTOMERS))
    before = draw(st.lists(st.tuples(_event, st.integers(0, 3)), min_size=6, max_size=40,
                           unique_by=lambda e: (e[0][0], e[0][1], e[1])))
    after = draw(st.lists(st.tuples(_event, st.integers(4, 5)), max_size=15,
                          unique_by=lambda e: (e[0][0], e[0][1], e[1])))
    channels = draw(st.tuples(st.sampled_from(sorted(SPELLINGS)), st.sampled_from(sorted(SPELLINGS))))
    holdout = draw(st.sampled_from([0.0, 0.2, 0.5]))
    return dict(zip(range(1, CUSTOMERS + 1), opt_in, strict=True)), before, after, channels, holdout


def _as_rows(events) -> list[tuple[int, str, bool, datetime]]:
    return [(c, spelling, opted, T0 + timedelta(hours=h)) for (c, spelling, opted), h in events]


def may_contact(opt_in: dict, events: list, customer: int, channel: str) -> bool:
    """The reference: marketing opt-in, then the latest event on the channel (a withdrawal wins a tie; no event is
    no consent on the opt-in channels sms and push)."""
    if opt_in[customer] is not True:
        return False
    mine = [(when, opted) for c, spelling, opted, when in events if c == customer and NORMAL[spelling] == channel]
    if not mine:
        return channel == "email"
    latest = max(when for when, _ in mine)
    return all(opted for when, opted in mine if when == latest)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_no_export_or_send_includes_a_customer_whose_latest_consent_is_withdrawn(history):
    opt_in, before, after, (built_for, sent_on), holdout = history
    before, after = _as_rows(before), _as_rows(after)
    everyone = list(range(1, CUSTOMERS + 1))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        con = _warehouse(home, opt_in)
        _events(con, before)
        allowed = {c for c in everyone if may_contact(opt_in, before, c, built_for)}
        try:
            audience = create_audience(con, AudienceParams(name="Property", source="customers", channel=built_for,
                                                           customer_ids=everyone), _ctx(home, "make"))
        except ToolError:
            assert not allowed
            return
        members = _members(con, audience.metrics["audience_id"])
        assert members == allowed == _ids(home / "outbox" / audience.metrics["export"])
        _events(con, after)  # opt-ins and withdrawals after the audience was made
        now = before + after
        allowed = {c for c in members if may_contact(opt_in, now, c, sent_on)}
        params = ScheduleParams(audience="Property", channel=sent_on, variant=VARIANT[sent_on],
                                send_at=datetime(2026, 10, 5, 9), holdout_pct=holdout)
        try:
            send = schedule_campaign(con, params, _ctx(home, "send"))
        except ToolError:
            assert not allowed
            return
        recipients = _ids(home / "outbox" / send.metrics["export"])
        held = {r[0] for r in con.execute("SELECT customer_id FROM audience_members WHERE holdout").fetchall()}
        assert recipients | held == allowed and not recipients & held
        assert send.metrics["recipients"] == len(recipients)
        assert send.metrics["excluded_no_consent"] == len(members - allowed)
        con.close()
