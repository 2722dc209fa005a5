"""Grounding v2: every figure in an answer must come from the thread's tool results, with the right entity.

Evidence is every tool result of the thread (with its turn), the questions, the arguments and the data range.
An answer is read sentence by sentence (list items and table rows count as sentences):

* a figure is supported when a source number, written at the answer's precision (at least 2 significant
  figures), reads the same: `104k`, `$0.10 million`, `5.8 percent` of -0.0578, `75 cents`, `1.14 pp`,
  `a quarter of` 0.234; years and dates from the questions, the data range or the results; list numbering;
* a figure named with an entity (a channel, campaign, segment, arm …) must belong to that entity's row or
  label in the evidence, not only to another's (`display had the best ROAS at 13.00` when 13.00 is email's);
* a claim that an action was done must match an executed action (how many, and which names).

Unsupported sentences are removed and the answer says so; the tool summaries replace it only when nothing
grounded is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from agent.planners.extract.figures import (
    ENTITY_KEYS,
    Figure,
    dates_in,
    entity_pattern,
    figures_in,
    norm,
    number_sources,
)

STRUCTURE = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\d{1,2}[.)]|\(\d{1,2}\)|[-*•]|step \d{1,2}[:.]?)\s+", re.I)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(*_\"'\d$€£])")
FRAGMENT = re.compile(r";|\bwhile\b|\bwhereas\b|\bbut\b|\bversus\b|\bvs\.?\s|\bcompared (?:with|to)\b|"
                      r"\bagainst\b|\bthan\b|\bahead of\b|\bbehind\b", re.I)
GLOBAL = re.compile(r"\b(average|overall|total|blended|combined|in all|all channels|across|portfolio|whole)\b",
                    re.I)
NUMBERISH = re.compile(r"\d")
PREPOSITION = re.compile(r"^\s*(?:(?:for|on|in|from|at|by|of|via|with)\s+(?:the\s+)?)?$", re.I)
RELATIVE = re.compile(r"\b(lift\w*|uplift|difference|gap|ahead|relative|more than|higher than|lower than|"
                      r"increase|decrease|points? (?:up|down)|beats?|over)\b", re.I)
RATE_KEYS = ("cvr", "mean", "rate", "conversion_rate")
RATES = {"ctr", "click-through", "click through", "conversion rate", "cvr", "converted"}
"""Metrics said as percentages whose figure must be that field's, not any fraction that happens to match."""
METRICS = {"roas": ("roas",), "return on ad spend": ("roas",), "cpa": ("cpa",), "cost per acquisition": ("cpa",),
           "ctr": ("ctr",), "click-through": ("ctr",), "click through": ("ctr",), "spend": ("spend",),
           "spent": ("spend",), "revenue": ("revenue",), "conversions": ("conversions",), "clicks": ("clicks",),
           "impressions": ("impressions",), "conversion rate": RATE_KEYS, "cvr": RATE_KEYS, "converted": RATE_KEYS,
           "auc": ("auc", "cv_auc", "holdout_auc"), "removal effect": ("removal_effect", "removal_effects"),
           "mentions": ("mentions",), "participants": ("n", "arms")}
METRIC = re.compile(r"\b(" + "|".join(sorted(map(re.escape, METRICS), key=len, reverse=True)) + r")\b", re.I)
VERBS = r"created|scheduled|queued|sent|launched|updated|applied|changed|recorded|set up|saved|exported|built"
DONE = re.compile(rf"\b(?:I|I've|I have|we've|we have)\s+(?:now\s+|just\s+|successfully\s+)*(?:{VERBS})\b"
                  rf"|\b(?:has|have)\s+(?:now\s+)?been\s+(?:successfully\s+)?(?:{VERBS})\b"
                  r"|\b(?:is|are)\s+(?:now\s+)?(?:created|scheduled|queued|live|updated|applied|saved|exported|in place)\b"
                  r"|\b(?:was|were)\s+(?:successfully\s+)?(?:created|scheduled|queued|saved|exported|applied)\b"
                  r"|^\s*done\b", re.I)
"""A claim that an action of this conversation ran ("I've created …", "has been scheduled", "are created");
not history from the data ("we sent 36,978 e-mails in September")."""
HEDGE = re.compile(r"\b(draft\w*|pending|await\w*|approv\w*|once|if|would|will|can|could|should|not|n't|never|"
                   r"request\w*|propos\w*|suggest\w*|prepar\w*|ready to|needs?|wait\w*|reject\w*|to be)\b", re.I)
