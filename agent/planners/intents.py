"""Several intents in one message: the message cut into clauses, each a candidate step.

A message is cut at sentence ends, at semicolons, at "then", and at "and" / "also" / "plus" / "separately" when
a new clause starts after it (a question word, an auxiliary, an imperative; "+" and "&" join like "and"), and
before a reason ("…, it's saturated anyway"): "How did search do last week, and are reviews getting worse?" is two
clauses; "spend, ROAS and CPA by channel" stays one. The planner scores every clause on its own, and a clause that
fits no tool well is read as part of the clause before it.
"""

from __future__ import annotations

import re

STARTS = (r"how|what|which|who|whom|why|where|when|whether|is|are|was|were|do|does|did|can|could|should|would|will|"
          r"has|have|any|also|separately|plus|save|create|make|build|turn|export|schedule|send|queue|launch|apply|"
          r"update|move|shift|draft|write|generate|suggest|score|segment|check|run|find|show|give|tell|list|predict|"
          r"forecast|compare|flag|detect|analy[sz]e|read|plan|size|estimate|look|pull|put|set|book|email|text|"
          r"increase|cut|raise|reduce|bump|rank|route|cluster|split|break|summari[sz]e|search|prioriti[sz]e|"
          r"i'd|i'm|i|we|we're|let's|please|then|after that|afterwards|next")
SPLIT = re.compile(
    rf"(?<=[?!])\s+|(?<=[a-z0-9)\"'”’])\.\s+(?=[A-Z])|\s*;\s*|\s*,?\s*\b(?:and then|then)\b\s*|\s*(?:->|→|=>)\s*"
    rf"|\s*,?\s*(?:\b(?:and|also|plus|as well as|and separately|and also)\b|\s&|\s\+),?\s+(?=(?:{STARTS})\b)"
    rf"|\s*,\s+(?=(?:also|separately|plus|and)\b)|\s*(?:,|\s-)\s+(?=(?:it's|it is|that's|they're|since|because)\s)",
    re.IGNORECASE)  # "cut display by 20%, it's saturated anyway": the reason is a clause of its own


PREAMBLE = re.compile(  # greetings and apologies before the request: no clause of their own
    r"^\s*(?:(?:hi|hello|hey|morning|good (?:morning|afternoon))(?: all| team| there| both| everyone)?[,!.]*\s*)?"
    r"(?:(?:sorry|apologies)(?: if| for| to)[^,.!?]{0,60}[,.!?]\s*(?:but\s+)?|quick question[,:.!-]*\s*)?", re.I)
QUOTED = re.compile(r"(?<!\w)([\"“'‘])[^\"”'’]{3,300}?[\"”'’](?=\s|$|[,.;:!?])")


def clauses(text: str) -> list[str]:
    """The clauses of a message, each stripped of joining words and punctuation; quoted text is never cut."""
    quoted: list[str] = []

    def hide(match: re.Match) -> str:
        quoted.append(match.group(0))
        return f"\x00{len(quoted) - 1}\x00"

    hidden = PREAMBLE.sub("", QUOTED.sub(hide, text))
    parts = [p.strip(" ,.;-–—") for p in SPLIT.split(hidden) if p and p.strip(" ,.;-–—")]
    parts = [re.sub(r"^(?:and|also|plus|separately|and separately|and also)\b[\s,]*", "", p, flags=re.I) or p
             for p in parts]
    shown = [re.sub(r"\x00(\d+)\x00", lambda m: quoted[int(m.group(1))], p) for p in parts if p]
    return shown or [text]


# How a clause relates to the one before it (agent/planners/offline.py `spans`).
BACK = re.compile(r"\b(it|that|this|those|these|them|the same)\b", re.IGNORECASE)  # a clause pointing back …
CONTEXT = re.compile(  # a clause that states a fact the request works with ("we get 4k visitors a day")
    r"^(?:(?:we|i|our|we're|we've|i'm|i've)\s+(?!(?:want|need|would|wanna|wonder|am wondering|have to|must|"
    r"should|'d)\b)|(?:planning|currently|fyi|for context|context|background)\b"
    r"|(?:it's|it is|that's|they're|they are|since|because|as)\s+(?!(?:possible|ok|okay|fine)\b)"
    r"|[\w ]{2,30}\s(?:is|are|was|were)\s(?:about|around|roughly|~)?\s?[\d$€£]"
    r"|(?:customers?|clients?|users?|members?|donors?|supporters?)\s+(?:ids?\s+)?#?\d+(?:\s*(?:,|and|&)\s*#?\d+)+\s+"
    r"(?!(?:and|or)\b)[a-z])",  # "Customers 1043, 2210 and 5879 spoke at our webinar": who "them" is, later
    re.IGNORECASE)
PURPOSE = re.compile(r"\b(?:so (?:that )?(?:we|i|they|you|she|he) can|in order to)\b.*$", re.IGNORECASE)
"""Why the request is made ("… so we can send a thank-you"): not what it asks for."""
MODIFIER = re.compile(r"\b(?:this time|instead|only|too|as well|for once|please)\s*[.!?]*$", re.IGNORECASE)
CONSTRAINT = re.compile(r"^(?:but\s+|and\s+)?(?:keep|keeping|stay|staying|hold|holding|limit|limiting|cap|capping)\b"
                        r".{0,60}"
                        r"\b(?:within|under|below|at most|no more than|less than|max(?:imum)?|of where|as (?:it|they) "
                        r"(?:is|are))\b", re.IGNORECASE)
