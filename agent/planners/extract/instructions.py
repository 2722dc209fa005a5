"""Instructions to act, read as data: the mood of a request and the budget changes it asks for.

`mood` tells an instruction ("Shift a tenth of display's budget to search", "Queue the e-mail for Thursday") from
a question or a what-if ("What would happen if we moved 20 % of search into social?"). `budget_changes` reads the
changes an instruction makes to per-channel daily budgets — set ("search to 3,300 a day"), raise or cut ("bump
social up 5 %", "cut video by a tenth"), move ("move 20k from display to email"), fund ("… and take the same amount
out of display") — and computes the new daily budgets against the current ones: a deterministic step, never a
guess. Amounts said per day, week or month are turned into daily amounts; an amount said without a period is
daily when it fits within the channel's daily budget, else spread over a 30-day month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.planners.extract import rx
from agent.planners.extract.quantities import MONTH

FRACTIONS = {"a tenth": 0.1, "one tenth": 0.1, "a fifth": 0.2, "one fifth": 0.2, "a quarter": 0.25,
             "one quarter": 0.25, "a third": 1 / 3, "one third": 1 / 3, "half": 0.5, "a half": 0.5,
             "two thirds": 2 / 3, "three quarters": 0.75, "a twentieth": 0.05}
MULTIPLES = {"double": 1.0, "twice": 1.0, "triple": 2.0, "treble": 2.0, "quadruple": 3.0, "halve": 0.5, "half": 0.5}
"""A multiple said as a word: the share of the budget added (up) or taken (down)."""
UP = (r"increase|raise|bump|boost|grow|lift|up|add|top up|push up|scale up|scale|ramp up|double|triple|treble|quadruple|"
      r"more on|invest more in|put more")
DOWN = (r"cut|reduce|lower|decrease|trim|drop|scale back|pull back|dial back|dial down|ease off|pare back|wind down|"
        r"(?:pull|scale|dial|pare|bring|wind) [a-z]+ (?:back|down)|"  # "pull display back 15%"
        r"slash|halve|shrink|take|remove|less on|spend less")
MOVE = r"move|shift|reallocate|transfer|redirect|switch|divert|rebalance|reassign|swap|fund|put|send|give|allocate"
INSTRUCTION = re.compile(  # an imperative verb at the start of the request or of a clause (after politeness)
    rf"(?:^|[-–—:;>→.!]\s|,\s|\bso\s)\s*(?:(?:ok|okay|right|great|good|now|then|so|and|please|pls|kindly|go ahead and|"
    rf"we|we'?ll|we will|"
    rf"just|let'?s|let us|can you|could you|would you|will you|i want you to|i'd like you to|i need you to|we need to|"
    rf"we want to|would it be possible to|is it possible to|would you mind|could you possibly|could we|can we please|"
    rf"can we|i want to|i'd like to|time to)[\s,]+)*(?:{UP}|{DOWN}|{MOVE}|set|make|save|create|build|export|turn|"
    rf"schedule|programme|program|tweak|"
    rf"queue|book|launch|email|e-mail|text|sms|push|apply|implement|enact|execute|activate|roll out|go live|"
    rf"update|change|adjust|pause|resume|upload|sync|store|keep|mail|message|notify|ship|deploy|start|pull|grab|"
    rf"gather|collect|compile|load|assemble|draft|prepare|plan|reschedule|postpone|move|bring|dial|ramp|pare|"
    rf"kill|stop|zero out|shut off|shut down|switch off)\b"
    rf"(?!\s+(?:me|us)\b(?!\s+(?:an?|the)\s+(?:[\w-]+\s+){{0,2}}(?:audience|list|campaign|send)))", re.I)
CHANNEL_VERB = re.compile(r"\b(?:email|e-mail|text|sms|push|mail|message)$", re.I)
CHANNEL_OBJECT = re.compile(r"^\s+(?:the|our|all|every|them|those|these|it|this|that|customers?|people|users?|"
                            r"buyers|shoppers|members|vips?|winback|audience)\b|['\"“‘]", re.I)
LIVE = re.compile(r"\b(?:put|make|push|take|set|go|switch|turn)\b[^.?!]{0,40}\blive\b|\bgo ahead\b|"
                  r"\b(?:apply|implement|enact|action|adopt|execute|use|activate)\b", re.I)
HYPOTHETICAL = re.compile(
    r"\b(?:what if|what would|what happens|what'?d happen|would it(?! be possible)|would we|would that|should we|should i|"
    r"could we|can we afford|how should|how would|how much would|if we|if i|suppose|imagine|simulate|"
    r"scenario|what-if|hypothetical(?:ly)?|don'?t change|do not change|without changing|don'?t (?:apply|touch)|"
    r"just (?:a|as a) (?:test|what|thought|check)|is it worth|worth it\?|plan only|nothing goes out|"
    r"(?:don'?t|do not) send|just (?:a |the )?plan\b)", re.I)
FROM_TO = re.compile(r"\bfrom\s+[$€£]?\d[\d,.]*k?\s*(?:a day|/day|per day|daily)?\s+to\s+[$€£]?\d", re.I)
SEND_SAID = re.compile(r"(?<!\w)[\"“'‘][^\"”’]{3,300}[\"”'’].*\b(?:\d{1,2}(?::\d{2})?\s*[ap]\.?m\b|at \d{1,2}(?::\d{2})?\b)"
                       r"|\b(?:\d{1,2}(?::\d{2})?\s*[ap]\.?m|at \d{1,2}(?::\d{2})?)\b.*(?<!\w)[\"“'‘][^\"”’]{3,300}[\"”'’]", re.I)
FOR_APPROVAL = re.compile(r"\b(?:put|send|submit|raise|pass|push|queue|get)\s+(?:it|that|this|them|those|these)\s+"
                          r"(?:through|in|up|across|over)?\s*(?:for (?:approval|sign-?off|review)|to (?:the )?approvers?)"
                          r"|\bput (?:it|that|this) through\b|\b(?:draft|set) (?:it|that|this) up\b", re.I)
"""A request to draft what was just said, for a person to approve ("… Could you put that through for approval?")."""
SIGNED = re.compile(r"\b[a-z]+\s+[+\-−]\s?\d+(?:\.\d+)?\s?(?:%|k\b|percent\b)", re.I)
"""A change written as a sign ("search +10% from mon"): an instruction without a verb."""
CONDITION = re.compile(r"\b(?:and )?(?:only )?if (?:it|that|this|the (?:numbers?|split|plan|result)s?)(?:'s| is| looks| seems|"
                       r" makes sense| checks out)(?: \w+)?\s*,?\s*(?:then\s+)?", re.I)
WANTS_DONE = re.compile(r"\b(?:wants?|would like|'d like|needs?|asked for)\s+(?:(?:the|our|its|their|all|[a-z]+'s)\s+)?"
                        r"(?:[a-z]+\s+){0,3}?(?:cut|raised|increased|reduced|lowered|moved|shifted|set|paused|stopped|"
                        r"doubled|halved|trimmed|bumped|scheduled|sent|launched|saved|created)\b", re.I)
"""A change relayed as someone's wish ("Priya wants the display budget cut by 10% from Monday"): an instruction."""
NAMING = re.compile(r"\b(?:name|call|label) (?:it|them|this|that|the (?:audience|list))\b|\b(?:saved?|stored?|kept|keep|"
                    r"put|stick|stuck|added?|dump)\b[^.?!]{0,60}?\b(?:as|in|into|to) (?:an? |the |one )?(?:new )?"
                    r"(?:audience|list)\b|^\W*audience\s*:", re.I)