ACTION_WORDS = {"create": ("audience", "list", "segment"), "schedule": ("campaign", "send", "email", "message",
                                                                          "push", "sms"),
                "update": ("budget", "spend", "plan")}
COUNT = re.compile(r"\b(both|two|three|four|all \w+|\d+)\s+(?:of\s+the\s+)?(audiences|campaigns|sends|budgets|"
                   r"emails|messages|changes)\b", re.I)
QUOTED = re.compile(r"[\"'“‘]([^\"'“”‘’]{2,80})[\"'”’]")


@dataclass
class Evidence:
    """What an answer may rest on: results of the whole thread, what was asked, the data's dates, actions."""

    results: list[tuple[int, object]] = field(default_factory=list)
    """(turn, a tool result dict or a failed call's error text), for every call of the thread."""
    questions: list[str] = field(default_factory=list)
    args: list[dict] = field(default_factory=list)
    data_range: tuple[date, date] | Callable[[], tuple[date, date] | None] | None = None
    """The warehouse's first and last dates, or how to read them: then read only for a date the rest of the
    evidence does not already cover (reading them scans every table's dates)."""
    today: date | None = None
    actions: list[dict] = field(default_factory=list)
    """Executed actions: {turn, name, args, ok}."""
    names: list[str] = field(default_factory=list)
    """The warehouse's entity names (channels, campaigns, segments …), besides those in results."""
    extra: list[float] = field(default_factory=list)
    """Figures from settings the model is told (e.g. the budget bound)."""
    replacement: str = ""
    """What to show when nothing grounded is left (the results' own summaries)."""
    turn: int = 0


@dataclass
class Removed:
    sentence: str
    reason: str
    figures: list[str]


@dataclass
class Verdict:
    text: str
    removed: list[Removed]
    grounded: bool


def check_answer(answer: str, evidence: Evidence) -> Verdict:
    """The answer with every unsupported sentence removed (and a note saying so), or the replacement."""
    index = _Index(evidence)
    lines, removed, substantive = [], [], 0
    for line in (answer or "").splitlines():
        if not line.strip():
            lines.append(line)
            continue
        units = [line] if line.lstrip().startswith("|") or STRUCTURE.match(line) else SENTENCE.split(line)
        kept = []
        for unit in units:
            if problem := _check_unit(unit, index, evidence):
                removed.append(problem)
            else:
                kept.append(unit)
                substantive += _substantive(unit)
        if kept:
            lines.append(" ".join(kept))
    if not removed:
        return Verdict(answer, [], True)
    if not substantive:
        return Verdict(f"{evidence.replacement or 'Nothing to report.'}\n\n(I replaced a draft answer that had "
                       f"{_what(removed)}.)", removed, False)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    n = len(removed)
    return Verdict(f"{text}\n\n(I removed {n} statement{'s' if n > 1 else ''} with {_what(removed)}.)", removed,
                   False)


def _what(removed: list[Removed]) -> str:
    kinds = {r.reason for r in removed}
    what = []
    if "unsupported" in kinds:
        what.append("figures no tool returned")
    if "misattributed" in kinds:
        what.append("figures given to the wrong channel, campaign, segment or arm")
    if "action" in kinds:
        what.append("a claim that an action ran which no executed action supports")
    return " and ".join(what)


def _substantive(unit: str) -> int:
    words = re.findall(r"[A-Za-z]+", unit)
    body = STRUCTURE.sub("", unit)
    return int((len(words) >= 4 or bool(re.search(r"\d", body))) and not unit.rstrip().endswith(":")
               and not unit.lstrip().startswith(("#", "|-", "|:")))


# ---- the evidence, indexed ----------------------------------------------------------------------------------

