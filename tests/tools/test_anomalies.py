import json
from datetime import date, timedelta

import numpy as np
import pytest

from tests.conftest import cli_json
from tools.analytics.anomalies import AnomalyParams, detect_anomalies
from tools.registry import ToolError
from tools.warehouse import connect
from tools.warehouse.demo import ANOMALY_CHANNEL, ANOMALY_DAY, END, START

FULL = {"start": START.isoformat(), "end": END.isoformat()}


def test_demo_anomaly_day_found_with_few_false_alarms(demo_copy):
    out = cli_json("tool", "detect_anomalies", "--args", json.dumps({"channel": ANOMALY_CHANNEL, **FULL}),
                   home=demo_copy)
    days = [r["day"] for r in out["data"]]
    assert ANOMALY_DAY.isoformat() in days
    hit = next(r for r in out["data"] if r["day"] == ANOMALY_DAY.isoformat())
    assert hit["direction"] == "drop" and hit["value"] < hit["expected_low"] and hit["change"] == pytest.approx(
        -0.75, abs=0.1)
    assert abs(hit["score"]) == max(abs(r["score"]) for r in out["data"])
    assert len(days) - 1 <= 3, days
    assert ANOMALY_DAY.isoformat() in out["summary"] and out["chart"]["mark"]["type"] == "line"


@pytest.mark.parametrize("metric", ["conversions", "revenue", "cpa"])
def test_anomaly_found_in_totals_and_ratios(demo_con, metric):
    kw = {"channel": ANOMALY_CHANNEL} if metric == "cpa" else {}
    res = detect_anomalies(demo_con, AnomalyParams(metric=metric, **kw, **FULL))
    assert ANOMALY_DAY.isoformat() in [r["day"] for r in res.data]
    assert res.metrics["anomalies"] - 1 <= 3
    expected_direction = "spike" if metric == "cpa" else "drop"
    assert next(r for r in res.data if r["day"] == ANOMALY_DAY.isoformat())["direction"] == expected_direction


def test_table_series_spike_and_weekly_grain(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    rng = np.random.default_rng(3)
    days = [date(2025, 1, 1) + timedelta(days=i) for i in range(200)]
    weekday = np.array([d.weekday() for d in days])
    trend = np.linspace(100, 160, 200)
    value = trend * np.where(weekday >= 5, 0.7, 1.0) * rng.normal(1, 0.04, 200)
    value[120] *= 1.6
    con.execute("CREATE TABLE visits AS SELECT unnest(?) AS day, unnest(?) AS sessions",
                [days, value.tolist()])
    res = detect_anomalies(con, AnomalyParams(table="visits", date_column="day", value_column="sessions",
                                              start=days[0], end=days[-1]))
    assert [r["day"] for r in res.data] == [days[120].isoformat()] and res.data[0]["direction"] == "spike"
    weekly = detect_anomalies(con, AnomalyParams(table="visits", date_column="day", value_column="sessions",
                                                 grain="week", start=days[0], end=days[-1], threshold=3))
    assert weekly.metrics["grain"] == "week" and weekly.metrics["points"] >= 27
    con.close()


def test_degenerate_inputs_are_explained(demo_con, tmp_path):
    with pytest.raises(ToolError, match="No data"):
        detect_anomalies(demo_con, AnomalyParams(start=date(2030, 1, 1), end=date(2030, 3, 1)))
    with pytest.raises(ToolError, match="Unknown channel 'tiktok'"):
        detect_anomalies(demo_con, AnomalyParams(channel="tiktok"))
    with pytest.raises(ToolError, match="after it ends"):
        detect_anomalies(demo_con, AnomalyParams(start=date(2026, 5, 1), end=date(2026, 4, 1)))
    con = connect(tmp_path / "w.duckdb")
    con.execute("CREATE TABLE short AS SELECT DATE '2025-01-01' + i::INTEGER AS d, 1.0 * i AS v FROM range(10) t(i)")
    with pytest.raises(ToolError, match="at least 21 days"):
        detect_anomalies(con, AnomalyParams(table="short", date_column="d", value_column="v",
                                            start=date(2025, 1, 1), end=date(2025, 1, 10)))
    with pytest.raises(ToolError, match="value_column"):
        detect_anomalies(con, AnomalyParams(table="short", date_column="d", start=date(2025, 1, 1),
                                            end=date(2025, 1, 10)))
    con.close()


def test_the_theil_sen_slope_is_scipys():
    from scipy import stats

    from tools.analytics.anomalies import theil_sen_slope

    rng = np.random.default_rng(3)
    for n in (3, 14, 28, 101):
        x = np.arange(n)
        y = rng.normal(size=n).cumsum()
        assert theil_sen_slope(y, x) == stats.theilslopes(y, x)[0]
    y[5] = np.nan
    assert np.isnan(theil_sen_slope(y, x)) and np.isnan(stats.theilslopes(y, x)[0])
