"""Figures in prose and in tool results: value, unit, the precision they were written at, and whose they are.

`figures_in(answer)` reads what a writer claims ("about $390K", "5.8 percent", "75 cents", "a quarter of",
"twice", "1.14 pp"), with a tolerance of half a unit of the last significant digit (at least 2 significant
figures: "10,000" reads as 9,500–10,500). Dates, years, list numbering and small counts of things are
structure, not claims, when the evidence's dates allow them. `number_sources(result)` reads what a tool
returned: every number in values and in its text, with the entities (channel, campaign, segment, arm …) of the
row, key or clause it sits in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date

ENTITY_KEYS = {"channel", "campaign", "campaign_id", "segment", "segment_name", "segment_id", "arm", "variant",
               "experiment_id", "audience", "audience_name", "aspect"}
CASED = {"new", "lost", "loyal", "promising", "control", "other", "high", "medium", "low", "all", "total", "none",
         "customers", "buyers", "shoppers", "people", "users", "members"}  # names that are also plain words
MONTHS = {m: i + 1 for i, names in enumerate((
    "jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
    "sep sept september", "oct october", "nov november", "dec december")) for m in names.split()}
MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2})?)?\b")
DAY_MONTH = re.compile(rf"\b(?:(\d{{1,2}})(?:st|nd|rd|th)?(?:\s*[–-]\s*(\d{{1,2}})(?:st|nd|rd|th)?)?\s+({MONTH})"
                       rf"|({MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:\s*[–-]\s*(\d{{1,2}})(?:st|nd|rd|th)?)?(?!\d))"
                       rf"(?:,?\s+(\d{{4}}))?\b", re.I)
MONTH_YEAR = re.compile(rf"\b({MONTH})\s+(?:of\s+)?(\d{{4}})\b", re.I)
TIME = re.compile(r"\b\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?)?\b|\b\d{1,2}\s?[ap]\.?m\.?\b", re.I)
IDS = re.compile(r"\b[A-Za-z]+[-_][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\b|\b[a-z]+_[0-9a-f]{6,}\b|\b[A-Z]{1,2}\d\b")
NUMBER = re.compile(
    r"(?<![\w.,/])(?P<cur>[$€£¥])?(?P<sign>[-+−±~≈])?\s?(?P<cur2>[$€£¥])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![\d.]*\d)"
    r"(?P<ord>st|nd|rd|th)?"
    r"(?:\s?(?P<unit>%|percent(?:age points?)?\b|per\s?cent\b|pp\b|pts?\b|points?\b|bps\b|basis points\b|"
    r"k\b|K\b|thousand\b|mn\b|m\b|M\b|million\b|bn\b|B\b|billion\b|x\b|×|cents?\b|¢))?")
SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "bn": 1e9, "b": 1e9, "billion": 1e9,
         "cent": 0.01, "cents": 0.01, "¢": 0.01}
PERCENT_UNITS = ("%", "percent", "per", "pp", "pt", "point", "bps", "basis")
COUNTED = re.compile(r"^\s*(?:[\w-]+\s+)?(channels?|campaigns?|segments?|arms?|experiments?|variants?|options?|"
                     r"steps?|ideas?|tips?|actions?|recommendations?|audiences?|tools?|things|ways|reasons|groups?|"
                     r"clusters?|personas?|models?|drivers?|weeks?|days?|months?|years?|quarters?|hours?|"
                     r"questions?|areas?|aspects?|spikes?|times?|subject lines?|lines?|markets?|regions?|tests?)\b",
                     re.I)
RANKED = re.compile(r"(?:\b(?:top|first|last|bottom|next|best|worst|number|no\.|rank(?:ed)?|step|tier|level|"
                    r"phase|option|wave|round|day|week|month|quarter)|#)\s*$", re.I)
ABOVE = re.compile(r"\b(over|more than|above|exceed(?:ing|s)?|at least|upwards of|north of|beyond)\s*$", re.I)
BELOW = re.compile(r"\b(under|less than|below|nearly|almost|just under|up to|shy of|close to|fewer than)\s*$",
                   re.I)
WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40,
                "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100}
FRACTIONS = {"half": 0.5, "a third": 1 / 3, "one third": 1 / 3, "two thirds": 2 / 3, "two-thirds": 2 / 3,
             "a quarter": 0.25, "one quarter": 0.25, "three quarters": 0.75, "three-quarters": 0.75,
             "a fifth": 0.2, "one fifth": 0.2, "a tenth": 0.1, "one tenth": 0.1, "one in two": 0.5,
             "one in three": 1 / 3, "one in four": 0.25, "one in five": 0.2, "one in ten": 0.1}
FRACTION = re.compile(r"(?<!first )(?<!second )(?<!last )(?<!the first )\b(" + "|".join(
    sorted(map(re.escape, FRACTIONS), key=len, reverse=True)) + r")(?=\s+(?:of|the|its|their|our|as|that)\b)",
    re.I)
RATIO = re.compile(r"\b(twice|doubled?|tripled?|triple|quadrupled?|(?P<n>\d+(?:\.\d+)?|"
                   + "|".join(WORD_NUMBERS) + r")\s*(?:times|x)\s+(?:as|more|higher|larger|bigger|the|that|what))\b",
                   re.I)
RATIOS = {"twice": 2, "double": 2, "doubled": 2, "triple": 3, "tripled": 3, "quadruple": 4, "quadrupled": 4}
WORD_PERCENT = re.compile(r"\b(" + "|".join(WORD_NUMBERS) + r")\s+(?:percent|per cent|percentage points?)\b", re.I)


@dataclass(frozen=True)
class Source:
    """A number in the evidence."""

    value: float
    tol: float = 0.0
    """Half a unit of the last digit it was written with (0 for values in data)."""
    percent: bool = False
    integer: bool = False
    entities: frozenset[str] = frozenset()
    turn: int = 0
    key: str | None = None
    """The field it was the value of (`roas`), when it came from data."""
    prose: bool = False
    """Written in a result's text: a percentage there carries its % sign."""


