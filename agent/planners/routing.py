"""Which tool fits a request: embeddings, word overlap and the vocabulary the tools declare.

Each registered tool is known by its description, its example requests and its declared `concepts` (the
metrics and ideas it answers, with the words people use: "ctr": "click-through rate" …). A request scores
0.8 × the mean of its two best cosine similarities (bundled int8 MiniLM) to one tool's texts + 0.2 × word
overlap + a bonus for every declared concept it names (shared concepts count for less). Phrases are matched as
whole words, longest first, so "consent policy" is not also "consent". Below `ABSTAIN` nothing fits; between
`NEAR` and `ABSTAIN` the planner asks which of the two closest tools was meant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from agent.planners.extract import rx
from tools.registry import ToolSpec

ABSTAIN = 0.38        # below this nothing fits well enough to run (calibrated on the tuned split, docs/agent.md)
NEAR = 0.30           # … but above this, name the two closest tools ("did you mean …?")
CONCEPT_WEIGHT = 0.08  # per declared concept the request names, divided among the tools declaring it
CONCEPT_CAP = 3       # at most this many concept hits count
STOP = set("a an the of to in on for by and or with what which who how is are was were do does did our my we i you "
           "me us it its this that these those be been from at as than then show give tell please can could would "
           "should will much many per vs".split())


def words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP and len(w) > 2}


def _normal(text: str) -> str:
    return " " + re.sub(r"[\s\-_/]+", " ", text.lower()) + " "


@dataclass
class ToolIndex:
    names: list[str]
    owners: np.ndarray          # example row → tool index
    vectors: np.ndarray         # normalised example embeddings
    words: list[set[str]]       # vocabulary per tool
    phrases: dict[str, list[int]]  # declared concept phrase (normalised) → tools declaring it
    phrases_of: list[list[str]]    # per tool: its declared concept phrases
    firsts: list[tuple[str, str, list[int]]]  # (" " + first word, phrase, tools): tried if the text has it


@lru_cache(maxsize=4)
def _index(signature: tuple[str, ...]) -> ToolIndex:
    from knowledge.embeddings import embed_cached
    from tools.registry import load_tools

    registry = load_tools()
    names = [n for n in signature if n in registry]
    texts, owners, vocab, phrases = [], [], [], {}
    for i, name in enumerate(names):
        spec = registry[name]
        examples = [spec.description, name.replace("_", " "), *spec.requests]
        texts += examples
        owners += [i] * len(examples)
        vocab.append(set().union(*(words(t) for t in examples)))
        for phrase in concept_phrases(spec):
            phrases.setdefault(_normal(phrase).strip(), []).append(i)
    merged = {p: sorted(set(owners_)) for p, owners_ in phrases.items()}
    return ToolIndex(names, np.array(owners), embed_cached(texts), vocab, merged,
                     [sorted(p for p, o in merged.items() if i in o) for i in range(len(names))],
                     [(" " + (p.split() or [""])[0], p, o) for p, o in merged.items()])


@cache
def _phrase_pattern(phrase: str) -> re.Pattern:
    """A declared phrase as whole words, each word allowing its inflections ("conversion rate" → "conversions
    rates"). Compiled once per process, when a text first contains its first word: 400+ phrases overflow `re`'s
    own cache, which recompiled them all on every request."""
    pattern = r"(?:s|es|ed|d|ing|ly)? ".join(map(re.escape, phrase.split()))
    return re.compile(rf"(?<= ){pattern}(?:s|es|ed|d|ing|ly)?(?= |[?.,!;:'\")])")


DEFINING = re.compile(r"\b(?:define[sd]?|definitions?|meaning of|stand for|stands for|what is meant by|"
                      r"how (?:is|are|do we|should we) \w+ (?:calculated|computed|defined|measured))\b", re.I)


_DOC = (r"(?:[\w-]+ ){0,2}(?:playbooks?|guides?|guidelines?|polic(?:y|ies)|handbook|docs|documentation|wiki|manual|"
        r"rules|rulebook|standards|sop|knowledge base|terms)")
DOCUMENT = re.compile(rf"\b(?:what (?:does|do|did|would) (?:our|the|my) {_DOC} (?:say|recommend|suggest|advise)"
                      rf"|according to (?:our|the) {_DOC}|(?:does|do|would|will) (?:our|the) {_DOC} (?:allow|permit|forbid|let|"
                      r"say|mention|cover|ban|tell|recommend|advise|want|prefer))\b",
                      re.I)  # "what does our playbook say about angry reviews?": a document's words, not the data
DOCUMENT_TOOL = re.compile(r"\b(?:say about|according to)\b")  # … which the tool declaring these phrases answers
COUNTING = re.compile(r"^\W*(?:how many|how much|what (?:share|percentage|percent|proportion|fraction|number) of|"
                      r"what(?:'s| is) the (?:number|share|count|percentage) of)\b", re.I)
"""A question asking for a count or a share ("How many people unsubscribed in September?") wants a number from the
data: a document can't answer it, whatever words it shares with one."""


def concept_phrases(spec: ToolSpec) -> set[str]:
    """The phrases that name a tool's concepts: the synonyms, and the concept itself when it is an acronym."""
    found = set()
    for concept, synonyms in spec.concepts.items():
        found |= {s for s in synonyms if "*" not in s}  # (a phrase with a gap names a verb: steps.said_verb)
        if len(concept) <= 4 and concept.isalpha():
            found.add(concept)
    return found


def concept_hits(text: str, idx: ToolIndex) -> np.ndarray:
    """Per tool: the declared concepts the text names, each shared concept divided among the tools declaring it."""
    t = _normal(text)
    spans = []
    for first, phrase, owners in idx.firsts:
        if first not in t:  # the phrase's first word starts a word of the text, or the phrase cannot match
            continue
        for m in _phrase_pattern(phrase).finditer(t):
            spans.append((m.start(), m.end(), owners))
    taken: list[tuple[int, int]] = []
    hits = np.zeros(len(idx.names))
    for start, end, owners in sorted(spans, key=lambda s: s[0] - s[1]):  # longest first
        if any(start < b and a < end for a, b in taken):
            continue
        taken.append((start, end))
        for i in owners:
            hits[i] += 1 / len(owners)
    return np.minimum(hits, CONCEPT_CAP)


def score_tools(text: str, tools: dict[str, ToolSpec]) -> list[tuple[str, float]]:
    """Tools ranked by fit: 0.8 × mean of the two best example similarities + 0.2 × word overlap + concepts.

    Averaging the two closest examples (instead of taking the single closest) keeps one stray example
    of another tool from winning on a shared phrase ("A/B test", "attribution")."""
    from knowledge.embeddings import embed

    idx = _index(tuple(sorted(tools)))
    sims = idx.vectors @ embed([text])[0]
    order = np.lexsort((-sims, idx.owners))          # by tool, best first
    first = np.r_[0, np.flatnonzero(np.diff(idx.owners[order])) + 1]
    top1 = sims[order[first]]
    second = sims[order[np.minimum(first + 1, len(order) - 1)]]
    same = idx.owners[order[np.minimum(first + 1, len(order) - 1)]] == idx.owners[order[first]]
    best = np.where(same, (top1 + second) / 2, top1)
    q = words(text)
    overlap = np.array([len(q & w) / max(len(q), 1) for w in idx.words])
    hits = concept_hits(text, idx)
    if DEFINING.search(text):  # "how do we define ROAS?": what a word means, not its value
        hits = np.where([bool(DEFINING.search(" ".join(idx.phrases_of[i]))) for i in range(len(idx.names))],
                        2 * hits, 0.0)  # … and the glossary's own words count double
    elif DOCUMENT.search(text):
        hits = np.where([bool(DOCUMENT_TOOL.search(" ".join(idx.phrases_of[i]))) for i in range(len(idx.names))],
                        2 * hits, 0.0)
    score = 0.8 * best + 0.2 * overlap + CONCEPT_WEIGHT * hits
    if COUNTING.search(text) and not DOCUMENT.search(text):
        score -= np.array([0.5 * bool(DOCUMENT_TOOL.search(" ".join(idx.phrases_of[i]))) for i in range(len(idx.names))])
    order = np.argsort(-score)
    return [(idx.names[i], float(score[i])) for i in order]


def did_you_mean(ranked: list[tuple[str, float]], tools: dict[str, ToolSpec]) -> str | None:
    """'Did you mean …?' naming the two closest tools, when the best one came near the threshold."""
    close = [name for name, score in ranked if score >= NEAR][:2]
    if not close:
        return None
    options = " or ".join(f"**{n.replace('_', ' ')}** ({_lower_first(tools[n].description)})" for n in close)
    return (f"I'm not sure which analysis you mean, and I'd rather not guess. Did you mean {options}? "
            "Say which, or rephrase the question.")


# What no tool can answer or do, whatever the words share with the tools: data the warehouse does not hold (it holds
# the team's own marketing data) and changes no action makes. Checked before routing; the answer says why.
OUT_OF_SCOPE: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"\b(competitors?'?s?|rivals?'?|the competition|market share|industry (average|benchmark)s?|"
                r"other brands?)\b", re.I),
     "the warehouse holds your own marketing data (spend, orders, customers, campaigns, experiments, reviews), "
     "nothing about other companies"),
    (re.compile(r"\b(weather|temperatures?|rainfall|stock price|share price|stock market|inflation|interest rates?|"
                r"the economy|recession)\b", re.I),
     "the warehouse holds no weather, market or economic data, so I can't tie your results to it"),
    (re.compile(r"\b(opt|unsubscribe|resubscribe|subscribe)\b.{0,40}\b(out|in|from|to)\b.{0,30}"
                r"\b(e-?mails?|sms|texts?|push|newsletter|marketing)\b"
                r"|\b(give|grant|add|set|mark|record|change|update|remove|revoke|withdraw)\b.{0,50}"
                r"\b(consent|opt-?ins?|opt-?outs?)\b", re.I),
     "no Northstar action changes consent, by design: under the consent and privacy policy consent comes from the "
     "customer (preference centre, unsubscribe link, STOP reply) and is recorded by the system that collects it; "
     "Northstar reads it again for every audience and send"),
)