"""A thing to be saved and its name ("… saved as an audience called 'Holiday VIP'", "audience: top 500 by clv, name
it vip-500"): said without an imperative verb, still an instruction."""
QUESTION_START = re.compile(r"^\s*(?:how|what|which|who|whom|why|where|when|is|are|was|were|do|does|did|can|could|"
                            r"should|would|will|has|have|any)\b", re.I)


def mood(text: str) -> str:
    """'instruction' (do something), 'hypothetical' (what if … / don't change anything) or 'question'."""
    text = CONDITION.sub(" ", text)  # "if it's sensible, put it live": the approver's check, not a what-if
    if HYPOTHETICAL.search(text):
        return "hypothetical"
    verb = INSTRUCTION.search(re.sub(r"\b(\w+) by \1\b", " ", text))  # "send by send", "week by week": a grain
    if verb and CHANNEL_VERB.search(verb.group(0)) and text.rstrip().endswith("?") and not CHANNEL_OBJECT.search(
            text[verb.end():]):
        verb = None  # "ok and just email + affiliate?": channels named in a question, not "email the VIPs"
    if verb or ((LIVE.search(text) or FROM_TO.search(text) or (SEND_SAID.search(text) and "?" not in text)
                 or NAMING.search(text) or FOR_APPROVAL.search(text) or (SIGNED.search(text) and "?" not in text)
                 or WANTS_DONE.search(text) or GOT_DONE.search(text))
                and not QUESTION_START.search(text)):
        return "instruction"  # (… or "video from 560 to 500 a day pls": a change said without a verb; "winback
    return "question"  # october sms 'Your faves are back' fri 8am": a message and a time to send it)


