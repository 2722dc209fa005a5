"""Typos in the words the tools know: "affilate cpa yesterday?", "CPA on serach".

Names are matched exactly elsewhere (a channel is a filter, not a guess), so one slip of the keyboard used to drop
the channel and change the tool. A word is corrected only when it is neither an English word (the embedding
model's vocabulary) nor one the tools or the warehouse use, is at least five letters long, and is one edit (a
letter missing, added, changed, or two swapped) from exactly one word they use: a channel, a name the warehouse
holds, or a word of a tool's declared concepts. Quoted text and capitalised words (names, content to send) are
left as written.

Chat shorthand for days ("tmrw", "yday") and numbers said in words before a unit ("fifteen per cent", "twenty
grand", "a hundred and fifty a day") are written out the way the readers of dates and amounts expect them.
"""

from __future__ import annotations

import re
from functools import lru_cache

from agent.planners.extract import rx
from tools.registry import ToolSpec

MIN_LEN = 5


def one_edit(a: str, b: str) -> bool:
    """True when b is a with one letter missing, added, changed, or two neighbours swapped (Damerau distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long_[k]), len(short))
    return short[i:] == long_[i + 1:]


@lru_cache(maxsize=1)
def english() -> frozenset[str]:
    """Whole English words: the embedding model's WordPiece vocabulary (about 22k lower-case words, shipped with
    Northstar). A word found there is never corrected ("raise" is not a slip of "praise")."""
    import json

    from knowledge.embeddings import TOKENIZER_PATH

    vocab = json.loads(TOKENIZER_PATH.read_text())["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


@lru_cache(maxsize=8)
def _lexicon(signature: tuple[str, ...], names: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """(known words, correction targets) for a set of tools and the warehouse's names."""
    from tools.registry import load_tools

    registry = load_tools()
    known: set[str] = set()
    targets: set[str] = set()
    for name in signature:
        spec: ToolSpec | None = registry.get(name)
        if spec is None:
            continue
        texts = [spec.description, name.replace("_", " "), *spec.requests]
        concept_words = [w for concept, syns in spec.concepts.items() for w in (concept, *syns)]
        synonym_words = [w for syns in spec.synonyms.values() for w in syns]
        for text in texts + concept_words + synonym_words:
            known |= set(re.findall(r"[a-z]+", text.lower()))
        for text in concept_words + synonym_words:
            targets |= {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= MIN_LEN}
    for text in names:
        words = set(re.findall(r"[a-z]+", text.lower()))
        known |= words
        targets |= {w for w in words if len(w) >= MIN_LEN}
    return frozenset(known), frozenset(targets)


SHORTHAND = {"tmrw": "tomorrow", "tmr": "tomorrow", "tmw": "tomorrow", "tmrow": "tomorrow", "2moro": "tomorrow",
             "2morrow": "tomorrow", "tomoz": "tomorrow", "yday": "yesterday", "ystd": "yesterday",
             "yest": "yesterday", "tdy": "today", "2day": "today", "nxt": "next", "wk": "week", "wks": "weeks",
             "mth": "month", "mths": "months", "qtr": "quarter", "mon": "Monday", "tues": "Tuesday",
             "weds": "Wednesday", "thurs": "Thursday", "thur": "Thursday", "thu": "Thursday", "fri": "Friday",
             "mnth": "month", "mnths": "months", "chnl": "channel", "chnls": "channels", "conv": "conversions",
             "convs": "conversions", "affil": "affiliate", "affils": "affiliates", "ppl": "people", "abt": "about",
             "prob": "probability", "w": "with", "u": "you", "ur": "your", "urself": "yourself", "r": "are",
             "pls": "please", "plz": "please", "thx": "thanks", "b4": "before", "msg": "message", "msgs": "messages",
             "cust": "customers", "custs": "customers", "rev": "revenue", "perf": "performance", "vs.": "vs",
             "rn": "right now", "atm": "at the moment", "yr": "year", "yrs": "years", "hr": "hour", "hrs": "hours", "ye": "you", "youse": "you"}
FRENCH = {"lundi": "Monday", "mardi": "Tuesday", "mercredi": "Wednesday", "jeudi": "Thursday", "vendredi": "Friday",
          "samedi": "Saturday", "dimanche": "Sunday", "demain": "tomorrow", "à partir de": "from", "à partir du": "from",
          "par pays": "by country", "par canal": "by channel", "par jour": "a day", "par semaine": "a week",
          "par mois": "a month", "crée": "create", "créer": "create", "créez": "create"}