OFFLINE_MEDIA = re.compile(r"\b(tv|television|radio|billboards?|out[- ]of[- ]home|ooh|print ads?|magazines?|"
                           r"newspapers?|podcasts?|grps?|trps?|direct mail)\b", re.I)


def out_of_scope(text: str, channels: list[str] = ()) -> str | None:
    """Why no tool can answer or do what the text asks, when that is so; None otherwise. Quoted passages are
    content to send ("… Reply STOP to opt out"), not what is asked. Media the warehouse holds no channel for (TV,
    radio, print, out-of-home) are out of scope only when the question is about them alone."""
    asked = re.sub(r"(?<!\w)[\"“'‘][^\"”’]{3,300}?[\"”'’](?=\s|$|[,.;!?])", " ", text)
    if why := next((why for pattern, why in OUT_OF_SCOPE if pattern.search(asked)), None):
        return why
    media = {re.sub(r"(?<=[a-z]{3})s$", "", m.group(1).lower()) for m in OFFLINE_MEDIA.finditer(asked)} - {
        c.lower() for c in channels}
    efforts = re.sub(r"\b(?:big|major|final|seasonal|holiday|tv|television|radio|\w+ly)\s+push\b", " ", asked,
                     flags=re.I)  # "a big TV push": an effort in that medium, not the push channel
    held = [c for c in channels if rx.search(rf"\b{re.escape(c)}\b", efforts, re.I)]
    if media and not held:
        named = " or ".join(m.upper() if len(m) <= 4 else m for m in sorted(media))
        return (f"the warehouse holds no {named} data: its channels are "
                f"{', '.join(channels)}")
    return None