class _Index:
    def __init__(self, evidence: Evidence):
        labels = set(evidence.names)
        for _, result in evidence.results:
            labels |= _row_labels(result)
        self.entities = entity_pattern(labels)
        self.sources = []
        for turn, result in evidence.results:
            self.sources += number_sources(result, self.entities, turn)
        for obj in [*evidence.questions, *evidence.args, *evidence.extra]:
            self.sources += number_sources(obj, None, evidence.turn)
        self.rows = _entity_rows(evidence.results, self.entities)
        self.global_keys = {s.key for s in self.sources if s.key and not s.entities}
        self.keys = {s.key for s in self.sources if s.key}
        found = [d for obj in [*(r for _, r in evidence.results), *evidence.questions, *evidence.args]
                 for d in dates_in(obj)]
        if evidence.today:
            found.append(evidence.today)
        self._range = evidence.data_range
        if isinstance(self._range, tuple):
            found += list(self._range)
            self._range = None
        self._know(found)

    def _know(self, found: list[date]) -> None:
        self.found, self.dates = found, set(found)
        self.span = (min(found) - timedelta(days=31), max(found) + timedelta(days=31)) if found else None
        self.years = {d.year for d in found}

    def _ok(self, when: date | int) -> bool:
        if isinstance(when, int):  # a year alone
            return when in self.years
        return when in self.dates or bool(self.span and self.span[0] <= when <= self.span[1])

    def date_ok(self, when: date | int) -> bool:
        """A date (or year) the evidence covers. The data range widens what is covered, never narrows it, so
        reading it only when the rest does not cover `when` gives the same verdicts as reading it first."""
        if self._ok(when):
            return True
        if callable(self._range):
            span, self._range = self._range(), None
            if span:
                self._know([*self.found, *span])
                return self._ok(when)
        return False

    def supports(self, fig: Figure) -> list:
        return [s for s in self.sources if fig.matches(s)]


def _row_labels(result) -> set[str]:
    out: set[str] = set()
    if isinstance(result, dict):
        for key, value in result.items():
            if key in ENTITY_KEYS and isinstance(value, str) and 0 < len(value) <= 60:
                out.add(value)
            elif isinstance(value, dict | list):
                out |= _row_labels(value)
    elif isinstance(result, list):
        for value in result:
            out |= _row_labels(value)
    return out


def _entity_rows(results, entities) -> dict[str, list[dict]]:
    """entity → its data rows (for the metric check: `search ROAS 2.66` when search's roas is 2.82)."""
    rows: dict[str, list[dict]] = {}
    for _, result in results:
        for row in (result.get("data") or []) if isinstance(result, dict) else []:
            if isinstance(row, dict):
                for value in row.values():
                    if isinstance(value, str) and entities and entities.fullmatch(value):
                        rows.setdefault(norm(value), []).append(row)
    return rows


# ---- one sentence ---------------------------------------------------------------------------------------------

def _check_unit(unit: str, index: _Index, evidence: Evidence) -> Removed | None:
    text = re.sub(r"[*_`]", " ", unit)
    text = STRUCTURE.sub(lambda m: " " * len(m.group()), text, count=1)
    figures = figures_in(text, index.date_ok)
    bad, wrong = [], []
    for fig in figures:
        if fig.structural:
            continue
        if fig.ratio and _ratio_ok(fig, figures, text, index):
            continue
        supports = index.supports(fig)
        if not supports:
            bad.append(fig.text)
            continue
        word = _metric_word(text, fig)
        keys = set(METRICS.get(word, ())) & index.keys
        percent = any(p for _, _, p in fig.readings)  # shares and changes sit under many fields; rates do not
        if keys and (not percent or word in RATES):
            supports = [s for s in supports if s.key is None or s.key in keys]
            if not supports:
                wrong.append(f"{fig.text} (a value of another field than {'/'.join(sorted(keys))})")
                continue
        entity = _attributed(text, fig, index.entities)
        if entity and not _belongs(fig, entity, supports, text, index):
            wrong.append(f"{fig.text} ({entity})")
        elif not entity and _entity_figure_as_overall(fig, supports, text, index):
            owners = sorted({e for s in supports for e in s.entities})
            wrong.append(f"{fig.text} (said as the overall figure; it is {', '.join(owners[:3])}'s)")
    if bad:
        return Removed(unit.strip(), "unsupported", bad)
    if wrong:
        return Removed(unit.strip(), "misattributed", wrong)
    if claim := _unsupported_action_claim(text, evidence):
        return Removed(unit.strip(), "action", [claim])
    return None


def _metric(text: str, fig: Figure) -> tuple[str, ...]:
    """The fields of the metric a figure is said of: the nearest metric word before it in its clause, else just
    after it."""
    found = _metric_word(text, fig)
    return METRICS[found] if found else ()


