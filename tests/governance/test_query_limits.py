"""query_data's bounds hold (issue 13 finding 5): memory, time (reading the tables included) and output size."""

from __future__ import annotations

import json
import time

import pytest

from tools.analytics.query import QueryParams, SandboxLimits, _run, _sandbox, query_data, validate
from tools.registry import ToolContext, ToolError

VIEWER = ToolContext(role="viewer")


def _size(result) -> int:
    return len(json.dumps(result.model_dump(mode="json"), default=str))


def test_one_row_holding_every_customer_is_cut_to_the_byte_cap(demo_con):
    """The attack: a single row holding every customer stayed under the row cap (30 MB of JSON before)."""
    for sql in ("SELECT list(c) AS everyone FROM customers c",
                "SELECT string_agg(email || ',' || phone, ';') AS everyone FROM customers",
                "SELECT repeat('x', 50000000) AS huge, 1 AS k"):
        res = query_data(demo_con, QueryParams(sql=sql), VIEWER)
        value = res.data[0][res.metrics["columns"][0]]
        assert _size(res) <= 1_100_000 and len(value) <= 10_100 and "[cut:" in value, sql
        assert any("only the first" in w and "len(x)" in w for w in res.warnings)


def test_a_list_built_over_a_cross_join_is_stopped_by_the_memory_limit(demo_con):
    """The attack that ran 28 s at 5.8 GB: now a memory error within seconds, saying how to rewrite it."""
    t0 = time.perf_counter()
    with pytest.raises(ToolError) as info:
        query_data(demo_con, QueryParams(sql="SELECT list(x) AS l FROM (SELECT c.*, r.range FROM customers c, "
                                             "range(200) r) x"), VIEWER)
    assert time.perf_counter() - t0 < 20
    assert "memory" in str(info.value) and "Aggregate before collecting" in str(info.value)


def test_the_memory_limit_and_threads_are_set_on_the_sandbox(demo_con):
    limits = SandboxLimits(memory_mb=256, threads=1)
    box, _ = _sandbox(demo_con, ["customers"], True, limits=limits)
    try:
        settings = dict(box.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                    "('memory_limit', 'threads', 'temp_directory')").fetchall())
        assert settings["threads"] == "1" and settings["memory_limit"].startswith(("244", "256"))
        assert settings["temp_directory"] == ""  # nothing spills to disk
        stmt, _ = validate("SELECT list(x) AS l FROM (SELECT c.*, r.range FROM customers c, range(40) r) x",
                           {"customers"})
        with pytest.raises(Exception, match="Out of Memory"):
            _run(box, stmt, 100, limits)
    finally:
        box.close()


def test_memory_and_threads_come_from_the_run_settings():
    ctx = ToolContext(role="viewer")
    assert SandboxLimits.of(ctx) == SandboxLimits()
    ctx.query_memory_mb, ctx.query_threads = 512, 1  # the fields ToolContext carries once configured
    assert (SandboxLimits.of(ctx).memory_mb, SandboxLimits.of(ctx).threads) == (512, 1)


def test_the_deadline_covers_reading_the_tables(demo_rw, demo_copy):
    """Masking 2M texts full of e-mails takes seconds: the deadline stops it there, not after."""
    demo_rw.execute("CREATE TABLE notes AS SELECT range AS id, 'write to user' || range || '@example.com or '"
                    "|| '+44 7700 ' || lpad((range % 1000000)::VARCHAR, 6, '0') AS note FROM range(2000000)")
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match=r"longer than 0.5 s \(reading notes included\)"):
        query_data(demo_rw, QueryParams(sql="SELECT count(*) FROM notes WHERE note LIKE '%9%'", timeout_s=0.5),
                   ToolContext(home=demo_copy, role="viewer"))
    assert time.perf_counter() - t0 < 3
    # a query that does not read the texts copies only the columns it needs, and is quick
    res = query_data(demo_rw, QueryParams(sql="SELECT count(*) AS n FROM notes WHERE id % 2 = 0", timeout_s=5),
                     ToolContext(home=demo_copy, role="viewer"))
    assert res.data == [{"n": 1_000_000}] and "notes.note" not in res.summary


def test_the_deadline_still_stops_a_long_query(demo_con):
    t0 = time.perf_counter()
    with pytest.raises(ToolError, match="stopped"):
        query_data(demo_con, QueryParams(sql="SELECT count(*) FROM range(1000000000) a, range(1000000) b "
                                             "WHERE (a.range * b.range) % 7 = 3", timeout_s=0.5), VIEWER)
    assert time.perf_counter() - t0 < 3


def test_cells_are_capped_whatever_the_row_limit(demo_con):
    wide = ", ".join(f"c.customer_id AS c{i}" for i in range(200))
    res = query_data(demo_con, QueryParams(sql=f"SELECT {wide} FROM customers c", limit=200), VIEWER)
    assert len(res.data) * 200 <= 10_000 and len(res.data) == 50
    assert any("10,000 cells" in w and "fewer columns" in w for w in res.warnings) and res.metrics["truncated"]
    with pytest.raises(ToolError, match="columns, more than the 10,000 cells"):
        query_data(demo_con, QueryParams(sql="SELECT " + ", ".join(["c.*"] * 910) + " FROM customers c"), VIEWER)


def test_bytes_are_capped_whatever_the_row_limit(demo_con):
    res = query_data(demo_con, QueryParams(sql="SELECT range AS i, repeat('ab', 4000) AS s FROM range(200)",
                                           limit=200), VIEWER)
    assert _size(res) <= 1_100_000 and 100 <= len(res.data) < 200
    assert [r["i"] for r in res.data] == list(range(len(res.data)))  # the query's order, the first rows
    assert any("1,000,000 bytes" in w for w in res.warnings) and res.metrics["truncated"]


def test_small_results_are_untouched(demo_con):
    res = query_data(demo_con, QueryParams(sql="SELECT country, count(*) AS n FROM customers GROUP BY 1 "
                                               "ORDER BY n DESC, country"), VIEWER)
    expected = demo_con.execute("SELECT country, count(*) FROM customers GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    assert [(r["country"], r["n"]) for r in res.data] == expected and not res.warnings
