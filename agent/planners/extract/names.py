"""Names in a question: things the warehouse knows (channels, experiments, segments, audiences, tables), enum
values and the words marketers use for them, and quoted text ("call it 'VIP Early Access'").
"""

from __future__ import annotations

import re

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
ENUM_STOP = {"customers", "customer"}  # enum values too common in questions to signal a choice
NAME_STOP = {"the", "a", "test", "of", "and"}  # words too common in names to tell them apart


def mentions(text: str, vocabulary) -> list[str]:
    """Vocabulary items mentioned in the text (case-insensitive, _ and - read as spaces), in order of appearance."""
    t = " " + re.sub(r"[_\-]", " ", text.lower()) + " "
    found = []
    for item in vocabulary:
        key = re.sub(r"[_\-]", " ", str(item).lower())
        if key and (pos := t.find(f" {key} ") if len(key) < 4 else t.find(key)) >= 0:
            found.append((pos, item))
    return [item for _, item in sorted(found)]


def enum_choices(text: str, enum: list) -> list:
    """Enum values the text names, in order of appearance; else the values its synonyms stand for."""
    return [value for value in mentions(text, enum) if value not in ENUM_STOP] or [
        SYNONYMS[word] for word in mentions(text, SYNONYMS) if SYNONYMS[word] in enum]


def best_name_match(text: str, names: dict[str, str]) -> list[str]:
    """The value of the name sharing most words with the text (at least two, or one for one-word names)."""
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    best, best_shared = None, 0
    for name, value in names.items():
        name_words = set(re.findall(r"[a-z0-9]+", name.lower())) - NAME_STOP
        shared = len(words & name_words)
        if shared > best_shared and (shared >= 2 or len(name_words) == 1):
            best, best_shared = value, shared
    return [best] if best else []


def quoted_text(text: str) -> str | None:
    """The longest quoted passage (content to send), if any."""
    found = re.findall(r"[\"“'‘]([^\"”’]{3,300}?)[\"”'’](?=\s|$|[,.;!?])", text)
    return max(found, key=len).strip() if found else None


def quoted_name(text: str) -> str | None:
    """A name given in quotes, or after 'called', 'named' or 'as' in capitals ('save it as VIP Early Access')."""
    if m := re.search(r"[\"“'‘]([^\"”'’]{2,80})[\"”'’]", text):
        return m.group(1).strip()
    if m := re.search(r"\b(?:called|named|as)\s+([A-Z][\w-]*(?:\s+[A-Z0-9][\w-]*){0,5})", text):
        return m.group(1).strip()
    return None