def _metric_word(text: str, fig: Figure) -> str | None:
    start = max((m.end() for m in FRAGMENT.finditer(text, 0, fig.start)), default=0)
    right_after = re.match(r"\s*(?:(?:of|in|on)\s+)?(?:\w+\s+)?(?=" + METRIC.pattern + ")", text[fig.end:], re.I)
    before = list(METRIC.finditer(text, start, fig.start))
    if right_after:
        found = METRIC.search(text, fig.end + right_after.end())
    else:
        found = before[-1] if before else METRIC.search(text, fig.end, fig.end + 25)
    return found.group(1).lower() if found else None


def _entity_figure_as_overall(fig: Figure, supports: list, text: str, index: _Index) -> bool:
    """"CTR was about 3 %" when 3 % is only email's CTR and the overall CTR is another figure. A number in a result's
    prose ("… 25,580 in control and … : 51,160 in total") is owned by the entity before it only by proximity, which
    is no proof that it is that entity's."""
    if not all(s.entities and not s.prose for s in supports):
        return False
    return bool(set(_metric(text, fig)) & index.global_keys)


def _ratio_ok(fig: Figure, figures: list[Figure], text: str, index: _Index) -> bool:
    """"less than half of search's 2.82", "twice email's": the ratio of two figures in the sentence, or of the
    named entities' values for the metric."""
    values = [f.readings[0][0] for f in figures if f is not fig and f.readings and not f.structural]
    keys = _metric(text, fig)
    named = {norm(m.group("e")) for m in index.entities.finditer(text)} if index.entities else set()
    values += [r[k] for e in named for r in index.rows.get(e, []) for k in keys if isinstance(r.get(k), int | float)]
    for a in values:
        for b in values:
            if a and b and a is not b:
                for value, tol, percent in fig.readings:
                    ratio = a / b * (100 if percent else 1)
                    if abs(ratio - value) <= tol:
                        return True
    return False


def _attributed(text: str, fig: Figure, entities) -> str | None:
    """The entity a figure is said of: one joined by a preposition right after it, else the nearest before it in
    its clause; entities listed together pair with figures listed together ("A and B: 1 and 2")."""
    if entities is None:
        return None
    start = max((m.end() for m in FRAGMENT.finditer(text, 0, fig.start)), default=0)
    ends = [m.start() for m in FRAGMENT.finditer(text, fig.end)]
    end = ends[0] if ends else len(text)
    clause = text[start:end]
    found = [(m.start() + start, m.end() + start, norm(m.group("e"))) for m in entities.finditer(clause)]
    after = [e for e in found if e[0] >= fig.end and PREPOSITION.match(text[fig.end:e[0]])]
    if after:
        return after[0][2]
    close = [e for e in found if e[0] >= fig.end and len(text[fig.end:e[0]].split()) <= 2  # "3,987 saw emoji"
             and not NUMBERISH.search(text[fig.end:e[0]]) and not RELATIVE.search(text[fig.end:e[0]])
             and not re.search(r"\b(to|than|vs|versus)\b", text[fig.end:e[0]], re.I)]
    before = [e for e in found if e[1] <= fig.start]
    if not before:
        return close[0][2] if close else None
    between = text[before[-1][1]:fig.start] + " " + text[fig.end:fig.end + 25]
    if GLOBAL.search(between):
        return None
    group = [before[-1]]  # "Search and social drove 25.7 % and 22.8 %": a list of entities, then of figures
    for e in reversed(before[:-1]):
        if re.fullmatch(r"[\s,]*(and|&|or)?[\s,]*", text[e[1]:group[0][0]], re.I):
            group.insert(0, e)
        else:
            break
    if len(group) > 1:
        figs = [f for f in figures_in(text[group[-1][1]:end], lambda _: True) if not f.structural]
        offsets = [f.start + group[-1][1] for f in figs]
        if len(figs) == len(group) and fig.start in offsets:
            return group[offsets.index(fig.start)][2]
        return "|".join(e[2] for e in group)
    return group[0][2] + ("|" + close[0][2] if close else "")


def _belongs(fig: Figure, entity: str, supports: list, text: str, index: _Index) -> bool:
    named = set(entity.split("|"))
    if RELATIVE.search(text[max(0, fig.start - 40):fig.start]):  # "a lift of 1.14 pp" is the other arm's, vs this one
        named |= {norm(m.group("e")) for m in index.entities.finditer(text)}
    if any(s.entities & named for s in supports):
        return True
    if not all(s.entities for s in supports):  # a figure with no entity of its own (a total, a setting)
        keys = _metric(text, fig)
        rows = [r for e in named for r in index.rows.get(e, []) if any(k in r for k in keys)]
        return not rows  # the entity has its own figure for this metric, and this is not it
    return False


