"""`extract_args`: fill what a question says into the fields of a tool's JSON schema (no per-question rules).

Each field goes through `RULES` in order. The first rule that applies to the field fills it, or leaves it unset
when the text says nothing for it; a rule marked `falls_through` lets the later rules try instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from agent.planners.extract import rx
from agent.planners.extract.names import (
    NAME_CUE,
    best_name_match,
    enum_choices,
    listed_ids,
    mentions,
    named_mentions,
    quoted_name,
    quoted_text,
)
from agent.planners.extract.periods import parse_day, parse_period, parse_when
from agent.planners.extract.quantities import channel_amounts, number_for, numbers_for_fields
from agent.planners.intents import QUOTED

FREE_TEXT = ("query", "question", "q", "search", "topic", "goal")  # fields that take the question itself
QUOTED_TEXT = ("variant", "text", "content", "message", "subject", "subject_line", "copy")  # … a quoted passage
PERIOD_FIELDS = ("start", "end", "as_of", "since")  # dates read from a period said, never a day to come
OFFER = r"(\d+\s?% off|free shipping|free delivery|buy one get one|bogo|\d+\s?off)"


@dataclass(frozen=True)
class Field:
    """One property of a tool's JSON schema."""

    name: str
    kind: str  # "enum", "array", or the JSON format or type: "date", "date-time", "integer", "string", …
    enum: list  # the allowed values of an enum, or of an array's items
    prop: dict  # the schema property itself

    @classmethod
    def of(cls, name: str, prop: dict) -> Field:
        kind, enum = field_type(prop)
        return cls(name, kind, enum, prop)


@dataclass(frozen=True)
class Question:
    """The question and what is read from it once for every field."""

    text: str
    today: date
    vocab: dict[str, list[str]]  # names the warehouse knows, by kind ("channel", "segment", …)
    period: dict  # parse_period of the text
    fields: frozenset[str]  # every field of the schema
    required: frozenset[str]
    synonyms: dict[str, tuple[str, ...]]  # how the tool says people name its parameters and enum values
    numbers: dict[str, float]  # the numbers said next to the names of the numeric fields, each number once


@dataclass(frozen=True)
class Rule:
    """Which fields a rule fills (by name, kind, or a word in the name; empty: any) and how."""

    fill: Callable[[Field, Question], Any]  # the value, or None when the text gives none
    names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    name_has: str = ""
    falls_through: bool = False  # when it gives none, the later rules may still fill the field

    def applies(self, field: Field) -> bool:
        return ((not self.names or field.name in self.names) and (not self.kinds or field.kind in self.kinds)
                and self.name_has in field.name)


def field_type(prop: dict) -> tuple[str, list]:
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


def _first(values: list) -> Any:
    return values[0] if values else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _period_bound(field: Field, question: Question) -> str | None:
    return _iso(question.period.get(field.name))


def _since(field: Field, question: Question) -> str | None:
    return _iso(question.period.get("start"))


def _as_of(field: Field, question: Question) -> str | None:
    """The as-of date said, else the end of the period when the tool takes no start."""
    period = question.period
    if "as_of" in period or ("end" in period and "start" not in question.fields):
        return (period.get("as_of") or period["end"]).isoformat()
    return None


def _horizon(field: Field, question: Question) -> int | None:
    return question.period.get("horizon_days")


def _enum_value(field: Field, question: Question) -> Any:
    text = EFFORT.sub(" ", question.text) if "channel" in field.name else question.text  # "the launch push"
    return _first(enum_choices(text, field.enum, question.synonyms))


EFFORT = re.compile(r"\b(?:q[1-4]|holiday|christmas|black friday|year[- ]end|big|final|last|sales|seasonal|launch|product|brand|"
                    r"marketing|autumn|fall|spring|summer|winter)\s+push\b", re.I)  # "before the Q4 push": an effort


def _channels(field: Field, question: Question) -> list[str] | None:
    return mentions(EFFORT.sub(" ", question.text), question.vocab.get("channel", [])) or None


def first_mention_of(kind: str) -> Callable[[Field, Question], Any]:
    """A rule's fill: the first name of this kind (a key of the vocabulary) that the text mentions."""
    def fill(field: Field, question: Question) -> Any:
        text = EFFORT.sub(" ", question.text) if kind == "channel" else question.text  # "the launch push ran …"
        return _first(mentions(text, question.vocab.get(kind, [])))
    return fill


def _segment(field: Field, question: Question) -> str | None:
    """A segment the text names as a name (capitalised, quoted, or said to be a segment)."""
    return _first(named_mentions(question.text, question.vocab.get("segment", [])))


