"""Dates and periods in a question: "last month", "Q3", "since September", "next 90 days", "Thursday at 8".

`parse_period` reads a date range, a horizon and an as-of date (the past: a month without a year is its latest
occurrence up to today); `parse_day` reads a day to come ("from next Monday", "effective 1 October") and
`parse_when` a moment to send or launch ("tomorrow morning", "Monday 5 October at 9am"). The named ranges are a
table (`SPANS`): the first pattern found in the text decides the range.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

from agent.planners.extract import rx

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m} | {"sept": 9}
MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)} | {
    d.lower(): i for i, d in enumerate(calendar.day_abbr)} | {"tues": 1, "thur": 3, "thurs": 3}
WEEKDAY_RE = "|".join(sorted(WEEKDAYS, key=len, reverse=True))
ISO_DATE = r"\b(\d{4}-\d{2}-\d{2})\b"
NUMBER_WORDS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "eighteen": 18, "twenty": 20, "thirty": 30}
COUNT_RE = r"(\d+|" + "|".join(w for w in NUMBER_WORDS if w != "a") + ")"
DAY_MONTH_RE = (rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?: of)? ({MONTH_RE})\b,?(?:\s+(\d{{4}}))?"
                rf"|\b({MONTH_RE})\.? (\d{{1,2}})(?:st|nd|rd|th)?\b(?!:),?(?:\s+(\d{{4}}))?")
SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "fall": (9, 11)}
DAYPARTS = {"morning": (9, 0), "noon": (12, 0), "midday": (12, 0), "lunchtime": (12, 0), "lunch": (12, 0),
            "afternoon": (14, 0), "evening": (18, 0), "tonight": (20, 0), "night": (20, 0)}
Span = tuple[date, date]


def count_of(word: str) -> int:
    """'6' or 'six' → 6."""
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


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
    days = count_of(match.group(1)) * {"day": 1, "week": 7, "month": 30}[match.group(2)]
    return today - timedelta(days=days - 1), today


def _day_month(match: re.Match, today: date) -> Span:
    """'17 June 2026', 'June 17': one day (the latest such day up to today when no year is said)."""
    day, month, year = (match.group(1), match.group(2), match.group(3)) if match.group(1) else (
        match.group(5), match.group(4), match.group(6))
    month_no = MONTHS[month.lower()]
    year_no = int(year) if year else (today.year if (month_no, int(day)) <= (today.month, today.day)
                                      else today.year - 1)
    try:
        one = date(year_no, month_no, int(day))
    except ValueError:
        return recent_month(month_no, today, year and int(year))
    return one, one


def _thanksgiving(year: int) -> date:
    first = date(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


HOLIDAYS: dict[str, Callable[[int], date]] = {  # retail days people name instead of dates
    "black friday": lambda y: _thanksgiving(y) + timedelta(days=1),
    "cyber monday": lambda y: _thanksgiving(y) + timedelta(days=4),
    "thanksgiving": _thanksgiving,
    "christmas eve": lambda y: date(y, 12, 24), "christmas day": lambda y: date(y, 12, 25),
    "christmas": lambda y: date(y, 12, 25), "boxing day": lambda y: date(y, 12, 26),
    "new year's eve": lambda y: date(y, 12, 31), "new year's day": lambda y: date(y, 1, 1),
    "valentine's day": lambda y: date(y, 2, 14), "valentines day": lambda y: date(y, 2, 14),
    "singles day": lambda y: date(y, 11, 11), "halloween": lambda y: date(y, 10, 31),
}
HOLIDAY_RE = (r"\b(" + "|".join(sorted(map(re.escape, HOLIDAYS), key=len, reverse=True)) + r")\b(?:\s+(\d{4}))?"
              r"(?:'s)?(\s+weekend)?")


def _holiday(match: re.Match, today: date) -> Span:
    """'Cyber Monday', 'Black Friday 2025': that day, the latest one up to today when no year is said; 'Black Friday
    weekend' runs to the Sunday after; two days named ('Black Friday through Cyber Monday') span both."""
    def day_of(m: re.Match) -> date:
        named = HOLIDAYS[m.group(1).lower()]
        day = named(int(m.group(2))) if m.group(2) else named(today.year)
        return named(today.year - 1) if not m.group(2) and day > today else day
    first = day_of(match)
    last = first + timedelta(days=2 if match.group(3) and first.weekday() == 4 else 0)
    for other in rx.finditer(HOLIDAY_RE, match.string[match.end():]):
        later = day_of(other)
        if first < later <= first + timedelta(days=7):  # the same season's days: a range
            last = max(last, later)
    return first, last


