"""Numbers in a question: money ("200k", "$1.5M"), percentages, counts ("top 20", "5 variants", "a three-arm test"),
per-channel amounts ("search to 9000"), and the numbers the numeric fields of a tool ask for.

`numbers_for_fields` links each number said to the field whose name or synonym stands next to it ("a 10% lift on
a 4% conversion rate": 10 % → relative_mde, 4 % → baseline), nearest first, each number to one field; what no
phrase claims may still be money for an amount field, a share, a duration for a `…_days` field, or a count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.planners.extract import rx

UNITS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "mn": 1e6}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "fifty": 50, "hundred": 100}
ALIASES = {  # how marketers name common parameters (field name → phrases that introduce its value)
    "baseline": ("conversion rate", "baseline", "base rate", "current rate", "open rate", "click rate",
                 "converts at", "converting at", "convert at", "opens at", "clicks at", "rate", "sign up", "signs up",
                 "register", "convert", "buy", "purchase", "subscribe", "join", "order", "book"),  # "fill rate is around 3%", "8% of them sign up"
    "relative_mde": ("lift", "uplift", "improvement", "increase"),
    "mde": ("lift", "uplift", "improvement", "increase", "difference", "change", "effect"),
    "sample_size_per_arm": ("users per group", "users per arm", "per arm", "per group", "per variant"),
    "daily_traffic": ("per day", "daily"),
    "total_budget": ("budget", "to spend", "spend"),
    "window_days": ("conversion window", "window", "attribution window", "measurement window", "count orders for",
                    "measure for", "measure over"),
    "rating_neutral": ("neutral", "is neutral", "counts as neutral"),
    "min_probability": ("probability", "p(churn)", "churn score"),
    "holdout_pct": ("holdout", "hold out", "held out", "hold back", "held back", "holdback", "control group",
                    "control"),
}
AMOUNT_WORDS = ("budget", "total", "amount", "spend")  # a field naming one of these holds money
SHARE_WORDS = ("pct", "share", "percent", "fraction", "holdout", "shift")  # … or a share said as a percentage
COUNT_NOUNS = {  # count fields → the things they count
    "k": ("segments", "clusters", "groups", "personas"),
    "n": ("variants", "options", "ideas", "versions", "subject lines", "headlines", "customers", "leads",
          "results", "passages", "rows", "notifications", "messages", "texts", "posts", "ads", "lines",
          "pushes", "emails", "sms", "captions", "hooks", "taglines", "titles"),
    "top_n": ("customers", "leads", "at-risk", "accounts", "rows", "members", "people", "buyers"),
    "limit": ("rows", "customers", "campaigns", "results", "leads", "accounts", "buyers", "people"),
    "arms": ("arms", "arm", "variants", "groups", "way", "cells", "cell"),
}
DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
NUMBER = re.compile(r"(?<![\w.])[$€£]?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\.\d+)(?![\w.]*\d)\s?"
                    r"(%|percent\b|per cent\b|pp\b|percentage points?\b|k\b|thousand\b|mn\b|m\b|million\b|"
                    r"-?(?:day|week|month|year)s?\b)?", re.I)  # "a 2-year horizon" as "2 years"
MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b")  # whole month names only: "2 Markov" is no 2 March
COUNTED = (r"\s+(?:(?:unique|daily|new|more|extra)\s+)?(?:visitors|users|customers|people|sessions|participants|"
           r"members|recipients|clicks|leads|orders|conversions|emails|messages|texts|impressions|per\b|a day|"
           r"each\b|every\b)")  # "2000 visitors a day" is a count, not the year 2000
NOT_A_FIELD_NUMBER = re.compile(  # dates, periods, times and ids: numbers that are structure, not values
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\bq[1-4]\b|\b(?:19|20)\d\d\b(?!{COUNTED})|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}|\b{MONTH}"
    r"\.?\s+\d{1,2}(?:st|nd|rd|th)?\b|\b(?:last|past|previous|next|coming|following)\s+\d+\s+(?:day|week|month|year)s?\b"
    r"|\b\d{1,2}(?:[:.]\d{2})?\s*[ap]\.?m\b|(?<!cost )(?<!budget )(?<!spend )(?<!cap )(?<!capped )"
    r"\bat\s+(?:[01]?\d|2[0-3])(?::\d{2})?\b(?!\s*(?:%|percent|pp\b|k\b|\.\d)|,\d{3})"  # "at 9": a time; "cost at 50" no
    r"|\b\d{1,2}:\d{2}\b|\b[a-z]+(?:-\d+)+\b"
    r"|\d+(?:\.\d+)?\s?(?:%|percent|per cent)\s+(?:off|discount(?!\s+rate))\b",  # an offer ("15% off"), no value
    re.I)
BOUND = {"max": r"(?:more than|at most|no more than|not more than|up to|cap(?:ped)? (?:at|to)|limit(?:ed)? to|"
                r"maximum(?: of)?|max(?:imum)?(?: of)?|within)",
         "min": r"(?:at least|no less than|not less than|minimum(?: of)?|min(?:imum)?(?: of)?)"}
BEFORE_GAP = re.compile(r"^[\s()]*(?:[\w/'-]+[\s()]+){0,3}$")   # "10% relative lift", "730 day) horizon"
AFTER_GAP = re.compile(r"^(?:\s*(?:of|is|at|>=|≥|>|=|:|to|around|about|roughly|~|be|was|were|by|meant|means|set to)){0,2}"
                       r"\s*(?:(?!(?:with|and|per|for|in|on)\b)[\w/'-]+\s+){0,2}?(?:at|of|by)?\s*$")
# "discounting future value at 8%", "conversion is ~4%"; never across "with"/"and" ("conversion with 3000 visitors")


def money(text: str) -> float | None:
    """The first amount said with a currency sign or a unit: '$1.5M' → 1500000.0, '200k' → 200000.0, '250000 $'."""
    hits = re.findall(r"([$€£])?\s?(\d+(?:\.\d+)?)\s?(k|m|thousand|million)?\b(?:\s?([$€£]|dollars\b|euros\b))?"
                      r"(?!\s?%|\s?(?:days?|weeks?|months?|customers?|variants?|segments?|leads?|pp))",
                      text.lower().replace(",", ""))
    for currency, number, unit, after in hits:
        if currency or unit or after:
            return float(number) * UNITS.get(unit, 1)
    return None


def percents(text: str) -> list[float]:
    """Every percentage in the text, as a fraction: '10%', '5 percent', '2pp'."""
    return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b|pp\b)", text.lower())]


def count_for(text: str, nouns: tuple[str, ...]) -> int | None:
    """How many of `nouns` the text asks for: '5 variants', 'top 20', 'top 2,000', 'three segments', 'a three-arm'."""
    t = re.sub(r"\b[a-z]+(?:-\d+)+\b", " ", text.lower())  # an id ("NA-2026-06") holds no count
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t).replace("-", " ")
    noun = "|".join(re.escape(n.replace("-", " ")) for n in nouns)
    if m := rx.search(rf"\b(\d+)\s+(?:[a-z]+\s+){{0,3}}(?:{noun})\b", t):  # "5 premium sounding email subject lines"
        return int(m.group(1))
    if m := re.search(r"\b(?:top|best|worst|first|highest|biggest|largest) (\d+)\b", t):
        return int(m.group(1))
    if m := rx.search(rf"\b({'|'.join(NUMBER_WORDS)})\s+(?:[a-z]+\s+){{0,2}}(?:{noun})\b", t):
        return NUMBER_WORDS[m.group(1)]
    return None


def channel_amounts(text: str, channels) -> dict[str, float]:
    """'search to 9000 and social to 2k a day' → {'search': 9000.0, 'social': 2000.0}."""
    out = {}
    low = text.lower().replace(",", "")
    amount = r"[$€£]?\s?(\d+(?:\.\d+)?)\s?(k|m)?\b(?!\s?%|\s?percent)"
    for channel in channels:
        name = re.escape(channel)
        m = (rx.search(rf"\b{name}(?:'s)?(?:\s+(?:daily|weekly|budget|spend|spending|the))*\s+(?:to|at|of|=)\s+{amount}",
                       low)
             or rx.search(rf"{amount}(?:\s+(?:a|per)\s+day)?\s+(?:on|for|to)\s+{name}\b", low))
        if m:
            out[channel] = float(m.group(1)) * UNITS.get(m.group(2) or "", 1)
    return out


@dataclass(frozen=True)
class Said:
    """A number in the text: its value (units applied, percentages as written), unit and place."""

    value: float
    unit: str  # "%", "pp", "days", "" (k and million already applied)
    start: int
    end: int


def numbers_said(text: str) -> list[Said]:
    """Numbers a field may take: dates, periods, times and ids are left out."""
    low = text.lower()
    masked = NOT_A_FIELD_NUMBER.sub(lambda m: " " * len(m.group(0)), low)
    found = []
    for m in NUMBER.finditer(masked):
        value, unit = float(m.group(1).replace(",", "")), (m.group(2) or "").lower()
        if unit in ("%", "percent", "per cent"):
            unit = "%"
        elif unit.startswith("percentage point") or unit == "pp":
            unit = "pp"
        elif unit.lstrip("-").rstrip("s") in DAYS:
            per = unit.lstrip("-").rstrip("s")
            value, unit = (value / 12 * DAYS["year"] if per == "month" and value % 12 == 0
                           else value * DAYS[per]), "days"  # "the next 12 months" is a year: 365 days
        elif unit:
            value, unit = value * UNITS[unit], ""
        found.append(Said(value, unit, m.start(), m.end()))
    for m in rx.finditer(rf"\b({'|'.join(NUMBER_WORDS)})[- ](day|week|month|year)s?\b", masked):
        found.append(Said(NUMBER_WORDS[m.group(1)] * DAYS[m.group(2)], "days", m.start(), m.end()))
    for m in rx.finditer(rf"\b(\d+(?:\.\d+)?|{'|'.join(NUMBER_WORDS)}|half a|(?:a|one) (?:full|whole|single)|a)"
                         rf"[- ](?:(?<=a )percentage points?\b|(?<!a )(?:percentage[- ])?points?\b)", masked):
        word = m.group(1)  # "a one point lift", "a 2-point drop", "a full percentage point": percentage points
        value = 0.5 if word == "half a" else 1.0 if word.startswith(("a", "one ")) else float(
            NUMBER_WORDS.get(word, word) if word in NUMBER_WORDS else word)
        found = [f for f in found if not (m.start() <= f.start < m.end())] + [Said(value, "pp", m.start(), m.end())]
    return sorted(found, key=lambda s: s.start)


def _maximum(prop: dict) -> float | None:
    return prop.get("maximum") or next((a.get("maximum") for a in prop.get("anyOf", []) if "maximum" in a), None)


def fractional(prop: dict) -> bool:
    """Whether a numeric field holds a share as a fraction (0.1) rather than a percentage (10)."""
    default = prop.get("default")
    if isinstance(default, int | float) and not isinstance(default, bool) and default:
        return 0 < default <= 1
    maximum = _maximum(prop)
    return maximum is None or maximum <= 1


def _value(said: Said, name: str, kind: str, prop: dict, absolute_too: bool = False) -> float | None:
    """The value a field takes from a number said, or None when the unit does not fit the field (a `relative_…`
    field takes no percentage points; its absolute sibling, when both exist, no percentage)."""
    if (name.startswith("relative_") and said.unit == "pp") or (absolute_too and said.unit == "%"):
        return None
    if (said.unit == "days" and not name.endswith("_days")) or (name.endswith("_days") and said.unit in ("%", "pp")):
        return None  # a duration only for a `…_days` field, which takes no percentage
    if said.unit in ("%", "pp"):
        return said.value / 100 if fractional(prop) or said.unit == "pp" else said.value
    if fractional(prop) and kind == "number" and 1 < said.value <= 100 and _maximum(prop) is not None:
        return said.value / 100  # "power 90" on a field of at most 1
    top = _maximum(prop) or prop.get("exclusiveMaximum") or next(
        (a.get("exclusiveMaximum") for a in prop.get("anyOf", []) if "exclusiveMaximum" in a), None)
    if top is not None and said.value > top:
        return None  # "hot leads from 1000+ companies" is no threshold: the number may belong to another field
    return said.value


GENERIC_HEADS = {"max", "min", "total", "daily", "relative", "sample", "hot", "warm", "cold", "top", "lookback",
                 "horizon", "send", "start", "end", "as", "effective", "enterprise", "holdout", "per", "n", "k"}


def _phrases(name: str, synonyms: tuple[str, ...]) -> list[str]:
    """The field's name, its head word when distinctive ("discount" for discount_rate), aliases and synonyms."""
    words = name.replace("_", " ")
    own = [words] + ([words.removesuffix(" days")] if words.endswith(" days") else [])
    head = words.split()[0]
    if " " in words and head not in GENERIC_HEADS and len(head) >= 5:
        own.append(head)
    return sorted({p.lower() for p in (*own, *ALIASES.get(name, ()), *synonyms)}, key=len, reverse=True)