def _experiment(field: Field, question: Question) -> str | None:
    """An experiment by id, else by the name sharing most words with the text."""
    vocab = question.vocab
    ids = vocab.get("experiment_id", [])
    tails = {re.sub(r"^[A-Za-z]+[-_]", "", i): i for i in ids if re.match(r"^[A-Za-z]+[-_]\w{4,}", i)}
    return _first(mentions(question.text, ids)
                  or [tails[t] for t in mentions(question.text, tails)]  # "did freeship win?": EXP-FREESHIP
                  or best_name_match(question.text, vocab.get("experiment_name", {})))


def _table(field: Field, question: Question) -> str | None:
    """A user table mentioned; for `paths_table` only when the text speaks of paths."""
    hits = mentions(question.text, question.vocab.get("user_table", []))
    return hits[0] if hits and (field.name == "table" or "path" in question.text.lower()) else None


def _quoted_name(field: Field, question: Question) -> str | None:
    """A name given; when the tool also takes content to send, a quoted passage is that content and a name needs its
    cue ("call it 'VIP Autumn'")."""
    if any(f in question.fields for f in QUOTED_TEXT) and not rx.search(NAME_CUE, question.text, re.I):
        return None
    return quoted_name(question.text) or None


def _quoted_text(field: Field, question: Question) -> str | None:
    """The quoted passage to send, unless it is the name something is given ("call it 'VIP Autumn'")."""
    said = quoted_text(question.text)
    if said and rx.search(NAME_CUE + r"[\"“'‘]" + re.escape(said), question.text, re.I):
        return None
    return said or None


def _quoted_drafts(field: Field, question: Question) -> list[str] | None:
    """Drafts a user quotes to be checked or ranked ("check 'A' and 'B' against our rules") for a list field."""
    from agent.planners.extract.names import quoted_texts

    found = quoted_texts(question.text)
    checking = re.search(r"\b(check|rank|score|compare|test|review|rate|evaluate|vet|compliant|which is better)\b",
                         question.text, re.I)
    return found if len(found) > 1 or (found and checking) else None  # one quote alone may be a name


def _whole_question(field: Field, question: Question) -> str | None:
    """The question itself, for a free-text field the tool requires (or a goal)."""
    if field.name in question.required or field.name == "goal":
        return question.text.strip()[:300]
    return None


def _sql(field: Field, question: Question) -> str | None:
    from agent.planners.extract.sql import compose_sql

    return compose_sql(question.text, question.period) or None


def _unquoted(text: str) -> str:
    """The text with quoted passages blanked: "'… ends tonight'" is the message, not when it goes out."""
    return QUOTED.sub(lambda m: " " * len(m.group(0)), text)


def _when(field: Field, question: Question) -> str | None:
    when = parse_when(_unquoted(question.text), question.today)
    return when.isoformat() if when is not None else None


def _channel_budgets(field: Field, question: Question) -> dict[str, float] | None:
    return channel_amounts(question.text, question.vocab.get("channel", [])) or None


def _number(field: Field, question: Question) -> int | float | None:
    days = [f for f in question.fields if f.endswith("_days")]
    primary = field.name == "horizon_days" or days == [field.name]
    return number_for(field.name, field.kind, field.prop, question.text, question.synonyms.get(field.name, ()),
                      primary_days=primary, claimed=question.numbers)


def _day(field: Field, question: Question) -> str | None:
    """A day to come for a date field that is not a period bound ('effective 1 October', 'from next Monday')."""
    if field.name in PERIOD_FIELDS:
        return None
    return _iso(parse_day(_unquoted(question.text), question.today))


def _window(field: Field, question: Question) -> str | None:
    """A send window said as a month to come ("in December"): its first day for a `…_after` field, its last for a
    `…_before` field (the next December on or after today)."""
    import calendar

    from agent.planners.extract.periods import MONTHS

    after = field.name.endswith("_after")
    if between := re.search(r"\bbetween\s+(.{3,25}?)\s+and\s+(.{3,30})", question.text, re.I):
        first, last = (parse_day(part, question.today) for part in between.groups())  # "between Oct 12 and Oct 16"
        if first is None and last is not None and (day := re.search(r"\d{1,2}", between.group(1))):
            first = _in_month(int(day.group(0)), last)  # "between the 5th and the 9th of October"
        if (first if after else last) is not None:
            return _iso(first if after else last)
    if bound := rx.search(BOUNDS[after], question.text, re.I):  # "not before Oct 13, not after Oct 15"
        if (day := parse_day(bound.group(1), question.today)) is not None:
            return _iso(day)
    if after and (last := rx.search(BOUNDS[False], question.text, re.I)) and parse_day(last.group(1), question.today):
        return None  # "going out by 9 October at the latest": the last day only
    months = "|".join(sorted(MONTHS, key=len, reverse=True))
    if not (m := rx.search(rf"\b(?:in|during|for|this|next|over)\s+({months})\b(?!\s+\d)", question.text, re.I)):
        return _day(field, question) if field.name.endswith("_after") else None
    month = MONTHS[m.group(1).lower()]
    year = question.today.year + (month < question.today.month)
    first, last = date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    return _iso(max(first, question.today) if field.name.endswith("_after") else last)