@dataclass
class Figure:
    """A figure an answer states, and the readings of it that a source may match."""

    text: str
    start: int
    end: int
    readings: list[tuple[float, float, bool]] = field(default_factory=list)
    """(value, tolerance, is a percentage)."""
    structural: bool = False
    ratio: bool = False

    def matches(self, s: Source) -> bool:
        a = abs(s.value)
        for value, tol, percent in self.readings:
            if percent and not s.percent:
                if not s.prose and abs(a * 100 - value) <= max(tol, s.tol * 100) + 1e-9:  # 5.8 % and -0.0578
                    return True
                if s.integer or s.prose:  # "3 %" is not the count 3, nor "+0.0588" written in prose
                    continue
            if abs(a - value) <= max(tol, s.tol) + 1e-9 * max(1.0, a):
                return True
        return False


def norm(label: str) -> str:
    text = re.sub(r"[’']s$", "", str(label).strip().lower())
    return re.sub(r"[\s_-]+", " ", text)


class Entities:
    """The entity names of the evidence, found in text (plural and possessive forms too)."""

    def __init__(self, labels):
        keyed = {norm(x): x for x in labels if isinstance(x, str) and 1 < len(x.strip()) <= 60}
        self.known = set(keyed)
        alternatives = []
        for key, label in sorted(keyed.items(), key=lambda kv: -len(kv[0])):
            body = r"[\s_-]+".join(map(re.escape, re.split(r"[\s_-]+", label.strip())))
            if key not in CASED:
                body = f"(?i:{body})"
            elif label[:1].islower():  # "control" may start a sentence; "New" and "Lost" stay names
                body = f"[{label[0]}{label[0].upper()}]{body[1:]}"
            alternatives.append(body)
        self.pattern = re.compile(r"(?<![\w-])(?P<e>(?:" + "|".join(alternatives) + r"))(?:['’]s|s)?(?![\w-])"
                                  ) if alternatives else None

    def finditer(self, text: str):
        return self.pattern.finditer(text) if self.pattern else iter(())

    def fullmatch(self, value: str) -> bool:
        return norm(value) in self.known


def entity_pattern(labels) -> Entities | None:
    found = Entities(labels)
    return found if found.pattern else None


