"""Typos in the words the tools know: "affilate cpa yesterday?", "CPA on serach".

Names are matched exactly elsewhere (a channel is a filter, not a guess), so one slip of the keyboard used to drop
the channel and change the tool. A word is corrected only when it is neither an English word (the embedding
model's vocabulary) nor one the tools or the warehouse use, is at least five letters long, and is one edit (a
letter missing, added, changed, or two swapped) from exactly one word they use: a channel, a name the warehouse
holds, or a word of a tool's declared concepts. Quoted text and capitalised words (names, content to send) are
left as written.
"""

from __future__ import annotations

import re
from functools import lru_cache

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


def correct(text: str, tools: dict[str, ToolSpec], vocab: dict) -> str:
    """The text with slips in known words mended; everything else as written."""
    names = tuple(sorted({str(v) for kind in ("channel", "segment", "audience") for v in vocab.get(kind) or []}))
    known, targets = _lexicon(tuple(sorted(tools)), names)
    quoted = [m.span() for m in re.finditer(r"(?<!\w)[\"“'‘][^\"”’]{2,300}?[\"”'’]", text)]

    def mend(m: re.Match) -> str:
        word = m.group(0)
        low = word.lower()
        if (len(low) < MIN_LEN or word[0].isupper() and m.start() > 0 or low in known
                or low.rstrip("s") in known or low in english() or any(a <= m.start() < b for a, b in quoted)):
            return word
        near = [t for t in targets if one_edit(low, t) and not (t.startswith(low) or low.startswith(t))]
        return near[0] if len(near) == 1 else word

    return re.sub(r"[A-Za-z]+", mend, text)