def _season(match: re.Match, today: date) -> Span:
    """'this summer', 'last spring', 'over the summer': the season's months, this year's once begun."""
    first, last = SEASONS[match.group(2)]
    year = today.year if (match.group(1) or "") != "last" and first <= today.month else today.year - 1
    return date(year, first, 1), month_end(year, last)


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
    (rf"\b(?:between |from )?({MONTH_RE}) (?:and|to|-|–|through|thru|until|till) ({MONTH_RE})\b(?:\s+(\d{{4}}))?",
     _between_months),
    (rf"\b(?:since|from|after) (?:the (?:start|beginning) of )?({MONTH_RE})\b(?:\s+(\d{{4}}))?", _since_month),
    (rf"\b(?:since|after) (?:we|they|our|the)\b(?:\s+[\w'-]+){{1,5}}?\s+in ({MONTH_RE})\b(?:\s+(\d{{4}}))?",
     _since_month),  # "since we changed couriers in July": from then until now
    (rf"\b(?:last|previous|past) {COUNT_RE} (day|week|month)s?\b", _trailing),
    (r"\bq([1-4])\b(?:\s*(\d{4}))?", _named_quarter),
    (r"\b(last|previous|past) quarter\b", _last_quarter),
    (r"\bthis quarter\b|\bquarter to date\b|\bqtd\b", _this_quarter),
    (r"\b(last|previous|past) month\b", _last_month),
    (r"\bthis month\b|\bmonth to date\b|\bmtd\b", _this_month),
    (r"\b(last|previous|past) week\b", _last_week),
    (r"\bthis week\b", _this_week),
    (r"\byesterday\b", _yesterday),
    (HOLIDAY_RE, _holiday),  # "last year's Black Friday weekend": the days, not the year
    (r"\b(last|previous|past) year\b", _last_year),
    (r"\bthis year\b|\byear to date\b|\bytd\b|\bsince the (?:start|beginning) of (?:the|this) year\b|"
     r"\bso far this year\b", _this_year),
    (r"\b(this|last|over the|in the|during the)? ?(spring|summer|autumn|fall)\b", _season),
    (DAY_MONTH_RE, _day_month),
    (rf"\b(?:in|during|for|of|across|over|throughout|through|around|mid-?|end of|start of) ({MONTH_RE})\b"
     rf"(?:\s+(\d{{4}}))?", _named_month),
    (rf"\b({MONTH_RE}) (\d{{4}})\b", _named_month),
    (rf"(?:^\W*|\bhow (?:was|were|did|about|'?s)\s+(?:we do in\s+)?)(?!(?:may|march|mar)\b)({MONTH_RE})\b()(?!\s+(?:\d|\w+\s+audience))",
     _named_month),  # "September recap?", "how was September": a month said alone
    (r"\b(?:in|during|for|(?<!as )of|over|across|throughout|calendar|fiscal|fy) (20\d\d)\b", _named_year),
)