def _normalised(text: str) -> str:
    """'in each arm', 'for each group', 'a day' read like 'per arm', 'per group', 'per day'."""
    t = text.lower()
    t = re.sub(r"\b(?:in|for) each\b", "per", t)
    t = re.sub(r"\b(?:each|every)(?= (?:arm|group|variant|day|week|user|visitor|cell)\b)", "per", t)
    return re.sub(r"\ban? (?=(?:day|week|month)\b)", "per ", t)


def _pattern(phrase: str) -> str:
    """A phrase as a pattern: whole words, each with an optional ending (-s, -ed, -ing), a hyphen or a space between
    words ('hold back' reads 'holding back')."""
    ending = r"(?:s|es|ed|d|ing)?"
    return r"(?<![\w])" + (ending + r"[\s-]+").join(map(re.escape, phrase.split())) + ending + r"(?![\w])"


def _links(low: str, said: list[Said], phrases: list[str]) -> list[tuple[int, Said]]:
    """(distance in words, number) for each number said right before or after one of the field's phrases."""
    out = []
    for phrase in phrases:
        for m in rx.finditer(_pattern(phrase), low):
            for number in said:
                if number.end <= m.start() and BEFORE_GAP.match(low[number.end:m.start()]):
                    out.append((len(low[number.end:m.start()].split()), number))
                elif number.start >= m.end() and AFTER_GAP.match(low[m.end():number.start]):
                    out.append((len(low[m.end():number.start].split()), number))
    return out


