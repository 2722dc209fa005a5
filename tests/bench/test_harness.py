"""Smoke test of the benchmark harness at a tiny size: it runs end to end, records failures, writes its outputs.

The numbers are not checked against targets here (timed unit tests are flaky on a shared machine); `make bench`
measures at 1M customers. Library comparisons are skipped (they need their own virtualenv).
"""

from __future__ import annotations

import json
import os

import pytest

from bench import harness
from bench.measure import percentile, tables_read


def test_tables_read_finds_sources_not_targets():
    sqls = ['INSERT INTO clv_scores SELECT * FROM orders o JOIN "customers" c USING (customer_id)',
            "WITH d AS (SELECT * FROM events) SELECT count(*) FROM d, email_sends",
            "DELETE FROM churn_scores WHERE run_id = ?"]
    known = {"orders", "customers", "events", "email_sends", "clv_scores", "churn_scores"}
    assert tables_read(sqls, known) == {"orders", "customers", "events", "email_sends"}
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([], 95) is None


@pytest.mark.timeout(120)
def test_harness_runs_end_to_end_at_tiny_size(tmp_path, monkeypatch):
    cases = harness.tool_cases

    def with_a_broken_case(registry, repeat):  # a failing tool must be recorded, not crash the run
        return cases(registry, repeat) + [{"tool": "campaign_report", "case": "broken", "args": {"limit": 0}}]

    monkeypatch.setattr(harness, "tool_cases", with_a_broken_case)
    only = ["campaign_report", "attribute_conversions", "query_data", "plan_experiment"]
    code = harness.main(customers=2000, repeat=2, compare=False, as_json=True, home=tmp_path / "work",
                        results_dir=tmp_path / "results", docs_path=tmp_path / "performance.md", isolate=False,
                        agent_questions=2, cold_runs=1, cold_ask=False, only=only)
    assert code == 1  # the broken case fails the run's exit code …
    (path,) = (tmp_path / "results").glob("*-2000-partial.json")  # a reduced run never takes a full run's name
    res = json.loads(path.read_text())
    assert res["demo"]["ok"] and res["demo"]["rows"]["customers"] == 2000
    by_case = {(c["tool"], c["case"]): c for c in res["tools"]}
    broken = by_case.pop(("campaign_report", "broken"))
    assert not broken["ok"] and "bad arguments" in broken["error"]  # … and is recorded
    assert {t for t, _ in by_case} == set(only)
    report = by_case[("campaign_report", "example")]
    assert report["ok"], report
    assert report["median_s"] > 0 and report["peak_rss_mb"] > 50 and report["rows"] > 0
    assert report["first_s"] == report["runs_s"][0] and report["warm_median_s"] == report["runs_s"][1]
    assert report["warm_runs"] == 1 and report["load_start"] >= 0
    assert "ad_spend" in report["tables_read"]
    for c in by_case.values():
        assert c["ok"] or c["error"]
    agent = res["agent"]
    assert agent["ok"] and agent["n"] + agent["errors"] == 2, agent
    assert res["cold_start"]["help"]["median_s"] > 0
    cli = res["cli_tool"]  # `northstar tool campaign_report` as a fresh process, on the bench's warehouse
    assert "error" not in cli and len(cli["runs_s"]) == 1 and cli["median_s"] > report["first_s"]
    targets = {t["target"]: t for t in res["targets"]}
    cold = targets["campaign_report (cold first run)"]
    assert cold["value"] == report["first_s"] and cold["met"] is None and not cold["applies"]  # a 10M goal
    assert len(res["meta"]["load_avg_start"]) == 3
    page = (tmp_path / "performance.md").read_text()
    assert "bench:begin" in page and f"| campaign_report | example | {report['first_s']:.3f} | " in page
    assert "| first run s (cold) | warm median s |" in page and "n/a at 2,000 (the goal is at 10M)" in page
    assert f"fresh processes, no server: median **{cli['median_s']} s**" in page


def test_targets_hold_the_issue_19_ratios():
    from bench import report

    def targets(bgnbd, markov, seg, gap):
        res = {"compare": {"bgnbd_warehouse": {"ratio": bgnbd}, "markov_journeys": {"ratio": markov},
                           "segments_k_chosen": {"ratio": seg, "silhouette_gap": gap}}}
        return {t["target"]: t["met"] for t in report.targets(res)}

    met = targets(0.25, 0.1, 1.0, -0.01)
    assert met["BG/NBD fit on all N customers vs lifetimes"] and met["exact Markov on 1M journeys vs ChannelAttribution"]
    assert met["segment_customers' clustering vs MiniBatchKMeans (k chosen)"]
    assert met["… its silhouette minus MiniBatchKMeans'"]
    missed = targets(0.26, 0.11, 1.01, -0.011)
    assert not any(missed[k] for k in met if k in missed and missed[k] is not None)
    assert targets(None, None, None, None)["… its silhouette minus MiniBatchKMeans'"] is None