"""The French words bilingual colleagues mix into an English request (never inside a quoted message)."""
_FRENCH = re.compile(r"(?<!\w)(" + "|".join(sorted(map(re.escape, FRENCH), key=len, reverse=True)) + r")(?!\w)", re.I)
KEPT_BACK = re.compile(r"\b(keep|hold|set|leave|put)\s+(\d+(?:\.\d+)?\s?%)\s+(?:of (?:them|people|the audience|it)\s+)?"
                       r"(back|aside|out)\b", re.I)
"""A holdout said around its share ("keep 20% back so we can tell if it worked")."""
_QUOTED = re.compile(r"(?<!\w)[\"“'‘][^\"”’]{2,300}?[\"”'’]")
UNITS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
         "six": 6, "seven": 7, "eight": 8, "nine": 9}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
FRACTION_PCT = {"tenth": 10, "fifth": 20, "quarter": 25, "twentieth": 5}
_SMALL = rf"(?:(?:{'|'.join(TENS)})(?:[- ](?:{'|'.join(k for k, v in UNITS.items() if v < 10)}))?|{'|'.join(UNITS)})"
SPOKEN = re.compile(rf"\b(?:(a|one|{_SMALL})\s+hundred(?:\s+(?:and\s+)?({_SMALL}))?|({_SMALL}))"
                    r"(?=\s*(?:per ?cent|percent|%|pp|percentage points?|grand|k\b|thousand|a day|per day|a week|"
                    r"a month|daily|dollars|euros|pounds|quid|bucks))", re.I)


def _spoken(m: re.Match) -> str:
    def small(word: str) -> int:
        parts = re.split(r"[- ]", word.lower())
        return sum(TENS.get(p, UNITS.get(p, 0)) for p in parts)
    if m.group(3):
        return str(small(m.group(3)))
    hundreds = 1 if m.group(1).lower() in ("a", "one") else small(m.group(1))
    return str(hundreds * 100 + (small(m.group(2)) if m.group(2) else 0))


NUMBERED = re.compile(r"(?:^|[\s:])1[.)]\s+\S.*?\s2[.)]\s+\S", re.S)  # a numbered checklist in one message
FORWARDED = re.compile(r"^\s*(?:fwd?|re)\s*:\s*(.{0,80}?)\s*(?<!\w)[\"“'‘](.{8,}?)[\"”'’]\s*$", re.I | re.S)


def written_out(text: str) -> str:
    """Shorthand days and spoken numbers before a unit in the form the readers take ("tmrw" → tomorrow, "fifteen
    per cent" → 15 per cent, "twenty grand" → 20k)."""
    if NUMBERED.search(text):  # "Budget change to make: 1. email +25% 2. social -20% 3. both from Friday": one request
        text = re.sub(r"(?<=:)\s*1[.)]\s+", " ", text)  # whose items are its inputs; items that start with a verb
        items = re.split(r"(?<=\S)\s+\d{1,2}[.)]\s+(?=\S)", re.sub(r"^\s*1[.)]\s+", "", text))  # are steps
        steps = any(re.match(r"(?:then\s+)?(?:take|save|turn|make|create|build|send|email|text|schedule|launch|"
                             r"export|move|cut|raise|run|score|segment|plan|draft|write)\b", i, re.I) for i in items[1:])
        text = (". " if steps else ", ").join([*(i.rstrip(" .,;") for i in items[:-1]), items[-1]])
    if m := FORWARDED.match(text):  # "FW: budget -- 'Please move a tenth of social …'": the request itself
        text = f"{m.group(1).strip(' -–—:')}: {m.group(2)}" if m.group(1).strip(" -–—:") else m.group(2)
    text = re.sub(r"\b[A-Za-z0-9]+\b", lambda m: SHORTHAND.get(m.group(0).lower(), m.group(0))
                  if m.group(0).islower() or m.group(0).istitle() else m.group(0), text)
    text = re.sub(r"\b(first|second|third|1st|2nd|3rd)[- ]order\b",
                  lambda m: f"order {ORDINALS[m.group(1).lower()]}", text, flags=re.I)  # "second-order Markov"
    text = re.sub(r"\bpush (it|that|this|them|the send|the email|the campaign)( back)? (to|until|till)\b",
                  r"reschedule \1 to", text, flags=re.I)  # "push it to Monday" postpones; it is no push channel
    text = SPOKEN.sub(_spoken, text)
    text = re.sub(r"\be[- ]mail(s|ing|ed)?\b", r"email\1", text, flags=re.I)  # "e-mail", dictated "e mail"
    text = rx.sub(rf"\b({_HOURS})(?::(\d\d))?\s?([ap])\.?\s?m\b\.?",
                  lambda m: f"{HOURS.get(m.group(1).lower()) or m.group(1)}{':' + m.group(2) if m.group(2) else ''}"
                            f"{m.group(3).lower()}m", text, flags=re.I)  # "ten a m", "10 a.m." → 10am
    text = re.sub(r"\b(?:a|one) (tenth|fifth|quarter|twentieth) of\b",
                  lambda m: f"{FRACTION_PCT[m.group(1).lower()]}% of", text, flags=re.I)  # "hold out a fifth of them"
    text = re.sub(r"\b(?:the\s+)?(first|1st|second|2nd|third|3rd|fourth|4th) quarter\b(?!\s+(?:of an?|past|to)\b)",
                  lambda m: "Q" + str(ORDINALS[m.group(1).lower()]), text, flags=re.I)  # "the second quarter" → Q2
    text = rx.sub(rf"\b(quarter|half) past ({_HOURS})\b|\bquarter to ({_HOURS})\b", _clock, text, flags=re.I)
    text = rx.sub(rf"\bat half ({_HOURS})\b", lambda m: f"at {HOURS.get(m.group(1).lower()) or m.group(1)}:30", text,
                  flags=re.I)  # British "at half ten" is 10:30
    text = re.sub(r"(?<=\d)\s*grand\b", "k", text, flags=re.I)
    text = _outside_quotes(text, lambda part: _FRENCH.sub(lambda m: FRENCH[m.group(1).lower()], part))
    text = _outside_quotes(text, lambda part: KEPT_BACK.sub(r"hold out \2", part))  # "keep 20% back"
    text = re.sub(r"(?<=[a-z] )n(?= [a-z])", "and", text)  # "go ahead n launch"
    text = re.sub(r"^(\W*)kk?\b(?!\s*[$€£\d])", r"\1ok", text, flags=re.I)  # "k looks good", "kk go"
    text = re.sub(r"\b(?:à|at) (\d{1,2})h(\d\d)?\b", lambda m: f"at {m.group(1)}:{m.group(2) or '00'}", text,
                  flags=re.I)  # French "à 10h", "at 9h30"
    return SPACED_THOUSANDS.sub(lambda m: re.sub(r"[ \u00a0\u202f]", "", m.group(0)), text)  # "250 000 $" → 250000