def numbers_for_fields(text: str, fields: dict[str, tuple[str, dict]],
                       synonyms: dict[str, tuple[str, ...]] | None = None) -> dict[str, float]:
    """{field: number} for the numeric fields (name → (kind, schema property)) a number is said next to."""
    low = _normalised(text)
    said = [n for n in numbers_said(low) if not _owned_elsewhere(low, n, fields)]
    links = []
    for order, (name, (kind, prop)) in enumerate(fields.items()):
        for distance, number in _links(low, said, _phrases(name, (synonyms or {}).get(name, ()))):
            if (value := _value(number, name, kind, prop, f"relative_{name}" in fields)) is not None:
                links.append((distance, order, name, number, value))
    out: dict[str, float] = {}
    used: set[int] = set()
    for _, _, name, number, value in sorted(links, key=lambda link: (link[0], link[1])):  # nearest first
        if name not in out and number.start not in used:
            out[name] = int(value) if fields[name][0] == "integer" else value
            used.add(number.start)
    points = [n for n in said if n.unit == "pp" and n.start not in used]
    effect = [name for name in fields if (f"relative_{name}" in fields or "lift" in name.split("_"))
              and not name.startswith("relative_") and name not in out]
    if len(points) == 1 and len(effect) == 1 and f"relative_{effect[0]}" not in out:
        out[effect[0]] = points[0].value / 100  # percentage points only measure an absolute difference ("spot +2pp")
    return out


