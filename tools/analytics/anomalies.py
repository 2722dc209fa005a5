"""detect_anomalies: unusual days or weeks in a KPI series against a robust day-of-week baseline."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.common import money, resolve_period
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import quote, require_table, resolve_params

if TYPE_CHECKING:
    import pandas as pd

# KPI → (numerator, denominator) over ad_spend; ratios are recomputed from sums per period.
KPIS = {"conversions": ("conversions", None), "revenue": ("revenue", None), "spend": ("spend", None),
        "clicks": ("clicks", None), "impressions": ("impressions", None), "ctr": ("clicks", "impressions"),
        "cvr": ("conversions", "clicks"), "cpa": ("spend", "conversions"), "roas": ("revenue", "spend"),
        "cpc": ("spend", "clicks")}
MAD = 1.4826


class AnomalyParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    metric: Literal["conversions", "revenue", "spend", "clicks", "impressions", "ctr", "cvr", "cpa", "roas",
                    "cpc"] = "conversions"
    """KPI from the ad platforms' daily delivery (ad_spend)."""
    grain: Literal["day", "week"] = "day"
    """Look for unusual days or unusual weeks."""
    channel: str | None = None
    """Only this channel (default: all channels together)."""
    campaign_id: str | None = None
    """Only this campaign."""
    start: date | None = None
    """First day scanned (default: 180 days before `end`)."""
    end: date | None = None
    """Last day scanned (default: the last day with data)."""
    threshold: float = Field(4.0, ge=2.0, le=10.0)
    """Robust z-score beyond which a point is flagged (higher: fewer, surer alarms)."""
    table: str | None = None
    """Scan a loaded table instead of ad_spend: sums `value_column` per `date_column`."""
    date_column: str = "date"
    """Date column of `table`."""
    value_column: str | None = None
    """Numeric column of `table` to scan."""
    limit: int = Field(20, ge=1, le=200)
    """Most flagged points returned (largest scores first)."""


class AnomalyResult(ToolResult):
    pass