# ---- claims that an action ran --------------------------------------------------------------------------------

def _unsupported_action_claim(text: str, evidence: Evidence) -> str | None:
    done = DONE.search(text)
    if not done or HEDGE.search(text):
        return None
    lowered = text.lower()
    kinds = [verb for verb, nouns in ACTION_WORDS.items() if any(re.search(rf"\b{n}s?\b", lowered) for n in nouns)]
    if not kinds:
        return None
    executed = [a for a in evidence.actions if a.get("ok") and any(a["name"].startswith(k) for k in kinds)]
    if not executed:
        return f"'{done.group(0)}' but no {' or '.join(kinds)} action ran"
    this_turn = [a for a in executed if a.get("turn") == evidence.turn] or executed
    if (count := COUNT.search(text)) and _count(count.group(1), len(this_turn)) > len(this_turn):
        return f"'{count.group(0)}' but {len(this_turn)} ran"
    names = {norm(str(v)) for a in executed for v in (a.get("args") or {}).values() if isinstance(v, str)}
    for quoted_name in QUOTED.findall(text):
        if norm(quoted_name) not in names:
            return f"'{quoted_name}' is not the name of an executed action"
    return None


def _count(word: str, ran: int) -> int:
    words = {"both": 2, "two": 2, "three": 3, "four": 4}
    word = word.lower()
    if word.startswith("all "):
        return max(ran, 2)  # "all the audiences" is a claim of several
    return words.get(word, int(word) if word.isdigit() else 0)


def from_state(state: dict, *, action_names: set[str],
               data_range: tuple[date, date] | Callable[[], tuple[date, date] | None] | None = None,
               today: date | None = None, names: list[str] = (), extra: list[float] = (),
               replacement: str = "") -> Evidence:
    """The evidence of a thread at guard_output: this turn's calls (full results) and every earlier turn's
    tool results as recorded in the messages."""
    from agent.planners.context_budget import read_tool_content
    from agent.planners.conversation import split_turns

    turns = split_turns(state.get("messages") or [])
    current = state.get("turn") or len(turns)
    ev = Evidence(data_range=data_range, today=today, names=list(names), extra=list(extra),
                  replacement=replacement, turn=current, questions=[state.get("question") or ""])
    first = current - len(turns) + 1  # turns before checkpointing began count from 1 as well
    for n, turn in enumerate(turns[:-1] if turns else []):
        number = first + n
        calls = {}
        for m in turn:
            if m.get("role") == "user" and m.get("content"):
                ev.questions.append(m["content"])
            for tc in m.get("tool_calls") or []:
                args = _json(tc["function"].get("arguments"))
                calls[tc["id"]] = (tc["function"]["name"], args)
                ev.args.append(args)
            if m.get("role") == "tool":
                result = read_tool_content(m.get("content") or "")
                ev.results.append((number, result if result is not None else m.get("content") or ""))
                name, args = calls.get(m.get("tool_call_id"), ("", {}))
                if name in action_names:
                    ev.actions.append({"turn": number, "name": name, "args": args, "ok": result is not None})
    for c in state.get("calls") or []:
        ev.results.append((current, c.get("result") if c.get("ok") else c.get("error") or ""))
        ev.args.append(c.get("args") or {})
        if c["name"] in action_names:
            ev.actions.append({"turn": current, "name": c["name"], "args": c.get("args") or {}, "ok": c.get("ok")})
    return ev


def _json(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def thread_evidence(state: dict, ctx, env, replacement: str = "") -> Evidence:
    """The evidence for guard_output: the thread's results, the warehouse's names and data range, the bound."""
    import time

    from agent.planners.briefing import TTL_S, warehouse_facts
    from tools.registry import load_tools

    tools = load_tools()
    vocab = env.vocab
    names = [*vocab.get("channel", []), *vocab.get("experiment_id", []), *vocab.get("segment", []),
             *vocab.get("audience", [])]

    def span() -> tuple[date, date] | None:  # read when a date needs it: most answers' dates are in the results
        facts = warehouse_facts(str(ctx.warehouse_path), int(time.monotonic() // TTL_S))
        return (date.fromisoformat(facts.start), date.fromisoformat(facts.end)) if facts.start and facts.end else None

    return from_state(state, action_names={n for n, s in tools.items() if s.approval}, data_range=span,
                      today=env.today, names=names, extra=[ctx.max_budget_change], replacement=replacement)