def leading_verb(text: str) -> str | None:
    """The imperative verb an instruction starts with ("plan" in "please plan an onboarding campaign"; "get a push
    campaign planned …" says "plan")."""
    if done := GOT_DONE.search(text):
        return DONE[done.group(1).lower()]
    verb = INSTRUCTION.search(text)
    return re.findall(r"[a-z-]+", verb.group(0).lower())[-1] if verb else None


DONE = {"planned": "plan", "scheduled": "schedule", "drafted": "draft", "launched": "launch", "sent": "send",
        "created": "create", "saved": "save", "booked": "book"}
GOT_DONE = re.compile(r"^\W*(?:(?:please|pls|can you|could you|can we|let'?s)\s+)?get\s+(?!me\b|us\b)"
                      r"(?:[\w'-]+\s+){0,6}?(" + "|".join(DONE) + r")\b", re.I)
"""A request said as "get X done" ("get a churn-prevention push campaign planned for …"): the verb is the done one."""


@dataclass
class Quantity:
    """An amount or a share said in an instruction."""

    amount: float | None = None  # money, in the period `per` (None: not said)
    share: float | None = None   # a fraction of a channel's budget
    per: str | None = None       # "day", "week", "month", or None when not said
    same: bool = False           # "the same amount": the delta of the change before


AMOUNT = re.compile(r"(?<![\w.])[$€£]?\s?(\d+(?:\.\d+)?)\s?(k|m|thousand|million)?\b(?!\s?(?:%|percent|pp|days?\b|"
                    r"weeks?\b|months?\b|years?\b|customers?\b|st\b|nd\b|rd\b|th\b|am\b|pm\b))"
                    r"(?:\s*(?:a|per|/|each|every)\s*(day|week|month)\b|\s+(daily|weekly|monthly)\b)?", re.I)
SHARE = re.compile(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b|pct\b)|\b(" + "|".join(
    sorted(map(re.escape, FRACTIONS), key=len, reverse=True)) + r")\b|\b(" + "|".join(MULTIPLES) + r")\b", re.I)
SAME = re.compile(r"\b(?:the same(?: amount)?|that amount|it|that|them|the difference|the money)\b", re.I)
PERIOD_SAID = re.compile(r"\b(?:this|next|over the|for the|per|a|each) (week|month)\b|\b(weekly|monthly)\b", re.I)


def _quantity(text: str) -> Quantity | None:
    """The first share or amount in a piece of an instruction."""
    low = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())
    low = rx.sub(rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}|\b(?:19|20)\d\d\b|"
                 rf"\b{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\bat \d{{1,2}}\b", " ", low)  # dates are no amounts
    share, amount = SHARE.search(low), AMOUNT.search(low)
    if share and (not amount or share.start() <= amount.start() or share.group(1)):
        if share.group(1):
            return Quantity(share=float(share.group(1)) / 100)
        if share.group(2):
            return Quantity(share=FRACTIONS[share.group(2).lower()])
        return Quantity(share=MULTIPLES[share.group(3).lower()])
    if amount:
        value = float(amount.group(1)) * {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}.get(
            (amount.group(2) or "").lower(), 1)
        per = amount.group(3) or {"daily": "day", "weekly": "week", "monthly": "month"}.get(
            (amount.group(4) or "").lower())
        if per is None and (said := PERIOD_SAID.search(low)):
            per = said.group(1) or {"weekly": "week", "monthly": "month"}[said.group(2).lower()]
        return Quantity(amount=value, per=per)
    if SAME.search(low):
        return Quantity(same=True)
    return None