def _sig(num: str) -> tuple[int, int]:
    """(significant digits, exponent of the leading digit) of a written number: '104,000' → (3, 5)."""
    digits = num.replace(",", "")
    whole, _, frac = digits.partition(".")
    if frac:
        sig = len((whole + frac).lstrip("0")) or 1
    else:
        sig = len(whole.lstrip("0").rstrip("0")) or 1
    value = float(digits) if digits not in ("", ".") else 0.0
    return sig, (math.floor(math.log10(value)) if value else 0)


def _tolerance(num: str, at_least: int) -> float:
    sig, exp = _sig(num)
    return 0.5 * 10 ** (exp - max(sig, at_least) + 1)


def blank(text: str, pattern: re.Pattern) -> str:
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def figures_in(text: str, date_ok) -> list[Figure]:
    """Every figure a sentence states, in order; dates and structure come out marked `structural` (accepted)
    or as figures no source will match (a date outside the evidence)."""
    out: list[Figure] = []
    for m in ISO.finditer(text):
        when = _date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        out.append(Figure(m.group(0), m.start(), m.end(), structural=bool(when and date_ok(when))))
    text = blank(text, ISO)
    for m in list(DAY_MONTH.finditer(text)) + list(MONTH_YEAR.finditer(text)):
        out.append(Figure(m.group(0), m.start(), m.end(), structural=_month_phrase_ok(m, date_ok)))
    text = blank(blank(blank(blank(text, DAY_MONTH), MONTH_YEAR), TIME), IDS)
    for pattern, make in ((FRACTION, _fraction), (RATIO, _ratio), (WORD_PERCENT, _word_percent)):
        for m in pattern.finditer(text):
            out.append(make(m))
        text = blank(text, pattern)
    for m in NUMBER.finditer(text):
        out.append(_figure(m, text, date_ok))
    return sorted(out, key=lambda f: f.start)


def _figure(m: re.Match, text: str, date_ok) -> Figure:
    num, unit = m.group("num"), (m.group("unit") or "").lower()
    fig = Figure(m.group(0).strip(), m.start("num"), m.end())
    written = float(num.replace(",", ""))
    before, after = text[max(0, m.start() - 24):m.start()], text[m.end():m.end() + 40]
    if m.group("ord"):
        fig.structural = True
        return fig
    plain = not unit and not m.group("cur") and not m.group("cur2") and "." not in num and "," not in num
    if plain and len(num) == 4 and 1900 <= written <= 2100:  # a year
        fig.structural = date_ok(int(written))
        if fig.structural:
            return fig
    if plain and written <= 12 and (COUNTED.match(after) or RANKED.search(before)):
        fig.structural = True  # "3 channels", "top 5", "step 2", "the last 7 days"
        return fig
    scale = SCALE.get(unit.rstrip(".") if unit else "", 1.0)
    percent = unit.startswith(PERCENT_UNITS)
    if unit in ("bps", "basis points"):
        scale = 0.01
    value, tol = written * scale, _tolerance(num, 2) * scale
    fig.readings.append((value, tol, percent))
    if ABOVE.search(before):
        fig.readings.append((value * 1.075, value * 0.075, percent))  # "over 4,000": 4,000–4,600
    elif BELOW.search(before):
        fig.readings.append((value * 0.95, value * 0.05, percent))    # "nearly 10,000": 9,000–10,000
    if unit in ("x", "×"):
        fig.ratio = True
    return fig


def _fraction(m: re.Match) -> Figure:
    share = FRACTIONS[m.group(1).lower()]
    return Figure(m.group(0), m.start(), m.end(), [(share * 100, share * 10, True)], ratio=True)


def _ratio(m: re.Match) -> Figure:
    word = m.group(1).lower().split()[0]
    n = m.group("n")
    times = RATIOS.get(word) or (float(n) if n and n[0].isdigit() else WORD_NUMBERS.get((n or "").lower(), 0))
    return Figure(m.group(0), m.start(), m.end(), [(times, times * 0.1, False), ((times - 1) * 100,
                                                                                  (times - 1) * 10, True)],
                  ratio=True)


