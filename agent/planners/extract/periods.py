"""Dates and periods in a question: "last month", "Q3", "since September", "next 90 days", "tomorrow at 9".

`parse_period` reads a date range, a horizon and an as-of date; `parse_when` reads a moment to send or launch.
The named ranges are a table (`SPANS`): the first pattern found in the text decides the range.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
ISO_DATE = r"\b(\d{4}-\d{2}-\d{2})\b"
Span = tuple[date, date]


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def recent_month(month: int, today: date, year: int | None) -> Span:
    """First and last day of the month: in `year` if given, else its latest occurrence up to today."""
    year = year or (today.year if month <= today.month else today.year - 1)
    return date(year, month, 1), month_end(year, month)


def quarter_span(year: int, quarter: int) -> Span:
    return date(year, 3 * quarter - 2, 1), month_end(year, 3 * quarter)


def _year_of(match: re.Match, group: int) -> int | None:
    return int(match.group(group)) if match.group(group) else None


def _since_month(match: re.Match, today: date) -> Span:
    return recent_month(MONTHS[match.group(1)], today, _year_of(match, 2))[0], today


def _between_months(match: re.Match, today: date) -> Span:
    year = _year_of(match, 3)
    return (recent_month(MONTHS[match.group(1)], today, year)[0],
            recent_month(MONTHS[match.group(2)], today, year)[1])


def _trailing(match: re.Match, today: date) -> Span:
    days = int(match.group(1)) * {"day": 1, "week": 7, "month": 30}[match.group(2)]
    return today - timedelta(days=days - 1), today


def _named_quarter(match: re.Match, today: date) -> Span:
    quarter = int(match.group(1))
    year = int(match.group(2)) if match.group(2) else (today.year if 3 * quarter <= today.month else today.year - 1)
    return quarter_span(year, quarter)


def _last_quarter(match: re.Match, today: date) -> Span:
    quarter = (today.month - 1) // 3
    return quarter_span(today.year if quarter else today.year - 1, quarter or 4)


def _this_quarter(match: re.Match, today: date) -> Span:
    return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today


def _last_month(match: re.Match, today: date) -> Span:
    last_day = today.replace(day=1) - timedelta(days=1)
    return last_day.replace(day=1), last_day


def _this_month(match: re.Match, today: date) -> Span:
    return today.replace(day=1), today


def _last_week(match: re.Match, today: date) -> Span:
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)


def _this_week(match: re.Match, today: date) -> Span:
    return today - timedelta(days=today.weekday()), today


def _yesterday(match: re.Match, today: date) -> Span:
    return today - timedelta(days=1), today - timedelta(days=1)


def _last_year(match: re.Match, today: date) -> Span:
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


def _this_year(match: re.Match, today: date) -> Span:
    return date(today.year, 1, 1), today


def _named_month(match: re.Match, today: date) -> Span:
    return recent_month(MONTHS[match.group(1)], today, _year_of(match, 2))


def _named_year(match: re.Match, today: date) -> Span:
    year = int(match.group(1))
    return date(year, 1, 1), min(date(year, 12, 31), today)


SPANS: tuple[tuple[str, Callable[[re.Match, date], Span]], ...] = (  # in order: the first found wins
    (rf"\b(?:since|from) (?:the (?:start|beginning) of )?({MONTH_RE})\b(?:\s+(\d{{4}}))?", _since_month),
    (rf"\b(?:between|from) ({MONTH_RE}) (?:and|to|-) ({MONTH_RE})\b(?:\s+(\d{{4}}))?", _between_months),
    (r"\b(?:last|past|previous) (\d+) (day|week|month)s?\b", _trailing),
    (r"\bq([1-4])\b(?:\s*(\d{4}))?", _named_quarter),
    (r"\b(last|previous|past) quarter\b", _last_quarter),
    (r"\bthis quarter\b|\bquarter to date\b|\bqtd\b", _this_quarter),
    (r"\b(last|previous|past) month\b", _last_month),
    (r"\bthis month\b|\bmonth to date\b|\bmtd\b", _this_month),
    (r"\b(last|previous|past) week\b", _last_week),
    (r"\bthis week\b", _this_week),
    (r"\byesterday\b", _yesterday),
    (r"\b(last|previous|past) year\b", _last_year),
    (r"\bthis year\b|\byear to date\b|\bytd\b", _this_year),
    (rf"\b(?:in|during|for|of) ({MONTH_RE})\b(?:\s+(\d{{4}}))?", _named_month),
    (r"\b(?:in|during|for) (20\d\d)\b", _named_year),
)


def _horizon(t: str) -> dict:
    if m := re.search(r"\bnext (\d+) (day|week|month|year)s?\b", t):
        return {"horizon_days": int(m.group(1)) * {"day": 1, "week": 7, "month": 30, "year": 365}[m.group(2)]}
    if m := re.search(r"\b(next|coming|following) (week|month|quarter|year)\b", t):
        return {"horizon_days": {"week": 7, "month": 30, "quarter": 90, "year": 365}[m.group(2)]}
    return {}


def _span(t: str, today: date, as_of: date | None) -> Span | None:
    """The range the text names: ISO dates first, then the first of `SPANS` found."""
    iso = [d for d in map(date.fromisoformat, re.findall(ISO_DATE, t)) if d != as_of]
    if len(iso) >= 2:
        return min(iso[:2]), max(iso[:2])
    if len(iso) == 1:
        return (iso[0], today) if re.search(r"\b(since|from|after)\s+\d{4}-", t) else (iso[0], iso[0])
    for pattern, span in SPANS:
        if m := re.search(pattern, t):
            return span(m, today)
    return None


def parse_period(text: str, today: date) -> dict:
    """{start, end} and/or {horizon_days} and/or {as_of} found in the text."""
    t = text.lower()
    out: dict = _horizon(t)
    if m := re.search(r"\bas (?:of|at) (\d{4}-\d{2}-\d{2})", t):
        out["as_of"] = date.fromisoformat(m.group(1))
    if span := _span(t, today, out.get("as_of")):
        out["start"], out["end"] = (min(day, today) for day in span)  # a range never ends after today
    return out


def parse_when(text: str, today: date) -> datetime | None:
    """'tomorrow at 9', 'next Monday 10am', '2026-10-05 09:00' → a datetime."""
    t = text.lower()
    hour, minute = 9, 0
    if m := re.search(r"\bat (\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b|\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)\b", t):
        hours, minutes, meridiem = m.group(1, 2, 3) if m.group(1) else m.group(4, 5, 6)
        hour, minute = int(hours) % 24, int(minutes or 0)
        if meridiem == "pm" and hour < 12:
            hour += 12
    if m := re.search(r"\b(\d{4}-\d{2}-\d{2})(?:[ t](\d{2}):(\d{2}))?", t):
        day = date.fromisoformat(m.group(1))
        if m.group(2):
            hour, minute = int(m.group(2)), int(m.group(3))
    elif "tomorrow" in t:
        day = today + timedelta(days=1)
    elif m := re.search(r"\b(?:next |on |this )?(" + "|".join(WEEKDAYS) + r")\b", t):
        day = today + timedelta(days=(WEEKDAYS[m.group(1)] - today.weekday()) % 7 or 7)
    elif re.search(r"\bnext week\b", t):
        day = today + timedelta(days=7 - today.weekday())
    elif re.search(r"\b(send|schedule|launch|queue)\b", t):
        day = today + timedelta(days=1)
    else:
        return None
    return datetime(day.year, day.month, day.day, hour, minute)