def _daily(quantity: Quantity, base: float) -> float:
    """A quantity as a daily amount against a channel's current daily budget `base`."""
    if quantity.share is not None:
        return quantity.share * base
    per = quantity.per or ("day" if quantity.amount <= base else "month")
    return quantity.amount / {"day": 1, "week": 7, "month": 30}[per]


EVERY = re.compile(r"\b(?:every|all|each)(?: of our| our| the)? channels?\b|\bacross the board\b|\bacross all\b", re.I)
EXCEPT = re.compile(r"\b(?:except(?: for)?|but not|other than|apart from|excluding|besides)\b(.*)", re.I)


STOP = re.compile(r"\b(?:pause|stop|kill|zero out|turn off|switch off|shut off|shut down|switch off)\b", re.I)


def _roles(piece: str, channels) -> list[tuple[str, str]]:
    """(channel, role) in order: role 'source' after from/out of/off, 'target' after to/into, 'base' for 'a tenth of
    display's budget', else 'subject'; 'every channel except search' names the others."""
    low = piece.lower()
    if EVERY.search(low):
        left_out = EXCEPT.search(low)
        return [(c, "subject") for c in channels
                if not (left_out and rx.search(rf"(?<![\w-]){re.escape(c.lower())}(?![\w-])", left_out.group(1)))]
    found = []
    for channel in channels:
        for m in rx.finditer(rf"(?<![\w-]){re.escape(channel.lower())}s?(?![\w-])", low):  # "affiliates" too
            before = low[max(0, m.start() - 16):m.start()]
            if re.search(r"\b(?:from|out of|off|away from)\s+(?:the\s+|our\s+)?$", before):
                role = "source"
            elif re.search(r"\b(?:to|into|onto|towards|toward|in|for)\s+(?:the\s+|our\s+)?$", before):
                role = "target"
            elif re.search(r"\bof\s+(?:the\s+|our\s+)?$", before):
                role = "base"
            else:
                role = "subject"
            found.append((m.start(), channel, role))
    return [(channel, role) for _, channel, role in sorted(found)]


def _direction(piece: str) -> str | None:
    low = piece.lower()
    up, down = rx.search(rf"\b(?:{UP})(?:s|es|d|ed|ing)?\b|\bup\b|\bmore\b|\bhigher\b|(?<![\w.])\+\s?\d", low), rx.search(
        rf"\b(?:{DOWN})(?:s|es|d|ed|ing)?\b|\bdown\b|\bless\b|\blower\b|(?<![\w.-])[-−–]\s?\d", low)  # "reduces …",
    # "email +25%, social -20%": a sign said with the share
    if up and down:
        return "up" if up.start() < down.start() else "down"
    return "up" if up else "down" if down else None


def _pieces(text: str) -> list[str]:
    """An instruction cut where a new change starts ('…, and take the same amount out of display')."""
    parts = re.split(r"\s*(?:;|,\s*(?:and\s+|then\s+)?|\band\s+(?:then\s+)?|\bthen\s+|\.\s+)(?=(?:also\s+)?(?:(?:"
                     rf"{UP}|{DOWN}|{MOVE}|set|fund|leave|keep|make|with)\b|[a-z]+\s+[+\-−–]\s?\d))", text,
                     flags=re.I)  # (… or "…, social -20%": a channel and a signed share)
    return [p for p in parts if p.strip()]


