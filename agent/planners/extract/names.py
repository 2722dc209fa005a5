"""Names in a question: things the warehouse knows (channels, experiments, segments, audiences, tables), enum
values and the words marketers use for them, and quoted text ("call it 'VIP Early Access'").
"""

from __future__ import annotations

import re

from agent.planners.extract import rx

SYNONYMS = {  # words marketers use → enum values found in tool schemas
    "weekly": "week", "daily": "day", "monthly": "month", "per week": "week", "per day": "day",
    "subject line": "email_subject", "subject lines": "email_subject", "email subject": "email_subject",
    "email body": "email_body", "text message": "sms", "texts": "sms", "texted": "sms", "texting": "sms",
    "push notification": "push",
    "ad headline": "ad_headline", "headlines": "ad_headline", "ad copy": "ad_description", "social post": "social",
    "first touch": "first_touch", "last touch": "last_touch", "first-touch": "first_touch",
    "last-touch": "last_touch", "time decay": "time_decay", "position based": "position_based",
    "u-shaped": "position_based", "data-driven": "markov", "every model": "all", "all models": "all",
    "compare models": "all", "rfm": "rfm", "behavioural": "behavioral", "clusters": "behavioral",
    "revenue": "revenue", "conversions": "conversions", "spend": "spend", "cpa": "cpa", "ctr": "ctr", "roas": "roas",
}
ENUM_STOP = {"customers", "customer", "audience"}  # enum values too common in questions to signal a choice
NAME_STOP = {"the", "a", "test", "of", "and"}  # words too common in names to tell them apart


def mentions(text: str, vocabulary) -> list[str]:
    """Vocabulary items mentioned in the text (case-insensitive, _ and - read as spaces), in order of appearance."""
    t = " " + re.sub(r"[_\-()\[\]{},;:!?\"“”]|\.(?=\s|$)", " ", text.lower()) + " "  # "(sms)", "in CPA." name them
    found = []
    for item in vocabulary:
        key = re.sub(r"[_\-]", " ", str(item).lower())
        if key and (pos := t.find(f" {key} ") if len(key) < 4 else t.find(key)) >= 0:
            found.append((pos, item))
    return [item for _, item in sorted(found)]


PERIOD_WORDS = re.compile(r"\b(?:last|this|next|previous|past|coming|following|same)\s+(?:\d+\s+)?"
                          r"(?:day|week|month|quarter|year)s?\b|\b(?:a|one|two|three|\d+)[- ](?:day|week|month)s?\b")
GRAIN = re.compile(r"\b(day|week|month|quarter|year)[- ](?:by|on|over)[- ]\1\b"  # "week by week"
                   r"|\b(?:per|each|every|by|for each)\s+(day|week|month|quarter|year)\b(?!\s+(?:ago|before|after))")


def named_mentions(text: str, names) -> list[str]:
    """Names mentioned as names: capitalised, quoted, next to 'segment', 'group' or 'cluster' ("the At Risk
    segment", "'champions'"), or a name of several words after 'the' ("email the bargain hunters"), so a name made
    of common words ("at risk", "loyal", "new") is not read in "customers most at risk of leaving"."""
    found = []
    quote = r"(?<!\w)[\"“'‘]([^\"”’]{2,300}?)[\"”'’](?=\s|$|[,.;:!?])"
    passages = [m.span(1) for m in rx.finditer(quote, text)]
    for name in mentions(text, names):
        pattern = r"[\s_-]+".join(map(re.escape, str(name).split()))
        for m in rx.finditer(rf"(?<![\w]){pattern}(?![\w])", text, re.I):
            inside = [(a, b) for a, b in passages if a <= m.start() and m.end() <= b]
            if inside and inside[0] != m.span():
                continue  # part of quoted text ('New season, new favourites'), not a name
            quoted = bool(inside)
            capital = text[m.start()].isupper() and m.start() > 0 and not re.search(r"[.!?]\s*$", text[:m.start()])
            near = re.match(r"[\s'\"’”]*(?:\w+\s+)?(?:rfm\s+)?(?:segment|group|cluster|persona)s?\b",
                            text[m.end():], re.I)
            called = len(str(name).split()) > 1 and re.search(r"\b(?:the|our|those|these|all)\s+$",
                                                             text[:m.start()], re.I)
            of = re.search(r"\b(?:segment|group|cluster)\s+(?:of|called|named)\s+(?:the\s+|our\s+)?$", text[:m.start()],
                           re.I)  # "the segment of loyal customers"
            if quoted or capital or near or called or of:
                found.append(name)
                break
    return found


def enum_choices(text: str, enum: list, synonyms: dict[str, tuple[str, ...]] | None = None) -> list:
    """Enum values the text names, in order of appearance ('week by week' names `week`; 'last week' names no
    period value); else the values the tool's synonyms or the common ones stand for."""
    if m := GRAIN.search(text.lower()):
        if (grain := m.group(1) or m.group(2)) in enum:
            return [grain]
    plain = PERIOD_WORDS.sub(" ", text.lower())
    named = [value for value in mentions(plain, enum) if value not in ENUM_STOP
             and rx.search(rf"(?<![\w]){re.escape(str(value).replace('_', ' '))}(?:s|es)?(?![\w])",
                           re.sub(r"[_-]", " ", plain))]  # whole words: "highest" does not name "high"
    named = [value for value in named if not negated(plain, str(value))]
    if named:
        return named
    own = [(pos, value) for value in enum for phrase in (synonyms or {}).get(str(value), ())
           if (pos := _position(plain, phrase)) >= 0 and not negated(plain, phrase)]
    if own:
        return list(dict.fromkeys(value for _, value in sorted(own, key=lambda hit: hit[0])))
    return [SYNONYMS[word] for word in mentions(plain, SYNONYMS) if SYNONYMS[word] in enum]


