"""Numbers in a question: money ("200k", "$1.5M"), percentages, counts ("top 20", "5 variants"), per-channel
amounts ("search to 9000"), and `number_for`, which reads the number a numeric field of a tool asks for.
"""

from __future__ import annotations

import re

UNITS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "ten": 10}
ALIASES = {  # how marketers name common parameters (field name → phrases that introduce its value)
    "baseline": ("conversion rate", "baseline", "base rate", "current rate", "open rate", "click rate"),
    "relative_mde": ("lift", "uplift", "improvement", "increase"),
    "sample_size_per_arm": ("users per group", "users per arm", "per arm", "per group", "per variant"),
    "daily_traffic": ("a day", "per day", "daily", "each day"),
    "total_budget": ("budget", "to spend", "spend"),
}
AMOUNT_WORDS = ("budget", "total", "amount", "spend")  # a field naming one of these holds money
SHARE_WORDS = ("pct", "share", "percent", "fraction", "holdout", "shift")  # … or a share said as a percentage
COUNT_NOUNS = {  # count fields → the things they count
    "k": ("segments", "clusters", "groups", "personas"),
    "n": ("variants", "options", "ideas", "versions", "subject lines", "headlines", "customers", "leads",
          "results", "passages", "rows", "notifications", "messages", "texts", "posts", "ads", "lines",
          "pushes", "emails", "sms"),
    "top_n": ("customers", "leads", "at-risk", "accounts", "rows"),
    "limit": ("rows", "customers", "campaigns", "results"),
}


def money(text: str) -> float | None:
    """The first amount said with a currency sign or a unit: '$1.5M' → 1500000.0, '200k' → 200000.0."""
    hits = re.findall(r"([$€£])?\s?(\d+(?:\.\d+)?)\s?(k|m|thousand|million)?\b(?!\s?%|\s?(?:days?|weeks?|months?|"
                      r"customers?|variants?|segments?|leads?|pp))", text.lower().replace(",", ""))
    for currency, number, unit in hits:
        if currency or unit:
            return float(number) * UNITS.get(unit, 1)
    return None


def percents(text: str) -> list[float]:
    """Every percentage in the text, as a fraction: '10%', '5 percent', '2pp'."""
    return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b|pp\b)", text.lower())]


def count_for(text: str, nouns: tuple[str, ...]) -> int | None:
    """How many of `nouns` the text asks for: '5 variants', 'top 20', 'three segments'."""
    t = text.lower()
    noun = "|".join(nouns)
    if m := re.search(rf"\b(\d+)\s+(?:\w+\s+){{0,2}}(?:{noun})", t):
        return int(m.group(1))
    if m := re.search(r"\b(?:top|best|worst|first) (\d+)\b", t):
        return int(m.group(1))
    if m := re.search(rf"\b({'|'.join(NUMBER_WORDS)})\s+(?:\w+\s+)?(?:{noun})", t):
        return NUMBER_WORDS[m.group(1)]
    return None


def channel_amounts(text: str, channels) -> dict[str, float]:
    """'search to 9000 and social to 2k a day' → {'search': 9000.0, 'social': 2000.0}."""
    out = {}
    low = text.lower().replace(",", "")
    amount = r"[$€£]?\s?(\d+(?:\.\d+)?)\s?(k|m)?\b"
    for channel in channels:
        name = re.escape(channel)
        m = (re.search(rf"\b{name}(?:'s)?(?:\s+(?:daily|weekly|budget|spend|spending|the))*\s+(?:to|at|of|=)\s+{amount}",
                       low)
             or re.search(rf"{amount}(?:\s+(?:a|per)\s+day)?\s+(?:on|for|to)\s+{name}\b", low))
        if m:
            out[channel] = float(m.group(1)) * UNITS.get(m.group(2) or "", 1)
    return out


def _maximum(prop: dict) -> float | None:
    return prop.get("maximum") or next((a.get("maximum") for a in prop.get("anyOf", []) if "maximum" in a), None)


def _aliased_number(name: str, low: str) -> float | None:
    """A number said next to a phrase that names the field ('5% lift', 'budget of 200k')."""
    for alias in ALIASES.get(name, ()):
        phrase = re.escape(alias)
        m = (re.search(rf"(\d+(?:[.,]\d+)?)\s?(%|k|m)?\s+(?:\w+\s+){{0,2}}?{phrase}\b", low)
             or re.search(rf"\b{phrase}\s+(?:of\s+|is\s+|at\s+)?(\d+(?:[.,]\d+)?)\s?(%|k|m)?", low))
        if m:
            number = float(m.group(1).replace(",", ""))
            return number / 100 if m.group(2) == "%" else number * UNITS.get(m.group(2) or "", 1)
    return None


def _number_after_name(name: str, low: str, maximum: float | None) -> float | None:
    """A number said right after the field's own name ('alpha of 0.01', 'threshold 3')."""
    words = name.replace("_", " ")
    if m := re.search(rf"\b{re.escape(words)}\s*(?:of|=|:|is|at)?\s*\$?(\d+(?:[.,]\d+)?)\s?(%|k|m)?", low):
        number = float(m.group(1).replace(",", ""))
        if m.group(2) == "%" and (maximum or 2) <= 1:
            return number / 100
        return number * UNITS.get(m.group(2), 1)
    return None


def _share_for(name: str, low: str, maximum: float | None) -> float | None:
    """A percentage said about a share field ('10% holdout', 'holdout of 10%'): a fraction if the field's
    maximum is at most 1, else in percent."""
    if not any(word in name for word in SHARE_WORDS) or not percents(low):
        return None
    keys = [key for key in name.split("_") if key not in ("pct", "percent", "share", "fraction")] or [name]
    for key in keys:
        if m := (re.search(rf"(\d+(?:\.\d+)?)\s?%\s+(?:\w+\s+){{0,2}}?{key}", low)
                 or re.search(rf"{key}\w*\s+(?:of\s+|at\s+)?(\d+(?:\.\d+)?)\s?%", low)):
            share = float(m.group(1)) / 100
            return share if (maximum or 2) <= 1 else share * 100
    return None


def number_for(name: str, kind: str, prop: dict, text: str) -> int | float | None:
    """The number the text gives the numeric field `name` (JSON `kind` integer or number, schema `prop`): said
    after an alias or the field's name, else money for an amount field, a share, or a count of what it counts."""
    low = text.lower()
    maximum = _maximum(prop)
    said = _aliased_number(name, low)
    if said is None:
        said = _number_after_name(name, low, maximum)
    amount = any(word in name for word in AMOUNT_WORDS)
    if said is None and amount:
        said = money(text)
    if said is not None:
        return int(said) if kind == "integer" else said
    if amount:
        return None  # an amount field is never read as a share or a count
    if (share := _share_for(name, low, maximum)) is not None:
        return share
    nouns = COUNT_NOUNS.get(name)
    return count_for(text, nouns) if nouns and kind == "integer" else None
