"""The spend and outcome history response curves are fitted on, as a `History`: read from ad_spend (daily,
platform-reported outcome per channel) or from a loaded table (one row per day or week, one shared outcome).
The package's SQL lives here, in the `_…_rows` functions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from tools.common import resolve_period
from tools.registry import ToolError
from tools.warehouse import quote, require_table

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class History:
    """Spend and outcome per period, with the regressors that are not media."""

    dates: pd.Series
    """First day of each period."""
    spend: np.ndarray
    """Periods × channels."""
    outcome: np.ndarray
    """Periods × groups: one column per channel when `per_channel`, else one shared column."""
    channels: list[str]
    base: np.ndarray
    """Non-media regressors, periods × k: weekday effects, or an intercept, controls and yearly seasonality."""
    per_channel: bool
    """Whether each channel has its own (platform-reported) outcome."""
    label: str
    """What the outcome is, for the summary."""

    @property
    def period_days(self) -> int:
        """Typical days between periods (1 for daily, 7 for weekly data)."""
        steps = np.diff(self.dates.to_numpy()).astype("timedelta64[D]").astype(int)
        return max(1, int(np.median(steps)))

    def idle_channels(self) -> list[str]:
        """Channels with no spend over the whole history."""
        return [ch for ch, total in zip(self.channels, self.spend.sum(0), strict=True) if total <= 0]

    def with_spend(self) -> History:
        """The same history without the idle channels."""
        active = self.spend.sum(0) > 0
        return replace(self, channels=[ch for ch, a in zip(self.channels, active, strict=True) if a],
                       spend=self.spend[:, active],
                       outcome=self.outcome[:, active] if self.per_channel else self.outcome)


def _table_rows(con: duckdb.DuckDBPyConnection, table: str, date_column: str, outcome_column: str,
                spend_columns: list[str], control_columns: list[str]) -> pd.DataFrame:
    """Per date: the outcome and spend summed, the controls averaged."""
    require_table(con, table, [date_column, outcome_column, *spend_columns, *control_columns])
    cols = ", ".join([f"sum({quote(c)})::DOUBLE" for c in [outcome_column, *spend_columns]]
                     + [f"avg({quote(c)})::DOUBLE" for c in control_columns])
    try:
        return con.execute(f"SELECT {quote(date_column)}::DATE AS d, {cols} FROM {quote(table)} "
                           f"WHERE {quote(date_column)} IS NOT NULL GROUP BY 1 ORDER BY 1").df()
    except duckdb.Error as exc:
        raise ToolError(f"Could not read {table}: {str(exc).splitlines()[0]}") from exc


def table_history(con: duckdb.DuckDBPyConnection, table: str, *, date_column: str, outcome_column: str,
                  spend_columns: list[str], control_columns: list[str]) -> History:
    """A loaded table's history: an intercept, the controls that vary, and yearly seasonality given a year of data."""
    import pandas as pd  # lazy: keeps `northstar` start-up fast

    rows = _table_rows(con, table, date_column, outcome_column, spend_columns, control_columns)
    values = rows.iloc[:, 1:].fillna(0.0).to_numpy(dtype=float)
    dates = pd.to_datetime(rows["d"])
    outcome, spend = values[:, :1], values[:, 1:1 + len(spend_columns)]
    controls = values[:, 1 + len(spend_columns):]
    span = (dates.iloc[-1] - dates.iloc[0]).days if len(dates) else 0
    day_of_year = dates.dt.day_of_year.to_numpy()
    season = ([f(2 * np.pi * k * day_of_year / 365.25) for k in (1, 2) for f in (np.sin, np.cos)]
              if span >= 364 else [])
    varying = [controls[:, j] for j in range(controls.shape[1]) if np.ptp(controls[:, j]) > 0]
    base = np.column_stack([np.ones(len(dates)), *varying, *season])
    return History(dates=dates, spend=spend, outcome=outcome, channels=list(spend_columns), base=base,
                   per_channel=False, label=f"{outcome_column} in {table}")


def _ad_spend_rows(con: duckdb.DuckDBPyConnection, outcome: str, start: date, end: date) -> pd.DataFrame:
    """Per day and channel: spend (`s`) and the platform-reported outcome (`y`)."""
    return con.execute(f"SELECT date, channel, sum(spend) AS s, sum(coalesce({quote(outcome)}, 0)) AS y "
                       "FROM ad_spend WHERE date BETWEEN ? AND ? GROUP BY ALL", [start, end]).df()


def ad_spend_history(con: duckdb.DuckDBPyConnection, outcome: str, start: date | None, end: date | None,
                     channels: list[str] | None) -> History:
    """Daily spend and outcome per channel from ad_spend (default: the last two years), with weekday effects."""
    import pandas as pd  # lazy: keeps `northstar` start-up fast

    require_table(con, "ad_spend", ["date", "channel", "spend", outcome])
    start, end = resolve_period(con, start, end, default_days=730)
    rows = _ad_spend_rows(con, outcome, start, end)
    if rows.empty:
        raise ToolError(f"No ad spend between {start} and {end}. Choose a period with data.")
    known = sorted(rows["channel"].unique())
    chosen = channels or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ToolError(f"Unknown channel(s) {', '.join(unknown)}; the warehouse has {', '.join(known)}.")
    days = pd.date_range(start, end, freq="D")
    wide = {k: rows.pivot_table(index="date", columns="channel", values=k, aggfunc="sum")
            .reindex(index=days, columns=chosen).fillna(0.0).to_numpy() for k in ("s", "y")}
    weekday = days.day_of_week.to_numpy()
    base = np.column_stack([(weekday == d).astype(float) - (weekday == 6) for d in range(6)])  # sum-to-zero
    return History(dates=pd.Series(days), spend=wide["s"], outcome=wide["y"], channels=list(chosen), base=base,
                   per_channel=True, label=f"platform-reported {outcome}")