def _horizon(t: str) -> dict:
    if m := rx.search(rf"\b(?:next|coming|following) {COUNT_RE} (day|week|month|year)s?\b", t):
        count, unit = count_of(m.group(1)), m.group(2)
        if unit == "month" and count % 12 == 0:
            return {"horizon_days": count // 12 * 365}  # "the next 12 months" is a year
        return {"horizon_days": count * {"day": 1, "week": 7, "month": 30, "year": 365}[unit]}
    if m := re.search(r"\b(next|coming|following) (week|month|quarter|year)\b", t):
        return {"horizon_days": {"week": 7, "month": 30, "quarter": 90, "year": 365}[m.group(2)]}
    return {}


def _span(t: str, today: date, as_of: date | None) -> Span | None:
    """The range the text names: ISO dates first, then the first of `SPANS` found."""
    iso = [d for d in map(date.fromisoformat, rx.findall(ISO_DATE, t)) if d != as_of]
    if len(iso) >= 2:
        return min(iso[:2]), max(iso[:2])
    if len(iso) == 1:
        return (iso[0], today) if re.search(r"\b(since|from|after)\s+\d{4}-", t) else (iso[0], iso[0])
    for pattern, span in SPANS:
        if m := rx.search(pattern, t):
            return span(m, today)
    return None


def parse_period(text: str, today: date) -> dict:
    """{start, end} and/or {horizon_days} and/or {as_of} found in the text. Days named by month ("June 1", "30th of
    June") read as their dates first, so two of them are a range ("between June 1 and June 30") and one after
    "as of" is the as-of day."""
    t = rx.sub(DAY_MONTH_RE, lambda m: _day_month(m, today)[0].isoformat(), text.lower())
    out: dict = _horizon(t)
    if m := re.search(r"\bas (?:of|at) (\d{4}-\d{2}-\d{2})", t):
        out["as_of"] = date.fromisoformat(m.group(1))
    if span := _span(t, today, out.get("as_of")):
        out["start"], out["end"] = (min(day, today) for day in span)  # a range never ends after today
    return out


def _future(day: date, today: date) -> date:
    """A day named without a year is its next occurrence from today on."""
    return day if day >= today else day.replace(year=day.year + 1)


def parse_day(text: str, today: date) -> date | None:
    """A day to come: '2026-10-05', '5 October', 'October 5th', 'tomorrow', 'next Monday', 'on Thursday' (a weekday
    is its next occurrence after today), 'next week' (its Monday), 'next month' (its first day), 'in 3 days'."""
    t = text.lower()
    if m := rx.search(ISO_DATE, t):
        return date.fromisoformat(m.group(1))
    if m := rx.search(DAY_MONTH_RE, t):
        day, month, year = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(5), m.group(4), m.group(6))
        try:
            named = date(int(year) if year else today.year, MONTHS[month], int(day))
        except ValueError:
            named = None
        if named:
            return named if year else _future(named, today)
    if re.search(r"\btomorrow\b", t):
        return today + timedelta(days=1)
    if re.search(r"\b(today|tonight|this (morning|afternoon|evening))\b", t):
        return today
    if m := rx.search(rf"\b(?:next |on |this |coming )?({WEEKDAY_RE})\b", t):
        return today + timedelta(days=(WEEKDAYS[m.group(1)] - today.weekday()) % 7 or 7)
    if re.search(r"\bnext week\b", t):
        return today + timedelta(days=7 - today.weekday())
    if re.search(r"\bnext month\b", t):
        return (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    if m := rx.search(rf"\bin {COUNT_RE} (day|week)s?\b", t):
        return today + timedelta(days=count_of(m.group(1)) * (7 if m.group(2) == "week" else 1))
    return None


def parse_time(text: str) -> tuple[int, int] | None:
    """'at 9', '6pm', '18:30', '10.30am', 'noon', 'in the morning' → (hour, minute). A bare 'at 8' is 8 in the
    morning; 'at 1' to 'at 6' without am/pm are afternoon hours (nobody schedules a send at 3 at night)."""
    t = text.lower()
    if m := re.search(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?m\.?\b", t):
        hour = int(m.group(1)) % 12 + (12 if m.group(3) == "p" else 0)
        return hour, int(m.group(2) or 0)
    if m := re.search(r"\b(?:at|@|by|for)\s*(\d{1,2})(?:[:.](\d{2}))?\b(?!\s*(?:%|percent|k\b|days?|weeks?))"
                      r"|\b(\d{1,2}):(\d{2})\b", t):
        hours, minutes = m.group(1, 2) if m.group(1) else m.group(3, 4)
        hour = int(hours)
        if hour <= 23:
            part = next((p for p in DAYPARTS if rx.search(rf"\b{p}\b", t)), None)
            evening = part in ("afternoon", "evening", "tonight", "night")
            if 1 <= hour <= 6 or (evening and hour < 12):
                hour += 12
            return hour % 24, int(minutes or 0)
    if part := next((p for p in DAYPARTS if rx.search(rf"\b{p}\b", t)), None):
        return DAYPARTS[part]
    return None


def says_when(text: str) -> bool:
    """Whether the text names a day or a time of its own (not only a verb that implies "tomorrow")."""
    return parse_day(text, date(2000, 1, 3)) is not None or parse_time(text) is not None


def parse_when(text: str, today: date) -> datetime | None:
    """'tomorrow at 9', 'next Monday 10am', 'Thursday at 8', 'tomorrow morning', '2026-10-05 09:00' → a datetime;
    a send or launch without a day is tomorrow, without a time at 9 in the morning."""
    t = text.lower()
    day = parse_day(t, today)
    if day is None and re.search(r"\b(send|schedule|launch|queue|book|email|text|push)\b", t):
        day = today + timedelta(days=1)
    if day is None:
        return None
    hour, minute = parse_time(t) or (9, 0)
    if m := re.search(r"\b\d{4}-\d{2}-\d{2}[ t](\d{2}):(\d{2})", t):
        hour, minute = int(m.group(1)), int(m.group(2))
    return datetime(day.year, day.month, day.day, hour, minute)