def _run(customers: int, runs: list[float], **extra) -> dict:
    tools = [{"tool": name, "case": "example", "ok": True, "runs_s": runs, "peak_rss_mb": 9000.0}
             for name in ("campaign_report", "detect_anomalies")]
    return {"meta": {"customers": customers}, "tools": tools, **extra}


def test_targets_judge_goal_1_on_the_cold_run_and_only_at_10m():
    from bench import report

    at_10m = {t["target"]: t for t in report.targets(_run(10_000_000, [0.6, 0.1, 0.2]))}
    cr = at_10m["campaign_report (cold first run)"]
    assert cr["value"] == 0.6 and cr["met"] is False and cr["goal"] == "< 0.5 s at 10M"  # warm runs do not rescue it
    assert at_10m["peak RSS, any tool"]["met"] is False  # 9,000 MB ≥ 8 GB
    assert at_10m["detect_anomalies (cold first run)"]["met"] is True
    assert at_10m["segment_customers (cold first run)"]["met"] is None  # not measured
    at_1m = {t["target"]: t for t in report.targets(_run(1_000_000, [0.6, 0.1, 0.2]))}
    cr = at_1m["campaign_report (cold first run)"]
    assert cr["value"] == 0.6 and cr["met"] is None and cr["note"] == "n/a at 1M (the goal is at 10M)"
    assert at_1m["BG/NBD fit on all N customers vs lifetimes"]["applies"]  # goal 5's BG/NBD is at 1M …
    assert not at_10m["BG/NBD fit on all N customers vs lifetimes"]["applies"]  # … and not judged at 10M


def test_targets_of_goals_3_and_4():
    from bench import report

    cold = {"help": {"median_s": 0.2}, "help (bytecode cached)": {"median_s": 0.31},
            "ask": {"median_s": 2.4}, "ask (through a running server)": {"median_s": 1.2}}
    res = _run(20_000, [0.1], cold_start=cold, agent={"overhead_ms": {"p95": 49.9}})
    t = {x["target"]: x["met"] for x in report.targets(res)}
    assert t["`northstar --help`, bytecode cached"] is False  # the cached figure wins when both were measured
    assert t["`northstar ask` in-process, fresh process"] is True
    assert t["`northstar ask` through a running server"] is False
    assert t["agent overhead p95 (tools excluded)"] is True


def test_report_splits_cold_and_warm_in_old_results():
    from bench import report

    assert report.first_and_warm({"runs_s": [3.0, 1.0, 2.0, 5.0]}) == (3.0, 2.0)
    assert report.first_and_warm({"runs_s": [3.0, 1.0, 2.0]}) == (3.0, 1.5)
    assert report.first_and_warm({"runs_s": [3.0]}) == (3.0, None)
    assert report.first_and_warm({"latency_ms": {"p95": 1}, "warmup_s": 0.4}) == (0.4, None)
    res = {**_run(10_000_000, [0.7, 0.02, 0.03]),
           "meta": {"date": "2026-01-01", "customers": 10_000_000, "seed": 7, "repeat": 3, "cpus": 2,
                    "mem_gb": 23.5, "load_start": 3.1, "load_avg_start": [3.1, 2.5, 1.0]}}
    res["targets"] = report.targets(res)
    page = report.markdown(res)
    assert "| campaign_report | example | 0.700 | 0.025 | 3 |" in page
    assert "load average **3.1** (5 min 2.5, 15 min 1.0) at start" in page
    assert "| campaign_report (cold first run) | 0.700 | < 0.5 s at 10M | **no** |" in page


def test_spark_stays_out_of_runs_above_1m_unless_asked():
    assert harness._spark_target("auto", None, None, 1_000_000) is not None or \
        os.environ.get("NORTHSTAR_BENCH_SPARK", "").lower() in ("off", "0", "no", "none")
    assert harness._spark_target("auto", None, None, 10_000_000) is None
    assert harness._spark_target("local[2]", None, None, 10_000_000) == "local[2]"


@pytest.mark.timeout(600)
def test_ask_through_a_running_server(demo_copy):
    """Goal 3's figure is measured against a real `northstar serve` (ports 18650–18699, as the CLI start-up
    tests): each timed ask is a fresh CLI process answered by the server, which holds the warehouse (an ask that
    ran in-process would fail on its lock)."""
    res = harness.ask_through_server(demo_copy, 2, ports=range(18650, 18700))
    assert "error" not in res, res
    assert len(res["runs_s"]) == 2 and res["median_s"] > 0
    assert res["tool_ms_median"] > 0  # the answers carried the tool call the server ran