BOUNDS = {True: r"\b(?:not (?:before|earlier than)|no earlier than|(?:at the )?earliest(?: on)?)\s+(.{3,30})",
          False: r"\b(?:not (?:after|later than)|no later than|(?:at the )?latest(?: by| on)?|(?<!not )(?<!no )before|by)\s+(.{3,30})"}
"""A send window's bounds said one at a time: the first day it may go (True: `…_after`) and the last (False)."""


def _in_month(day: int, other: date) -> date | None:
    """The day of the month another date of the same window names ('the 5th' before 'the 9th of October')."""
    try:
        return other.replace(day=day)
    except ValueError:
        return None


SCALE = re.compile(r"\b(\d{1,2})\s*(?:-|–|to)\s*(\d{1,2})\s*(?:stars?|scale|point scale|rating)\b", re.I)


def _neutral_point(field: Field, question: Question) -> float | None:
    """The neutral point of a rating scale: said ("so 4 is neutral"), else the scale's middle ("the star ratings
    (1-5 scale)": 3)."""
    if (said := _number(field, question)) is not None:
        return said
    if m := SCALE.search(question.text):
        low, high = int(m.group(1)), int(m.group(2))
        return (low + high) / 2 if low < high else None
    return None


GENERIC_COLUMNS = ("id", "date", "value", "text", "name")


def _optional_column(field: Field, question: Question) -> str | None:
    """An optional column the text names by the field's own word ("validate against the star ratings" names
    `rating_column` = rating); a column with a default is never changed this way."""
    stem = field.name.removesuffix("_column")
    if stem in GENERIC_COLUMNS:  # "the customer id", "order value", "the date": words, not a column
        return None
    if field.prop.get("default", "") is None and rx.search(rf"\b{re.escape(stem)}s?\b", question.text, re.I):
        return stem
    return None


def _listed_ids(field: Field, question: Question) -> list[int] | None:
    """Ids listed in the text for an `…_ids` field of integers ('customer ids 101, 202 and 303')."""
    return listed_ids(question.text, field.name.removesuffix("_ids")) or listed_ids(question.text, "id") or None


def _names_of(kind: str) -> Callable[[Field, Question], Any]:
    """A rule's fill for a list field: every name of this kind the text mentions."""
    def fill(field: Field, question: Question) -> Any:
        return mentions(question.text, question.vocab.get(kind, [])) or None
    return fill


def _column(field: Field, question: Question) -> str | None:
    """A column to break a result down by ('by country', 'split by loyalty member') for a `…_by` field."""
    from tools.warehouse import TABLES

    columns = {c.name for t in TABLES if t.kind == "canonical" for c in t.columns if not c.pii}
    low = question.text.lower()
    low = re.sub(r"\b[a-z_]+\.([a-z_]+)\b", r"\1", low)  # "by customers.country": the column, as an analyst writes it
    said = [*re.finditer(r"\b(?:by|per|across|for each|in (?:some|different|certain|which|each))\s+([a-z_]+(?:\s+"
                         r"[a-z_]+)?)", low),  # "split by country", "better in some countries than others"
            *re.finditer(r"\b(?:for|among|between)\s+(?:the\s+)?([a-z_]+(?:\s+[a-z_]+)?)\s+(?:than|vs\.?|versus|"
                         r"compared|and non)", low)]  # "better for loyalty members than for non-members"
    for m in said:
        words = m.group(1).split()
        for candidate in ("_".join(words), "_".join(words).rstrip("s"), words[0], words[0].rstrip("s"),
                          re.sub(r"ies$", "y", words[0])):  # "countries": country
            if candidate in columns:
                return candidate
    return None