def _owned_elsewhere(low: str, number: Said, fields: dict) -> bool:
    """A number said right before another parameter's name ("10% holdout", "a 5% lift") belongs to that parameter,
    even for a tool that does not take it (a churn run drafted before a launch takes no "10%" as its threshold)."""
    after = low[number.end:number.end + 30]
    return any(rx.match(r"\s*" + _pattern(phrase) + r"(?!\s+rates?\b)", after) for name in OWNING
               if name not in fields for phrase in ALIASES[name])  # ("a 4% control rate" is a rate: the baseline's)


OWNING = ("holdout_pct",)
"""Parameters whose name, said right after a number, claims it whatever tool reads the text (a generic word such
as "probability" or "chance" does not: "a 60% chance of closing" is a lead threshold)."""


NO_HOLDOUT = re.compile(r"\b(?:no|without(?: a| any)?|zero|skip the)\s+(?:holdout|hold[- ]?out|control(?: group)?|"
                        r"hold[- ]?back)\b")


def _share_for(name: str, low: str, maximum: float | None) -> float | None:
    """A percentage said about a share field ('10% holdout', 'holdout of 10%'): a fraction if the field's
    maximum is at most 1, else in percent; 'no holdout' is 0 for a holdout field."""
    if "holdout" in name and NO_HOLDOUT.search(low):
        return 0.0
    if not any(word in name for word in SHARE_WORDS) or not percents(low):
        return None
    keys = [key for key in name.split("_") if key not in ("pct", "percent", "share", "fraction")] or [name]
    for key in keys:
        if m := (rx.search(rf"(\d+(?:\.\d+)?)\s?%\s+(?:\w+\s+){{0,2}}?{key}", low)
                 or rx.search(rf"{key}\w*\s+(?:of\s+|at\s+)?(\d+(?:\.\d+)?)\s?%", low)):
            share = float(m.group(1)) / 100
            return share if (maximum or 2) <= 1 else share * 100
    unpriced = percents(rx.sub(OFFER_SAID + r"|(?<!\w)[\"“'‘][^\"”’]{2,300}?[\"”'’](?!\w)", " ", low))  # (not in quotes)
    if "holdout" in name and HELD_ASIDE.search(low) and len(unpriced) == 1:  # "keep some people aside to
        return unpriced[0] if (maximum or 2) <= 1 else unpriced[0] * 100  # measure it, so maybe 5 percent"
    return None