SPACED_THOUSANDS = re.compile(r"(?<=[$€£] )\d{1,3}(?:[ \u00a0\u202f]\d{3})+\b|(?<=[$€£])\d{1,3}(?:[ \u00a0\u202f]\d{3})+\b|"
                              r"\b\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?=\s?(?:[$€£]|dollars?\b|euros?\b|pounds?\b|"
                              r"(?:par|per|a) (?:jour|day|mois|month)\b|/day\b))", re.I)
"""Thousands grouped with spaces, as French and Canadian writers do ("250 000 $", "1 000 $ par jour"), when a
currency or a rate says the number is an amount (a list of ids "1043 2210" is never joined)."""


def _outside_quotes(text: str, change) -> str:
    """`change` applied to the text between quoted passages, the quotes as written."""
    out, at = [], 0
    for m in _QUOTED.finditer(text):
        out += [change(text[at:m.start()]), m.group(0)]
        at = m.end()
    return "".join([*out, change(text[at:])])


ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
HOURS = {w: n for w, n in UNITS.items() if n <= 12}
_HOURS = "|".join([*HOURS, *map(str, range(12, 0, -1))])


def _clock(m: re.Match) -> str:
    """"quarter past nine" → 9:15, "half past 10" → 10:30, "quarter to ten" → 9:45."""
    if m.group(3):
        hour = HOURS.get(m.group(3).lower()) or int(m.group(3))
        return f"{(hour - 2) % 12 + 1}:45"
    hour = HOURS.get(m.group(2).lower()) or int(m.group(2))
    return f"{hour}:{15 if m.group(1).lower() == 'quarter' else 30}"


def correct(text: str, tools: dict[str, ToolSpec], vocab: dict) -> str:
    """The text with slips in known words mended; everything else as written."""
    text = written_out(text)
    names = tuple(sorted({str(v) for kind in ("channel", "segment", "audience") for v in vocab.get(kind) or []}))
    known, targets = _lexicon(tuple(sorted(tools)), names)
    quoted = [m.span() for m in _QUOTED.finditer(text)]

    def mend(m: re.Match) -> str:
        word = m.group(0)
        low = word.lower()
        if (len(low) < MIN_LEN or word[0].isupper() and m.start() > 0 or low in known
                or low.rstrip("s") in known or low in english() or low.removesuffix("s") in english()
                or any(a <= m.start() < b for a, b in quoted)):  # (plurals of English words too: "heaps")
            return word
        near = [t for t in targets if one_edit(low, t) and not (t.startswith(low) or low.startswith(t))]
        return near[0] if len(near) == 1 else word

    return re.sub(r"[A-Za-z]+", mend, text)