def _column_values(field: Field, question: Question) -> list[str] | None:
    """Values of a warehouse column a list field takes, said in the text: the field's description names the column
    ("Company sizes whose …" → company_size), whose own description lists its values ("… 201-1000, 1000+.")."""
    from agent.planners.extract.sql import listed_values
    from tools.warehouse import TABLES

    said = {w.rstrip("s") for w in re.findall(r"[a-z]+", f"{field.name} {field.prop.get('description', '')}".lower())}
    head = field.name.split("_")[-1].rstrip("s")  # enterprise_sizes → size: the column's kind of value
    low = question.text.lower()
    for table in TABLES:
        for column in table.columns:
            parts = set(column.name.split("_"))
            if column.pii or head not in parts or not parts <= said or not (values := listed_values(column.description)):
                continue
            found = [v for v in values if rx.search(rf"(?<![\w+-]){re.escape(v.lower())}(?![\w+-])", low)]
            if len(found) == 1 and rx.search(rf"{re.escape(found[0].lower())}(?:\s+\w+)?\s+(?:and|or)\s+"
                                             r"(?:bigger|larger|above|up|more|over|higher|greater)\b", low):
                found = values[values.index(found[0]):]  # "51-200 employees and bigger": that value and those after
            if found:
                return found
    return None


def _offer(field: Field, question: Question) -> str | None:
    m = rx.search(OFFER, question.text.lower())
    return m.group(1) if m else None


RULES: tuple[Rule, ...] = (  # in order: the first that applies decides
    Rule(_period_bound, names=("start", "end"), falls_through=True),
    Rule(_since, names=("since",), falls_through=True),
    Rule(_as_of, names=("as_of",), falls_through=True),
    Rule(_horizon, name_has="horizon", falls_through=True),
    Rule(_enum_value, kinds=("enum",)),
    Rule(_channels, kinds=("array",), name_has="channel"),
    Rule(first_mention_of("channel"), names=("channel",), kinds=("string",)),
    Rule(_names_of("campaign_id"), names=("campaign_ids",)),
    Rule(first_mention_of("campaign_id"), names=("campaign_id",)),
    Rule(_listed_ids, kinds=("array",), name_has="_ids"),
    Rule(_column_values, kinds=("array",), falls_through=True),
    Rule(_column, name_has="_by", kinds=("string",)),
    Rule(_optional_column, name_has="_column", kinds=("string",)),
    Rule(_experiment, names=("experiment_id", "experiment")),
    Rule(_table, names=("table", "paths_table")),
    Rule(_segment, names=("segment", "segment_name")),
    Rule(first_mention_of("audience"), names=("audience", "saved_audience", "among")),  # among: "in the X audience"
    Rule(_quoted_name, names=("name", "campaign_name"), falls_through=True),
    Rule(_quoted_text, names=QUOTED_TEXT, kinds=("string",), falls_through=True),
    Rule(_quoted_drafts, names=("candidates", "drafts", "texts"), kinds=("array",)),
    Rule(_whole_question, names=FREE_TEXT, kinds=("string",), falls_through=True),
    Rule(_sql, names=("sql",), kinds=("string",)),
    Rule(_when, kinds=("date-time",), falls_through=True),
    Rule(_window, names=("send_after", "send_before"), kinds=("date",)),
    Rule(_day, kinds=("date",)),
    Rule(_channel_budgets, kinds=("object",), name_has="budget"),
    Rule(_neutral_point, name_has="_neutral", kinds=("integer", "number")),
    Rule(_number, kinds=("integer", "number")),
    Rule(_offer, names=("offer",), kinds=("string",)),
)


def fill_field(field: Field, question: Question) -> Any:
    """The value the first rule that applies gives the field (None: the text gives it none)."""
    for rule in RULES:
        if rule.applies(field):
            value = rule.fill(field, question)
            if value is not None or not rule.falls_through:
                return value
    return None


def extract_args(text: str, schema: dict, today: date, vocab: dict[str, list[str]],
                 synonyms: dict[str, tuple[str, ...]] | None = None) -> dict:
    """Fill what the text says into the fields of a tool's JSON schema (`synonyms`: how the tool says people name
    its parameters and enum values)."""
    properties = schema.get("properties", {})
    fields = {name: Field.of(name, prop) for name, prop in properties.items()}
    synonyms = synonyms or {}
    numeric = {name: (f.kind, f.prop) for name, f in fields.items() if f.kind in ("integer", "number")}
    unquoted = QUOTED.sub(lambda m: " " * len(m.group(0)), text)  # 'Save the Q4' names an audience, not a period
    question = Question(text, today, vocab, parse_period(unquoted, today), frozenset(properties),
                        frozenset(schema.get("required", [])), synonyms,
                        numbers_for_fields(unquoted, numeric, synonyms))
    args: dict = {}
    for name, field in fields.items():
        if (value := fill_field(field, question)) is not None:
            args[name] = value
    for name, field in fields.items():  # a saved audience named: the choice of source it belongs to
        if field.kind == "enum" and name not in args and "audience" in field.enum and args.get("saved_audience"):
            args[name] = "audience"
    return args