def cannot_help(tools: dict[str, ToolSpec], why: str | None = None) -> str:
    """What the planner can do instead, after why it cannot answer (`why`: the reason known, else "rather not
    guess")."""
    listing = "; ".join(f"{s.name.replace('_', ' ')} ({_lower_first(s.description)})"
                        for s in tools.values() if not s.approval)
    opening = (f"I can't answer that from the marketing warehouse: {why}. " if why else
               "I can't answer that from the marketing warehouse, and I'd rather not guess. ")
    return (opening + f"Here is what I can do: {listing}. I can also draft audiences, sends, budget changes and "
            "campaigns for an approver.")


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


BREAKDOWN_PENALTY = 0.12  # an analysis that cannot give the breakdown a count or rate is asked by


def breakdown(analyses: list[tuple], tools: dict[str, ToolSpec]) -> list[tuple]:
    """(score, eligible, name, evidence, sql, args) per analysis. A count or rate asked per a column ("open leads per
    industry", "which subject lines had the best open rate") that query_data's SELECT groups by: an analysis none of
    whose fields can take that column loses BREAKDOWN_PENALTY, so a model that fits the words ("leads" →
    score_leads) does not answer another question."""
    sql = next((a[4] for a in analyses if a[2] == "query_data" and a[1] and a[4]), None) or ""
    group = re.match(r"SELECT (\w+) AS \w+, ", sql)
    out = []
    for score, eligible, name, found, _, args in analyses:
        spec = tools[name]
        takes = not group or name == "query_data" or group.group(1) in str(spec.json_schema()) or (
            group.group(1).replace("_", " ") in " ".join(concept_phrases(spec))) or group.group(1) in map(
            str, args.values())
        out.append((score - (0 if takes else BREAKDOWN_PENALTY), eligible, name, found))
    return out
