"""Argument extraction for the offline planner, driven by each tool's JSON schema (no per-question rules).

Periods and dates ("last month", "Q3", "since September", "next 90 days"), counts ("top 20", "5 variants"),
money ("200k"), percentages, enum values, and names the warehouse knows (channels, experiments, segments,
audiences, tables) are found in the text and mapped onto the fields of the chosen tool.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
SYNONYMS = {  # words marketers use → enum values found in tool schemas
    "weekly": "week", "daily": "day", "monthly": "month", "per week": "week", "per day": "day",
    "subject line": "email_subject", "subject lines": "email_subject", "email subject": "email_subject",
    "email body": "email_body", "text message": "sms", "texts": "sms", "push notification": "push",
    "ad headline": "ad_headline", "headlines": "ad_headline", "ad copy": "ad_description", "social post": "social",
    "first touch": "first_touch", "last touch": "last_touch", "first-touch": "first_touch",
    "last-touch": "last_touch", "time decay": "time_decay", "position based": "position_based",
    "u-shaped": "position_based", "data-driven": "markov", "every model": "all", "all models": "all",
    "compare models": "all", "rfm": "rfm", "behavioural": "behavioral", "clusters": "behavioral",
    "revenue": "revenue", "conversions": "conversions", "spend": "spend", "cpa": "cpa", "ctr": "ctr", "roas": "roas",
}
NUM = r"(\d+(?:[.,]\d+)*)"


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _recent_month(m: int, today: date, year: int | None) -> tuple[date, date]:
    y = year or (today.year if m <= today.month else today.year - 1)
    return date(y, m, 1), _month_end(y, m)


def parse_period(text: str, today: date) -> dict:
    """{start, end} and/or {horizon_days} and/or {as_of} found in the text."""
    t = text.lower()
    out: dict = {}
    if m := re.search(r"\bnext (\d+) (day|week|month|year)s?\b", t):
        out["horizon_days"] = int(m.group(1)) * {"day": 1, "week": 7, "month": 30, "year": 365}[m.group(2)]
    elif m := re.search(r"\b(next|coming|following) (week|month|quarter|year)\b", t):
        out["horizon_days"] = {"week": 7, "month": 30, "quarter": 90, "year": 365}[m.group(2)]
    if m := re.search(r"\bas (?:of|at) (\d{4}-\d{2}-\d{2})", t):
        out["as_of"] = date.fromisoformat(m.group(1))
    iso = [date.fromisoformat(d) for d in re.findall(r"\b(\d{4}-\d{2}-\d{2})\b", t)]
    iso = [d for d in iso if d != out.get("as_of")]
    if len(iso) >= 2:
        out["start"], out["end"] = min(iso[:2]), max(iso[:2])
    elif len(iso) == 1:
        if re.search(r"\b(since|from|after)\s+\d{4}-", t):
            out["start"], out["end"] = iso[0], today
        else:
            out["start"] = out["end"] = iso[0]
    elif m := re.search(rf"\b(?:since|from) (?:the (?:start|beginning) of )?({MONTH_RE})\b(?:\s+(\d{{4}}))?", t):
        out["start"] = _recent_month(MONTHS[m.group(1)], today, int(m.group(2)) if m.group(2) else None)[0]
        out["end"] = today
    elif m := re.search(rf"\b(?:between|from) ({MONTH_RE}) (?:and|to|-) ({MONTH_RE})\b(?:\s+(\d{{4}}))?", t):
        y = int(m.group(3)) if m.group(3) else None
        out["start"] = _recent_month(MONTHS[m.group(1)], today, y)[0]
        out["end"] = _recent_month(MONTHS[m.group(2)], today, y)[1]
    elif m := re.search(r"\b(?:last|past|previous) (\d+) (day|week|month)s?\b", t):
        days = int(m.group(1)) * {"day": 1, "week": 7, "month": 30}[m.group(2)]
        out["start"], out["end"] = today - timedelta(days=days - 1), today
    elif m := re.search(r"\bq([1-4])\b(?:\s*(\d{4}))?", t):
        q = int(m.group(1))
        y = int(m.group(2)) if m.group(2) else (today.year if 3 * q <= today.month else today.year - 1)
        out["start"], out["end"] = date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
    elif re.search(r"\b(last|previous|past) quarter\b", t):
        q = (today.month - 1) // 3
        y = today.year if q else today.year - 1
        q = q or 4
        out["start"], out["end"] = date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
    elif re.search(r"\bthis quarter\b|\bquarter to date\b|\bqtd\b", t):
        out["start"], out["end"] = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today
    elif re.search(r"\b(last|previous|past) month\b", t):
        first = today.replace(day=1) - timedelta(days=1)
        out["start"], out["end"] = first.replace(day=1), first
    elif re.search(r"\bthis month\b|\bmonth to date\b|\bmtd\b", t):
        out["start"], out["end"] = today.replace(day=1), today
    elif re.search(r"\b(last|previous|past) week\b", t):
        monday = today - timedelta(days=today.weekday() + 7)
        out["start"], out["end"] = monday, monday + timedelta(days=6)
    elif re.search(r"\bthis week\b", t):
        out["start"], out["end"] = today - timedelta(days=today.weekday()), today
    elif re.search(r"\byesterday\b", t):
        out["start"] = out["end"] = today - timedelta(days=1)
    elif re.search(r"\b(last|previous|past) year\b", t):
        out["start"], out["end"] = date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    elif re.search(r"\bthis year\b|\byear to date\b|\bytd\b", t):
        out["start"], out["end"] = date(today.year, 1, 1), today
    elif m := re.search(rf"\b(?:in|during|for|of) ({MONTH_RE})\b(?:\s+(\d{{4}}))?", t):
        out["start"], out["end"] = _recent_month(MONTHS[m.group(1)], today, int(m.group(2)) if m.group(2) else None)
    elif m := re.search(r"\b(?:in|during|for) (20\d\d)\b", t):
        y = int(m.group(1))
        out["start"], out["end"] = date(y, 1, 1), min(date(y, 12, 31), today)
    for k in ("start", "end"):
        if k in out and out[k] > today:
            out[k] = today
    return out


def parse_when(text: str, today: date) -> datetime | None:
    """'tomorrow at 9', 'next Monday 10am', '2026-10-05 09:00' → a datetime."""
    t = text.lower()
    hour, minute = 9, 0
    if m := re.search(r"\bat (\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b|\b(\d{1,2})(?::(\d{2}))?\s*(am|pm)\b", t):
        h, mi, ap = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        hour, minute = int(h) % 24, int(mi or 0)
        if ap == "pm" and hour < 12:
            hour += 12
    if m := re.search(r"\b(\d{4}-\d{2}-\d{2})(?:[ t](\d{2}):(\d{2}))?", t):
        d = date.fromisoformat(m.group(1))
        if m.group(2):
            hour, minute = int(m.group(2)), int(m.group(3))
    elif "tomorrow" in t:
        d = today + timedelta(days=1)
    elif m := re.search(r"\b(?:next |on |this )?(" + "|".join(WEEKDAYS) + r")\b", t):
        ahead = (WEEKDAYS[m.group(1)] - today.weekday()) % 7 or 7
        d = today + timedelta(days=ahead)
    elif re.search(r"\bnext week\b", t):
        d = today + timedelta(days=7 - today.weekday())
    elif re.search(r"\b(send|schedule|launch|queue)\b", t):
        d = today + timedelta(days=1)
    else:
        return None
    return datetime(d.year, d.month, d.day, hour, minute)


def money(text: str) -> float | None:
    hits = re.findall(r"([$€£])?\s?(\d+(?:\.\d+)?)\s?(k|m|thousand|million)?\b(?!\s?%|\s?(?:days?|weeks?|months?|"
                      r"customers?|variants?|segments?|leads?|pp))", text.lower().replace(",", ""))
    for cur, num, unit in hits:
        if cur or unit:
            return float(num) * {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(unit, 1)
    return None


def percents(text: str) -> list[float]:
    return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b|pp\b)", text.lower())]


def count_for(text: str, nouns: tuple[str, ...]) -> int | None:
    t = text.lower()
    noun = "|".join(nouns)
    if m := re.search(rf"\b(\d+)\s+(?:\w+\s+){{0,2}}(?:{noun})", t):
        return int(m.group(1))
    if m := re.search(r"\b(?:top|best|worst|first) (\d+)\b", t):
        return int(m.group(1))
    words = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "ten": 10}
    if m := re.search(rf"\b({'|'.join(words)})\s+(?:\w+\s+)?(?:{noun})", t):
        return words[m.group(1)]
    return None


def quoted_text(text: str) -> str | None:
    """The longest quoted passage (content to send), if any."""
    found = re.findall(r"[\"“'‘]([^\"”’]{3,300}?)[\"”'’](?=\s|$|[,.;!?])", text)
    return max(found, key=len).strip() if found else None


def quoted_name(text: str) -> str | None:
    if m := re.search(r"[\"“'‘]([^\"”'’]{2,80})[\"”'’]", text):
        return m.group(1).strip()
    if m := re.search(r"\b(?:called|named|as)\s+([A-Z][\w-]*(?:\s+[A-Z0-9][\w-]*){0,5})", text):
        return m.group(1).strip()
    return None


def mentions(text: str, vocabulary) -> list[str]:
    """Vocabulary items mentioned in the text (case-insensitive, _ and - read as spaces), in order of appearance."""
    t = " " + re.sub(r"[_\-]", " ", text.lower()) + " "
    found = []
    for item in vocabulary:
        key = re.sub(r"[_\-]", " ", str(item).lower())
        if key and (pos := t.find(f" {key} ") if len(key) < 4 else t.find(key)) >= 0:
            found.append((pos, item))
    return [item for _, item in sorted(found)]


def best_name_match(text: str, names: dict[str, str]) -> list[str]:
    """The value of the name sharing most words with the text (at least two, or one for one-word names)."""
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    best, best_n = None, 0
    for name, value in names.items():
        name_words = set(re.findall(r"[a-z0-9]+", name.lower())) - {"the", "a", "test", "of", "and"}
        n = len(words & name_words)
        if n > best_n and (n >= 2 or len(name_words) == 1):
            best, best_n = value, n
    return [best] if best else []


def _field_type(prop: dict) -> tuple[str, list]:
    """(json type, enum values) of a schema property, looking through anyOf/arrays."""
    if "enum" in prop:
        return "enum", prop["enum"]
    for alt in prop.get("anyOf", []):
        if "enum" in alt:
            return "enum", alt["enum"]
        if alt.get("type") == "array":
            items = alt.get("items", {})
            return "array", items.get("enum", [])
        if alt.get("type") not in (None, "null"):
            return alt.get("format", alt["type"]), []
    if prop.get("type") == "array":
        return "array", prop.get("items", {}).get("enum", [])
    return prop.get("format", prop.get("type", "string")), []


FREE_TEXT = ("query", "question", "q", "search", "topic", "goal")
ENUM_STOP = {"customers", "customer"}  # enum values too common in questions to signal a choice
QUOTED_TEXT = ("variant", "text", "content", "message", "subject", "subject_line", "copy")
ALIASES = {  # how marketers name common parameters (field name → phrases that introduce its value)
    "baseline": ("conversion rate", "baseline", "base rate", "current rate", "open rate", "click rate"),
    "relative_mde": ("lift", "uplift", "improvement", "increase"),
    "sample_size_per_arm": ("users per group", "users per arm", "per arm", "per group", "per variant"),
    "daily_traffic": ("a day", "per day", "daily", "each day"),
    "total_budget": ("budget", "to spend", "spend"),
}


def extract_args(text: str, schema: dict, today: date, vocab: dict[str, list[str]]) -> dict:
    """Fill what the text says into the fields of a tool's JSON schema."""
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    args: dict = {}
    period = parse_period(text, today)
    low = text.lower()
    pcts = percents(text)
    for name, prop in props.items():
        kind, enum = _field_type(prop)
        words = name.replace("_", " ")
        if name in ("start", "end") and name in period:
            args[name] = period[name].isoformat()
        elif name == "since" and "start" in period:
            args[name] = period["start"].isoformat()
        elif name == "as_of" and ("as_of" in period or ("end" in period and "start" not in props)):
            args[name] = (period.get("as_of") or period["end"]).isoformat()
        elif "horizon" in name and "horizon_days" in period:
            args[name] = period["horizon_days"]
        elif kind == "enum":
            hits = [h for h in mentions(text, enum) if h not in ENUM_STOP] or [
                SYNONYMS[s] for s in mentions(text, SYNONYMS) if SYNONYMS[s] in enum]
            if hits:
                args[name] = hits[0]
        elif kind == "array" and ("channel" in name):
            hits = mentions(text, vocab.get("channel", []))
            if hits:
                args[name] = hits
        elif name == "channel" and kind == "string":
            hits = mentions(text, vocab.get("channel", []))
            if hits:
                args[name] = hits[0]
        elif name in ("experiment_id", "experiment"):
            hits = mentions(text, vocab.get("experiment_id", [])) or best_name_match(
                text, vocab.get("experiment_name", {}))
            if hits:
                args[name] = hits[0]
        elif name in ("table", "paths_table"):
            hits = mentions(text, vocab.get("user_table", []))
            if hits and (name == "table" or "path" in low):
                args[name] = hits[0]
        elif name in ("segment", "segment_name"):
            hits = mentions(text, vocab.get("segment", []))
            if hits:
                args[name] = hits[0]
        elif name in ("audience",):
            hits = mentions(text, vocab.get("audience", []))
            if hits:
                args[name] = hits[0]
        elif name == "name" and (q := quoted_name(text)) or name in QUOTED_TEXT and kind == "string" and (q := quoted_text(text)):
            args[name] = q
        elif name in FREE_TEXT and kind == "string" and (name in required or name == "goal"):
            args[name] = text.strip()[:300]
        elif name == "sql" and kind == "string":
            from agent.planners.extract.sql import compose_sql

            if sql := compose_sql(text):
                args[name] = sql
        elif kind == "date-time" and (when := parse_when(text, today)):
            args[name] = when.isoformat()
        elif kind == "object" and "channel" in " ".join(vocab) and "budget" in name:
            if budgets := channel_amounts(text, vocab.get("channel", [])):
                args[name] = budgets
        elif kind in ("integer", "number"):
            value = _number_for(name, words, kind, prop, text, low, pcts)
            if value is not None:
                args[name] = value
        elif kind == "string" and name in ("offer",):
            if m := re.search(r"(\d+\s?% off|free shipping|free delivery|buy one get one|bogo|\d+\s?off)", low):
                args[name] = m.group(1)
    return args


