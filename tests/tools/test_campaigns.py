import pytest

from tests.conftest import cli_json, run_cli


def test_campaign_report_cli_matches_independent_sql(demo_copy):
    import duckdb

    out = cli_json("tool", "campaign_report", "--args", '{"start": "2026-07-01", "end": "2026-07-31"}',
                   home=demo_copy)
    expected = duckdb.connect(str(demo_copy / "warehouse.duckdb"), read_only=True).execute("""SELECT channel, sum(spend), sum(clicks)::DOUBLE / sum(impressions),
        sum(spend) / sum(conversions), sum(revenue) / sum(spend), sum(conversions)
        FROM ad_spend WHERE date >= DATE '2026-07-01' AND date <= DATE '2026-07-31' GROUP BY channel""").fetchall()
    rows = {r["channel"]: r for r in out["data"]}
    assert set(rows) == {e[0] for e in expected}
    for ch, spend, ctr, cpa, roas, conv in expected:
        r = rows[ch]
        assert r["spend"] == pytest.approx(spend, rel=1e-9)
        assert r["ctr"] == pytest.approx(ctr, rel=1e-9)
        assert r["cpa"] == pytest.approx(cpa, rel=1e-9)
        assert r["roas"] == pytest.approx(roas, rel=1e-9)
        assert r["conversions"] == pytest.approx(conv, rel=1e-9)
    assert out["metrics"]["spend"] == pytest.approx(sum(e[1] for e in expected), rel=1e-9)
    assert out["chart"]["mark"]["type"] == "bar"


def test_campaign_report_by_week_and_channel_filter(demo_con):
    from tools.analytics.campaigns import CampaignReportParams, campaign_report

    res = campaign_report(demo_con, CampaignReportParams(group_by="week", channels=["email"]))
    assert res.data and all(r["week"] for r in res.data)
    total = demo_con.execute("SELECT sum(spend) FROM ad_spend WHERE channel = 'email' "
                             "AND date BETWEEN DATE '2026-09-01' AND DATE '2026-09-30'").fetchone()[0]
    assert res.metrics["spend"] == pytest.approx(total)


def test_bad_args_exit_2_and_unknown_channel_is_explained(demo_copy):
    demo_home = demo_copy
    proc = run_cli("tool", "campaign_report", "--args", '{"group_by": "planet"}', home=demo_home)
    assert proc.returncode == 2 and "group_by" in proc.stderr
    proc = run_cli("tool", "campaign_report", "--args", "{not json", home=demo_home)
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    proc = run_cli("tool", "campaign_report", "--args", '{"channels": ["tiktok"]}', home=demo_home)
    assert proc.returncode == 1 and "Unknown channel(s) tiktok" in proc.stderr
    proc = run_cli("tool", "campaign_report", "--args", '{"start": "2030-01-01", "end": "2030-01-31"}',
                   home=demo_home)
    assert proc.returncode == 1 and "No ad spend" in proc.stderr
    proc = run_cli("tool", "campaing_report", home=demo_home)
    assert proc.returncode == 2 and "campaign_report" in proc.stderr