HELD_ASIDE = re.compile(r"\b(?:keep|kept|set|put|leave|hold|held)\s+(?:[\w%]+\s+){0,3}?(?:aside|apart|back|out)\b|"
                        r"\bcontrol group\b|\bnot (?:contact|message|send to)\b")
OFFER_SAID = r"\d+(?:\.\d+)?\s?(?:%|percent|per cent)\s+(?:off|discount)\b"


def _bound_for(name: str, kind: str, prop: dict, text: str) -> float | None:
    """A limit said for a `max_…` or `min_…` field: 'nothing should change by more than 10%', 'at least 500'."""
    side = name.split("_")[0]
    if side not in BOUND:
        return None
    low = text.lower()
    for m in rx.finditer(BOUND[side], low):
        said = numbers_said(low[m.end():m.end() + 24])
        if said and said[0].start <= 2 and (value := _value(said[0], name, kind, prop)) is not None:
            return value
    return None


def _duration_for(name: str, text: str) -> int | None:
    """A duration said ('over 180 days', 'a two-year horizon') for a `…_days` field, in days."""
    if not name.endswith("_days"):
        return None
    durations = [s for s in numbers_said(text) if s.unit == "days"]
    return int(durations[0].value) if durations else None


def number_for(name: str, kind: str, prop: dict, text: str, synonyms: tuple[str, ...] = (),
               primary_days: bool = True, claimed: dict | None = None) -> int | float | None:
    """The number the text gives the numeric field `name` (JSON `kind` integer or number, schema `prop`): said
    next to one of its names (`claimed`: what `numbers_for_fields` gave every field of the tool at once), else a
    bound, money for an amount field, a share, a duration, or a count of what it counts."""
    said = (claimed if claimed is not None else numbers_for_fields(text, {name: (kind, prop)}, {name: synonyms})
            ).get(name)
    if said is None:
        said = _bound_for(name, kind, prop, text)
    amount = any(word in name for word in AMOUNT_WORDS)
    if said is None and amount:
        said = money(text)
    if said is not None:
        return int(said) if kind == "integer" else said
    if amount:
        return None  # an amount field is never read as a share or a count
    if (share := _share_for(name, text.lower(), _maximum(prop))) is not None:
        return share
    if primary_days and (days := _duration_for(name, text)) is not None:
        return days
    nouns = COUNT_NOUNS.get(name, ()) + tuple(s for s in synonyms if s.isalpha())
    count = count_for(text, nouns) if nouns and kind == "integer" else None
    return None if count is not None and claimed and count in claimed.values() else count