NEGATION = re.compile(r"\b(?:forget|not|no|never|without|skip|drop|instead of|rather than|other than|don'?t use|"
                      r"except)\s+(?:\w+\s+){0,1}$")


def negated(text: str, value: str) -> bool:
    """Whether every mention of an enum value is negated ("forget RFM", "not weekly", "rather than last click")."""
    spots = [m.start() for m in rx.finditer(rf"(?<![\w]){re.escape(value.replace('_', ' '))}", re.sub(r"[_-]", " ",
                                                                                                  text))]
    return bool(spots) and all(NEGATION.search(text[max(0, i - 30):i]) for i in spots)


def _position(text: str, phrase: str) -> int:
    """Where a phrase stands in the text as whole words (a hyphen reads as a space), or -1."""
    first, *rest = phrase.lower().split() or [""]
    words = [re.escape(first) + (r"(?:er|est)?" if rest and first.isalpha() else ""), *map(re.escape, rest)]
    m = rx.search(r"(?<![\w])" + r"[\s-]+".join(words) + r"(?![\w])", text)  # "highest-value": "high value"
    return m.start() if m else -1


def best_name_match(text: str, names: dict[str, str]) -> list[str]:
    """The value of the name sharing most words with the text (at least two, or one for one-word names); plurals
    count as their singular ("the emoji subject lines" shares two words with "Subject line style")."""
    def stems(words: set[str]) -> set[str]:
        return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words}
    words = stems(set(re.findall(r"[a-z0-9]+", text.lower())))
    best, best_shared = None, 0
    for name, value in names.items():
        name_words = stems(set(re.findall(r"[a-z0-9]+", name.lower())) - NAME_STOP)
        shared = len(words & name_words)
        if shared > best_shared and (shared >= 2 or len(name_words) == 1):
            best, best_shared = value, shared
    return [best] if best else []


def quoted_text(text: str) -> str | None:
    """The longest quoted passage (content to send), if any."""
    found = re.findall(r"(?<!\w)[\"“'‘]([^\"”’]{3,300}?)[\"”'’](?=\s|$|[,.;!?])", text)
    return max(found, key=len).strip() if found else None


def quoted_texts(text: str) -> list[str]:
    """Every quoted passage, in order (drafts a user gives to be checked: 'A' and 'B')."""
    return [q.strip() for q in re.findall(r"(?:(?<=\s)|(?<=^)|(?<=:))[\"“'‘]([^\"”’]{3,300}?)[\"”'’](?=\s|$|[,.;!?])",
                                          text)]


NAME_CUE = (r"\b(?:called|named|name it|call it|titled|label(?:led)? it|(?:under|with|by) the name|"
            r"(?:the )?name (?:should be|will be|is)|name:)\s+")
NAME = (r"([A-Za-z0-9][\w&'-]*(?:\s+(?:(?-i:(?!(?:so|and|to|for|because|with|that|which|from|on|by|then|please|pls|"
        r"we|it|them|at|as|but|or|if|when|tomorrow|today|next|this|starting|effective)\b))[A-Za-z0-9][\w&'-]*|&))*)")
"""A name written without quotes: its words up to the first that starts the rest of the sentence, in lower case ("a list
called Shop regulars so we can email them" names "Shop regulars"; "called champs sms" and "called Save Them" too)."""


def quoted_name(text: str) -> str | None:
    """A name given after 'called', 'named', 'call it' (quoted or in capitals), else in quotes, else after 'as' in
    capitals ('save it as VIP Early Access')."""
    if m := rx.search(NAME_CUE + r"[\"“'‘]([^\"”'’]{2,80})[\"”'’]", text, re.I):
        return m.group(1).strip()
    if m := rx.search(NAME_CUE + NAME, text, re.I):
        return m.group(1).strip()
    if m := re.search(r"(?<!\w)[\"“'‘]([^\"”'’]{2,80})[\"”'’](?!\w)", text):  # not the ' of "don't"
        return m.group(1).strip()
    if m := re.search(r"\b(?:called|named|as)\s+([A-Z][\w-]*(?:\s+[A-Z0-9][\w-]*){0,5})", text):
        return m.group(1).strip()
    if m := SAVED_AS.search(text):
        return m.group(1)
    return None


SAVED_AS = re.compile(r"\b(?:save|saved|store|keep|export)\s+(?:[\w'-]+\s+){0,4}?as\s+(?!an?\b|the\b|audiences?\b)"
                      r"([a-z0-9]+(?:[-_][a-z0-9]+)+|[a-z]+\d[\w-]*)\b", re.I)
"""A name written as a slug after "save … as" ("save the high ones as q4-rescue", "save Champions as champs-oct")."""


def listed_ids(text: str, noun: str) -> list[int]:
    """Integers listed after a noun ('customer ids 101, 202 and 303', 'customers 7 and 9', 'the customer numbers of
    three regulars from the till: 1012, 2044 and 3188') → [101, 202, 303]."""
    m = rx.search(rf"\b{re.escape(noun)}s?(?:\s+(?:ids?|numbers?|#))?(?:\s+(?:of|for)\s[^.:\d]{{0,50}}:)?\s*:?\s*"
                  rf"((?:#?\d+(?:\s*(?:,|and|&|or)\s*)?)+)", text, re.I)
    return [int(x) for x in re.findall(r"\d+", m.group(1))] if m else []