def channel_amounts(text: str, channels) -> dict[str, float]:
    """'search to 9000 and social to 2k a day' → {'search': 9000.0, 'social': 2000.0}."""
    out = {}
    low = text.lower().replace(",", "")
    amount = r"[$€£]?\s?(\d+(?:\.\d+)?)\s?(k|m)?\b"
    for ch in channels:
        c = re.escape(ch)
        m = (re.search(rf"\b{c}(?:'s)?(?:\s+(?:daily|weekly|budget|spend|spending|the))*\s+(?:to|at|of|=)\s+{amount}", low)
             or re.search(rf"{amount}(?:\s+(?:a|per)\s+day)?\s+(?:on|for|to)\s+{c}\b", low))
        if m:
            out[ch] = float(m.group(1)) * {"k": 1e3, "m": 1e6}.get(m.group(2) or "", 1)
    return out


def _number_for(name, words, kind, prop, text, low, pcts):
    maximum = prop.get("maximum") or next((a.get("maximum") for a in prop.get("anyOf", []) if "maximum" in a), None)
    for alias in ALIASES.get(name, ()):
        a = re.escape(alias)
        m = (re.search(rf"(\d+(?:[.,]\d+)?)\s?(%|k|m)?\s+(?:\w+\s+){{0,2}}?{a}\b", low)
             or re.search(rf"\b{a}\s+(?:of\s+|is\s+|at\s+)?(\d+(?:[.,]\d+)?)\s?(%|k|m)?", low))
        if m:
            v = float(m.group(1).replace(",", ""))
            v = v / 100 if m.group(2) == "%" else v * {"k": 1e3, "m": 1e6}.get(m.group(2) or "", 1)
            return int(v) if kind == "integer" else v
    if m := re.search(rf"\b{re.escape(words)}\s*(?:of|=|:|is|at)?\s*\$?(\d+(?:[.,]\d+)?)\s?(%|k|m)?", low):
        v = float(m.group(1).replace(",", ""))
        v = v / 100 if m.group(2) == "%" and (maximum or 2) <= 1 else v * {"k": 1e3, "m": 1e6}.get(m.group(2), 1)
        return int(v) if kind == "integer" else v
    if any(k in name for k in ("budget", "total", "amount", "spend")):
        v = money(text)
        return None if v is None else (int(v) if kind == "integer" else v)
    keys = [k for k in name.split("_") if k not in ("pct", "percent", "share", "fraction")] or [name]
    if any(k in name for k in ("pct", "share", "percent", "fraction", "holdout", "shift")) and pcts:
        for k in keys:  # the percentage must be said about this field ("10% holdout", "holdout of 10%")
            if m := (re.search(rf"(\d+(?:\.\d+)?)\s?%\s+(?:\w+\s+){{0,2}}?{k}", low)
                     or re.search(rf"{k}\w*\s+(?:of\s+|at\s+)?(\d+(?:\.\d+)?)\s?%", low)):
                v = float(m.group(1)) / 100
                return v if (maximum or 2) <= 1 else v * 100
    nouns = {"k": ("segments", "clusters", "groups", "personas"),
             "n": ("variants", "options", "ideas", "versions", "subject lines", "headlines", "customers", "leads",
                   "results", "passages", "rows", "notifications", "messages", "texts", "posts", "ads", "lines",
                   "pushes", "emails", "sms"),
             "top_n": ("customers", "leads", "at-risk", "accounts", "rows"),
             "limit": ("rows", "customers", "campaigns", "results")}.get(name)
    if nouns and kind == "integer":
        return count_for(text, nouns)
    return None