def _series(con, p: AnomalyParams, start: date, end: date) -> tuple[pd.Series, str]:
    """Daily values from the first day of history needed for a baseline to `end` (missing days are 0)."""
    import pandas as pd  # lazy: keeps `northstar` start-up fast

    lo = start - timedelta(days=56)
    if p.table:
        if not p.value_column:
            raise ToolError(f"Name the numeric column of {p.table} to scan in `value_column`.")
        p = resolve_params(con, p, columns=("date_column", "value_column"))  # as the user typed them, any case
        sql = (f"SELECT {quote(p.date_column)}::DATE AS d, sum({quote(p.value_column)})::DOUBLE AS num, NULL AS den "
               f"FROM {quote(p.table)} WHERE {quote(p.date_column)}::DATE BETWEEN ? AND ? GROUP BY 1")
        args, label = [lo, end], f"{p.value_column} in {p.table}"
    else:
        require_table(con, "ad_spend", ["date", "channel", "campaign_id", "spend"])
        num, den = KPIS[p.metric]
        where, args = "date BETWEEN ? AND ?", [lo, end]
        for col, val in (("channel", p.channel), ("campaign_id", p.campaign_id)):
            if val is not None:
                known = [r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM ad_spend ORDER BY 1").fetchall()]
                if val not in known:
                    raise ToolError(f"Unknown {col} {val!r}; the warehouse has {', '.join(map(str, known[:20]))}.")
                where += f" AND {col} = ?"
                args.append(val)
        sql = (f"SELECT date AS d, sum({num})::DOUBLE AS num, {f'sum({den})::DOUBLE' if den else 'NULL'} AS den "
               f"FROM ad_spend WHERE {where} GROUP BY 1")
        label = f"{p.metric}" + (f" of {p.channel}" if p.channel else "") + (
            f" of campaign {p.campaign_id}" if p.campaign_id else "")
    try:
        df = con.execute(sql, args).df()
    except duckdb.Error as exc:
        raise ToolError(f"Could not read the series: {str(exc).splitlines()[0]}") from exc
    if df.empty or not (pd.to_datetime(df["d"]) >= pd.Timestamp(start)).any():
        raise ToolError(f"No data for {label} between {start} and {end}. Choose another period or filter.")
    days = pd.date_range(max(pd.Timestamp(lo), pd.to_datetime(df["d"]).min()), pd.Timestamp(end), freq="D")
    df = df.assign(d=pd.to_datetime(df["d"])).set_index("d").reindex(days)
    return df, label


def theil_sen_slope(y: np.ndarray, x: np.ndarray) -> float:
    """The median of the slopes between every pair of points (scipy.stats.theilslopes' slope, same arithmetic), in
    numpy: importing scipy.stats for 14 points cost about a second of every cold detect_anomalies."""
    i, j = np.triu_indices(x.size, 1)
    dx = (x[j] - x[i]).astype(float)
    keep = dx != 0
    return float(np.median((y[j] - y[i])[keep] / dx[keep]))


def _baseline(values: np.ndarray, weekday: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Expected value per point: day-of-week factor × centred rolling median level (edge-preserving, so flights
    and budget steps are not alarms); residuals on the log scale when the series is positive."""
    import pandas as pd

    log = bool(np.all(values > 0))
    x = np.log(values) if log else values.astype(float)
    window = 7 if weekday is not None else 5
    half = window // 2
    level0 = pd.Series(x).rolling(window, center=True, min_periods=1).median()
    season = (pd.Series(x - level0).groupby(weekday).transform("median").to_numpy() if weekday is not None
              else np.zeros(x.size))
    deseason = x - season
    padded = np.r_[np.full(half, np.nan), deseason, np.full(half, np.nan)]
    neighbours = np.lib.stride_tricks.sliding_window_view(padded, window).copy()
    neighbours[:, half] = np.nan  # leave the point itself out, so an outlier cannot pull its own baseline
    level = np.nanmedian(neighbours, axis=1)
    if x.size >= 3 * window:  # at the edges the window is one-sided: follow the robust (Theil–Sen) local trend
        span = 2 * window
        for idx, anchor in ((np.arange(x.size - half, x.size), x.size - half - 1), (np.arange(half), half)):
            ref = np.arange(x.size - span, x.size) if anchor > half else np.arange(span)
            slope = theil_sen_slope(deseason[ref], ref)
            level[idx] = level[anchor] + slope * (idx - anchor)
    return level + season, x, log


@register(example=AnomalyParams(metric="conversions", channel="search", start=date(2026, 4, 1),
                                end=date(2026, 9, 30)),
          key_metrics=("anomalies", "points"),
          concepts={"anomaly": ["anomaly", "anomalies", "anomalous", "outlier", "outliers", "abnormal", "irregular",
                                "z-score", "zscore", "robust z", "flag anything", "control chart"],
                    "spike": ["spike", "spikes", "spiked", "dip", "dips", "plunge", "plunged", "crash", "crashed",
                              "jump", "sudden", "suddenly", "surge"],
                    "detect": ["flag * days", "flag * weeks", "flag any", "spot * days", "find * days where",
                               "days where * went"],  # its verbs ("flag any days where our CPA went haywire")
                    "unusual": ["unusual", "odd", "weird", "strange", "out of the ordinary", "glitch", "abnormal",
                                "haywire", "off the charts", "out of whack",
                                "messed up", "went wrong", "gone wrong", "looks off", "something off", "off days",
                                "off weeks"],
                    "tracking": ["tracking", "pixel", "broke", "broken", "outage"]},
          synonyms={"threshold": ["threshold", "beyond", "z above", "z-score above", "cut-off", "cutoff", "sigma",
                                  "robust z", "z-score of", "z of"],
                    "cpc": ["cost per click"],
                    "ctr": ["click-through rate", "click through rate", "clickthrough"],
                    "cvr": ["conversion rate"],
                    "cpa": ["cost per acquisition", "cost per conversion"],
                    "roas": ["return on ad spend"],
                    "week": ["weekly", "weeks", "week"],
                    "revenue": ["sales"]},
          requests=["Were there any unusual days in conversions recently?", "Detect anomalies in search conversions",
                    "Why did revenue drop on June 17?", "Flag spikes or drops in spend by day",
                    "Is anything odd in our CPA this quarter?", "anomaly detection on weekly revenue",
                    "Did tracking break at some point? conversions fell suddenly",
                    "Show days where ROAS was outside the expected range",
                    "were there days when clicks fell off a cliff?", "which weeks look abnormal for impressions?",
                    "any sudden jumps in CPC?"])
def detect_anomalies(con: duckdb.DuckDBPyConnection, p: AnomalyParams) -> AnomalyResult:
    """Flag unusual days or weeks in a KPI series against a day-of-week baseline, with expected range and direction."""
    import pandas as pd

    start, end = resolve_period(con, p.start, p.end, default_days=180)
    df, label = _series(con, p, start, end)
    num = df["num"].fillna(0.0)
    if p.grain == "week":  # Monday-based weeks; partial weeks at either end are left out
        full = num.resample("W-MON", label="left", closed="left").count() == 7
        num = num.resample("W-MON", label="left", closed="left").sum()[full]
        den = df["den"].resample("W-MON", label="left", closed="left").sum(min_count=1)[full]
    else:
        den = df["den"]
    ratio = KPIS.get(p.metric, (None, None))[1] is not None and not p.table
    values = (num / den.where(den > 0)).to_numpy(dtype=float) if ratio else num.to_numpy(dtype=float)
    index = num.index
    ok = np.isfinite(values)
    need = 4 if p.grain == "week" else 21
    if ok.sum() < need:
        raise ToolError(f"{label}: only {int(ok.sum())} {p.grain}s with data; anomaly detection needs at least "
                        f"{need} {p.grain}s (including up to 8 weeks of history before the period).")
    warnings = [] if ok.all() else [f"{int((~ok).sum())} {p.grain}s without a defined {p.metric} were skipped."]
    values, index = values[ok], index[ok]
    expected, x, log = _baseline(values, None if p.grain == "week" else index.day_of_week.to_numpy())
    resid = x - expected
    scale = MAD * np.median(np.abs(resid - np.median(resid)))
    floor = 0.01 if log else 1e-9 * max(1.0, float(np.abs(values).max()))
    scale = max(scale, floor)
    score = resid / scale
    lo_x, hi_x = expected - p.threshold * scale, expected + p.threshold * scale
    to_val = np.exp if log else (lambda a: a)
    inside = index >= pd.Timestamp(start)
    flagged = np.flatnonzero(inside & (np.abs(score) >= p.threshold))
    flagged = flagged[np.argsort(-np.abs(score[flagged]))]
    key = p.grain
    rows = [{key: index[i].date(), "value": float(values[i]), "expected": float(to_val(expected[i])),
             "expected_low": float(to_val(lo_x[i])), "expected_high": float(to_val(hi_x[i])),
             "change": float(values[i] / to_val(expected[i]) - 1) if to_val(expected[i]) else None,
             "score": float(score[i]), "direction": "drop" if score[i] < 0 else "spike"} for i in flagged]
    n_points = int(inside.sum())
    summary = f"{label}, {start} to {end} ({n_points} {key}s): "
    if rows:
        top = rows[: min(3, len(rows))]
        summary += (f"{len(rows)} unusual {key}{'s' if len(rows) > 1 else ''} (|robust z| ≥ {p.threshold:g}). "
                    + " ".join(f"{r[key]}: {money(r['value'])} vs expected {money(r['expected'])} "
                               f"(range {money(r['expected_low'])}–{money(r['expected_high'])}), a "
                               f"{abs(r['change']):.0%} {r['direction']}." for r in top if r["change"] is not None))
        summary += " Check tracking, budgets and campaign changes on those dates before acting."
    else:
        summary += f"no {key} outside the expected range (|robust z| < {p.threshold:g})."
    series = [{key: str(index[i].date()), "series": name, "value": round(float(v), 4)}
              for i in np.flatnonzero(inside)
              for name, v in (("actual", values[i]), ("expected", to_val(expected[i])))]
    chart = charts.line(series, key, "value", f"{label}: actual vs expected", color="series")
    metrics = {"start": start, "end": end, "grain": p.grain, "points": n_points, "anomalies": len(rows),
               "threshold": p.threshold, "robust_scale": float(scale), "scale_type": "log" if log else "linear",
               "dates": [r[key] for r in rows]}
    if len(rows) > p.limit:
        warnings.append(f"{len(rows) - p.limit} more flagged {key}s not shown.")
    return AnomalyResult(summary=summary, data=rows[: p.limit], metrics=metrics, chart=chart, warnings=warnings)
