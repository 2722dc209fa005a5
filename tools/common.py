"""Small helpers the tools share: the warehouse's clock, periods, formatting."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from tools.registry import ToolError
from tools.warehouse import data_end


def resolve_period(con: duckdb.DuckDBPyConnection, start: date | None, end: date | None,
                   default_days: int = 30) -> tuple[date, date]:
    """Fill a missing end with the warehouse's last day of data and a missing start with end − default_days + 1."""
    if end is None:
        end = data_end(con)
        if end is None:
            raise ToolError("The warehouse has no dated data yet. Run `northstar init --demo` or load your tables.")
    if start is None:
        start = end - timedelta(days=default_days - 1)
    if start > end:
        raise ToolError(f"The period starts ({start}) after it ends ({end}). Swap the dates.")
    return start, end


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def money(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def safe_div(a, b):
    return None if not b else a / b