def budget_changes(text: str, channels, current: dict[str, float]) -> dict[str, float] | None:
    """New daily budgets an instruction asks for, computed against `current` (channel → daily budget); None when
    the text asks for no change it can compute (a channel without a current budget, or no amount)."""
    if not current:
        return None
    new = dict(current)
    changed: dict[str, float] = {}
    last_delta: float | None = None
    said: list[str] = []  # the channels of the change before: "make it 1,500" changes them again
    for piece in _pieces(text):
        roles = _roles(piece, [c for c in channels if c in current])
        quantity = _quantity(piece)
        if not roles and said and quantity and quantity.amount is not None and _direction(piece) is None \
                and re.search(r"\b(?:it|that|them|instead)\b", piece, re.I):
            for channel in said:
                changed[channel] = new[channel] = _daily(Quantity(amount=quantity.amount, per=quantity.per or "day"),
                                                         current[channel])
            continue
        if not roles and said and quantity and quantity.share is not None and rx.search(
                r"\b(?:it|its|them|their)\b", piece, re.I):
            roles = [(channel, "subject") for channel in said]  # "Display is saturated. Cut it by 15 %."
        if not roles:
            continue
        said = [channel for channel, _ in roles]
        if quantity is None and STOP.search(piece):  # "pause display from tomorrow": its budget to nothing
            for channel in said:
                changed[channel] = new[channel] = 0.0
            continue
        set_to = _set_amounts(piece, roles)
        if set_to:
            for channel, daily in set_to.items():
                changed[channel] = new[channel] = daily
            continue
        if quantity is None:
            continue
        sources = [c for c, r in roles if r == "source"]
        targets = [c for c, r in roles if r == "target"]
        bases = [c for c, r in roles if r == "base"]
        subjects = [c for c, r in roles if r == "subject"]
        if quantity.same:  # "… and take the same amount out of display", "give it to search"
            if last_delta is not None:
                up = _direction(piece) == "up"
                for channel, role in roles:
                    sign = 1 if role == "target" or (role != "source" and up) else -1
                    changed[channel] = new[channel] = new[channel] + sign * last_delta
            continue
        if targets and (sources or bases or (subjects and _direction(piece) != "up")):
            source = (sources or bases or subjects)[0]
            delta = _daily(quantity, new[(bases or [source])[0]])
            for target in targets:
                changed[target] = new[target] = new[target] + delta
            changed[source] = new[source] = new[source] - delta * len(targets)
            last_delta = delta
            continue
        direction = _direction(piece)
        movers = subjects + bases + targets + sources
        if direction is None or not movers:
            continue
        sign = 1 if direction == "up" and not sources else -1
        for channel in movers:
            delta = _daily(quantity, new[channel])
            changed[channel] = new[channel] = new[channel] + sign * delta
            last_delta = delta
    if not changed:
        return None
    return {channel: round(max(value, 0.0), 2) for channel, value in changed.items()}


def _set_amounts(piece: str, roles: list[tuple[str, str]]) -> dict[str, float]:
    """'search to 3,300 a day', 'set social at 2k', '500 a day on email': new daily amounts said outright."""
    low = re.sub(r"(?<=\d),(?=\d{3}\b)", "", piece.lower())
    if rx.search(rf"\b(?:{UP}|{DOWN})\b", low) and re.search(r"\bby\b", low):
        return {}
    out = {}
    for channel, _ in roles:
        name = re.escape(channel.lower())
        m = (rx.search(rf"\b{name}(?:'s)?(?:\s+(?:daily|weekly|monthly|budget|spend|spending|the|to|up|down|should|"
                       rf"must|will|be|set|is|goes|go|going|moved|changed|"  # "social should be set to 1,000 a day"
                       rf"from\s+[$€£]?[\d.,]+k?(?:\s*(?:a day|/day|per day))?))*?\s+"
                       rf"(?:to|at|=)\s+(?!(?:{'|'.join(re.escape(c) for c, _ in roles)})\b)(.{{0,30}})", low)
             or rx.search(rf"^(.{{0,30}}?)\s+(?:a|per)\s+day\s+(?:on|for)\s+{name}\b", low))
        if m and (quantity := _quantity(m.group(1))) and quantity.amount is not None and quantity.share is None:
            per = quantity.per or ("month" if quantity.amount > 50_000 else "day")
            out[channel] = quantity.amount / {"day": 1, "week": 7, "month": 30}[per]
    return out


def within_bound(changes: dict[str, float], current: dict[str, float], bound: float) -> dict[str, float]:
    """The changes scaled down together until every channel moves by at most `bound` of its current budget: a move
    stays balanced (what one channel gives, the other gets), and the direction is what was asked."""
    deltas = {c: new - current[c] for c, new in changes.items() if current.get(c)}
    factor = min([1.0] + [bound * current[c] / abs(d) for c, d in deltas.items() if d])
    return {c: round(current[c] + deltas[c] * factor, 2) if c in deltas else new for c, new in changes.items()}