def _word_percent(m: re.Match) -> Figure:
    n = WORD_NUMBERS[m.group(1).lower()]
    return Figure(m.group(0), m.start(), m.end(), [(float(n), 0.5, True)])


def _date(y: int, mo: int, d: int) -> date | None:
    try:
        return date(y, mo, d)
    except ValueError:
        return None


def _month_phrase_ok(m: re.Match, date_ok) -> bool:
    groups = [g for g in m.groups()]
    month_name = next((g for g in groups if g and g.rstrip(".").lower() in MONTHS), None)
    month = MONTHS[month_name.rstrip(".").lower()] if month_name else 1
    year = next((int(g) for g in groups if g and g.isdigit() and len(g) == 4), None)
    days = [int(g) for g in groups if g and g.isdigit() and len(g) <= 2]
    if any(not 1 <= d <= 31 for d in days):
        return False
    if year is None:
        return True  # "September 1–30": the month is said; its year is the evidence's
    return date_ok(year) and all(_date(year, month, d) is None or date_ok(_date(year, month, d))
                                 for d in (days or [1]))


def dates_in(obj, out: list[date] | None = None) -> list[date]:
    """Every ISO date in a result, a question or arguments (and 'August 2026' in text)."""
    out = [] if out is None else out
    if isinstance(obj, str):
        for m in ISO.finditer(obj):
            if d := _date(int(m.group(1)), int(m.group(2)), int(m.group(3))):
                out.append(d)
        for m in MONTH_YEAR.finditer(obj):
            out.append(date(int(m.group(2)), MONTHS[m.group(1).rstrip(".").lower()], 1))
    elif isinstance(obj, dict):
        for v in obj.values():
            dates_in(v, out)
    elif isinstance(obj, list | tuple):
        for v in obj:
            dates_in(v, out)
    return out


def number_sources(obj, entities: Entities | None, turn: int, inherited: frozenset = frozenset(),
                   out: list[Source] | None = None, key: str | None = None) -> list[Source]:
    """Every number in a result: values (with the entities of their row and keys) and numbers in its text."""
    out = [] if out is None else out
    if isinstance(obj, bool) or obj is None:
        return out
    if isinstance(obj, int | float):
        if math.isfinite(obj):
            out.append(Source(float(obj), 0.0, False, float(obj).is_integer(), inherited, turn, key))
    elif isinstance(obj, str):
        _text_sources(obj, entities, turn, inherited, out)
    elif isinstance(obj, dict):
        own = frozenset(norm(v) for k, v in obj.items() if k in ENTITY_KEYS and isinstance(v, str))
        for name, value in obj.items():
            keyed = frozenset({norm(name)}) if entities and entities.fullmatch(name) else frozenset()
            number_sources(value, entities, turn, inherited | own | keyed, out, key if keyed else key_of(name))
    elif isinstance(obj, list | tuple):
        for value in obj:
            number_sources(value, entities, turn, inherited, out, key)
    return out


def key_of(key) -> str | None:
    return str(key).lower() if isinstance(key, str) else None


def _text_sources(text: str, entities: Entities | None, turn: int, inherited: frozenset, out: list) -> None:
    """Numbers in a result's text, each with the nearest entity named before it in its sentence or clause."""
    clean = blank(blank(blank(text, ISO), TIME), IDS)
    for fragment in re.finditer(r"[^;.!?]+(?:\.\d[^;.!?]*)*", clean):
        piece = fragment.group(0)
        found = [(m.end(), norm(m.group("e"))) for m in entities.finditer(piece)] if entities else []
        for m in NUMBER.finditer(piece):
            num, unit = m.group("num"), (m.group("unit") or "").lower()
            scale = SCALE.get(unit, 1.0) if unit not in ("bps", "basis points") else 0.01
            near = [e for end, e in found if end <= m.start()]
            mine = frozenset(near[-1:]) or inherited
            value = float(num.replace(",", "")) * scale
            decimals = len(num.partition(".")[2])
            out.append(Source(value, 0.5 * 10 ** -decimals * scale, unit.startswith(PERCENT_UNITS),
                              value.is_integer(), mine, turn, prose=True))
