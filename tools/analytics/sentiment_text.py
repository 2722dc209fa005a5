"""Sentences, aspect mentions and negative phrases for analyze_sentiment, computed for all texts at once.

The results are exactly those of the per-text Python this replaces (`tests/tools/test_sentiment.py` keeps
that version as the reference and compares both on generated and real texts); only where the work happens moved:

* **Sentences**: one `re.split` over every text joined by a marker piece ("\\n\\0\\n"), instead of one call per
  text. The marker always ends up as a piece of its own (its newlines are split points whatever surrounds them),
  so counting markers gives each sentence's text. A text that contains the marker character is split per text.
* **Aspects**: Python's `re` took ~4 µs per sentence and aspect (1.4M searches on the 100k benchmark reviews).
  Each aspect's pattern is now translated from Python's own parse tree into RE2 and run by Arrow over all
  sentences in C++. The two engines decide the same sentences for the constructs the translation accepts
  (ASCII literals and ranges, classes, alternation, groups, repeats, `\\b`, `\\B`, `^`, `$`) on sentences made
  only of printable ASCII and tabs; every other sentence, and every aspect whose pattern uses anything else
  (look-arounds, back-references, scoped flags, non-ASCII literals), is searched with Python's `re` as before.
* **Phrases**: Arrow splits the lower-cased texts into `[a-z][a-z']*` words and dictionary-encodes them; the 2-
  and 3-grams are integer keys over token arrays, de-duplicated per text and counted with numpy.
"""

from __future__ import annotations

import re
import re._constants as sre
import re._parser as sre_parse
from itertools import compress

import numpy as np

from tools.analytics import vader

SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
MARK = "\x00"
NOT_PLAIN = r"[^\t\x20-\x7e]"
"""A sentence with any character outside printable ASCII and tab is searched with Python's re."""
STOP = frozenset("a an the and or but so of to in on for at by with from is was were are be been it its this that "
                 "my me i we our you your they them their he she his her as if than then too very just really "
                 "again after before after also there here have has had do did not no".split())
SIGNATURE = 0x9E3779B9


def split_sentences(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Every sentence of every text (`SENTENCES.split`, stripped, empty ones dropped) in order, and its text."""
    if not texts:
        return [], np.zeros(0, np.int64)
    joined = f"\n{MARK}\n".join(texts)
    if joined.count(MARK) != len(texts) - 1:  # the marker occurs in a text: per text
        pieces = [[s for s in map(str.strip, SENTENCES.split(t)) if s] for t in texts]
        return [s for p in pieces for s in p], np.repeat(np.arange(len(texts)), list(map(len, pieces)))
    pieces = list(map(str.strip, SENTENCES.split(joined)))
    marker = np.fromiter(map(MARK.__eq__, pieces), bool, len(pieces))  # (numpy's == drops trailing NULs)
    keep = ~marker & (np.fromiter(map(len, pieces), np.int64, len(pieces)) > 0)
    return list(compress(pieces, keep)), np.cumsum(marker)[keep]


class _Unsupported(Exception):
    pass


def _char(c: int) -> str:
    if c > 0x7F:
        raise _Unsupported
    return chr(c) if chr(c).isalnum() else f"\\x{c:02x}"


_CATEGORIES = {sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_NOT_DIGIT: r"\D", sre.CATEGORY_SPACE: r"\s",
               sre.CATEGORY_NOT_SPACE: r"\S", sre.CATEGORY_WORD: r"\w", sre.CATEGORY_NOT_WORD: r"\W"}
_ANCHORS = {sre.AT_BOUNDARY: r"\b", sre.AT_NON_BOUNDARY: r"\B", sre.AT_BEGINNING: "^",
            sre.AT_BEGINNING_STRING: r"\A", sre.AT_END: "$", sre.AT_END_STRING: r"\z"}


def _set(items) -> str:
    out = []
    for op, av in items:
        if op is sre.NEGATE:
            out.append("^")
        elif op is sre.LITERAL:
            out.append(_char(av))
        elif op is sre.RANGE:
            out.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is sre.CATEGORY and av in _CATEGORIES:
            out.append(_CATEGORIES[av])
        else:
            raise _Unsupported
    return "[" + "".join(out) + "]"


def _emit(items) -> str:
    out = []
    for op, av in items:
        if op is sre.LITERAL:
            out.append(_char(av))
        elif op is sre.NOT_LITERAL:
            out.append(f"[^{_char(av)}]")
        elif op is sre.ANY:
            out.append(".")
        elif op is sre.IN:
            out.append(_set(av))
        elif op is sre.BRANCH:
            out.append("(?:" + "|".join(_emit(b) for b in av[1]) + ")")
        elif op is sre.SUBPATTERN and not av[1] and not av[2]:
            out.append("(?:" + _emit(av[3]) + ")")
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and av[0] <= 1000 and (av[1] <= 1000 or av[1] == sre.MAXREPEAT):
            # greedy or lazy: the same sentences have a match either way
            hi = "" if av[1] == sre.MAXREPEAT else av[1]
            out.append(f"(?:{_emit(av[2])}){{{av[0]},{hi}}}")
        elif op is sre.AT and av in _ANCHORS:
            out.append(_ANCHORS[av])
        else:
            raise _Unsupported
    return "".join(out)


def to_re2(pattern: re.Pattern) -> str | None:
    """An RE2 pattern matching the same sentences of printable ASCII and tabs as `pattern` (searched with
    `pattern.search`, case-insensitively if it has re.I), or None if it uses a construct not translated."""
    try:
        tree = sre_parse.parse(pattern.pattern, pattern.flags)
        if tree.state.flags & ~(re.IGNORECASE | re.UNICODE) or not isinstance(pattern.pattern, str):
            return None
        return _emit(tree)
    except (_Unsupported, re.error, AttributeError, TypeError):
        return None


def aspect_hits(sentences: list[str], patterns: list[re.Pattern]) -> tuple[np.ndarray, np.ndarray]:
    """(sentence, pattern) index pairs where `pattern.search(sentence)` matches, sentence-major in order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    hits = np.zeros((len(sentences), len(patterns)), bool)
    if not sentences or not patterns:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    arr = vader._arrow(sentences)
    other = np.flatnonzero(vader._numpy(pc.match_substring_regex(arr, NOT_PLAIN)))
    for k, pattern in enumerate(patterns):
        rest = other
        re2 = to_re2(pattern)
        try:
            if re2 is None:
                raise ValueError
            hits[:, k] = vader._numpy(pc.match_substring_regex(arr, re2, ignore_case=bool(pattern.flags & re.I)))
        except (ValueError, pa.ArrowInvalid):  # not translated, or RE2 refuses it: Python's re on every sentence
            rest = np.arange(len(sentences))
        hits[rest, k] = [pattern.search(sentences[i]) is not None for i in rest]
    s, a = np.nonzero(hits)
    return s.astype(np.int64), a.astype(np.int64)


def _words(texts: list[str]):
    """Token ids (into a vocabulary of distinct words) of `[a-z][a-z']*` in each lower-cased text, the text of
    each token, the vocabulary (Arrow) and its stop-word flags. A word is a run of [a-z'] bytes (UTF-8 encodes
    other characters with bytes ≥ 0x80) without its leading apostrophes, which is what `findall` returns; the
    runs are found with numpy over the texts' bytes and their bytes gathered into one Arrow array to encode."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = vader._arrow([t.lower() for t in texts])
    bounds = np.frombuffer(arr.buffers()[1], np.int64, len(texts) + 1)
    data = np.frombuffer(arr.buffers()[2], np.uint8, int(bounds[-1]))
    cut = np.zeros(len(data) + 1, bool)
    cut[bounds] = True  # no word runs from one text into the next
    quote = data == 39
    word = ((data >= 97) & (data <= 122)) | quote
    joined = ~cut[1:-1]  # byte i + 1 continues byte i's text
    lead = np.flatnonzero(quote & ~np.r_[False, word[:-1] & joined])  # apostrophes starting a run …
    while lead.size:  # … and those right after them: not part of the word
        word[lead] = False
        lead = lead[lead + 1 < len(data)] + 1
        lead = lead[quote[lead] & joined[lead - 1]]
    after = word & np.r_[False, word[:-1] & joined]  # byte continues the word of the byte before
    start = np.flatnonzero(word & ~after)
    end = np.flatnonzero(word & ~np.r_[after[1:], False]) + 1
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum(end - start, out=offsets[1:])
    words = pa.LargeStringArray.from_buffers(len(start), pa.py_buffer(offsets), pa.py_buffer(data[word].tobytes()))
    enc = pc.dictionary_encode(words)
    vocab = enc.dictionary
    stop = vader._numpy(pc.is_in(vocab, value_set=vader._arrow(sorted(STOP))))
    return vader._numpy(enc.indices).astype(np.int64), np.searchsorted(bounds, start, "right") - 1, vocab, stop


def _grams(ids: np.ndarray, text: np.ndarray, stop: np.ndarray, size: int, n_vocab: int):
    """Start token and integer key of every `size`-gram inside one text whose first and last words are not stop
    words; the key is unique per sequence of word ids."""
    j = np.flatnonzero((text[size - 1:] == text[:len(text) - size + 1]) & ~stop[ids[:len(ids) - size + 1]]
                       & ~stop[ids[size - 1:]])
    key = np.zeros(len(j), np.int64)
    for step in range(size):
        if n_vocab and int(key.max(initial=0)) >= np.iinfo(np.int64).max // n_vocab:  # factorise, never overflow
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * n_vocab + ids[j + step]
    return j, key


def _counted(j, key, text, counts, negative, signature):
    """Per distinct gram: a start token, its count over texts (each text once, weighted), the same over
    negative texts, and the XOR of the negative texts' signatures (equal sets of texts, equal XOR)."""
    order = np.argsort(key, kind="stable")  # j ascends, so texts stay in order within a key
    j, key, t = j[order], key[order], text[j[order]]
    first = np.ones(len(key), bool)
    first[1:] = (key[1:] != key[:-1]) | (t[1:] != t[:-1])
    j, key, t = j[first], key[first], t[first]
    if not len(key):
        return (np.zeros(0, np.int64),) * 4
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    neg = negative[t]
    return (j[start], np.add.reduceat(counts[t], start), np.add.reduceat(np.where(neg, counts[t], 0), start),
            np.bitwise_xor.reduceat(np.where(neg, signature[t], 0), start))


def frequent_phrases(texts: list[str], counts: list[int], negative: list[bool], top: int) -> list[dict]:
    """Most frequent 2- and 3-word phrases of negative texts that are over-represented there (at least twice
    the overall negative share, so openers common to every review do not crowd out the complaints); a phrase
    found in exactly the same texts as a better-ranked one adds nothing and is skipped. Ties: more words first,
    then alphabetical. Counts are weighted by `counts` (how often each distinct text occurs)."""
    n = np.asarray(counts, np.int64).reshape(-1)
    neg_flags = np.asarray(negative, bool).reshape(-1)
    if not len(texts) or not neg_flags.any():
        return []
    ids, text, vocab, stop = _words(texts)
    signature = np.fromiter((hash((i, SIGNATURE)) for i in range(len(texts))), np.int64, len(texts))
    parts = [(size, *_counted(*_grams(ids, text, stop, size, len(vocab)), text, n, neg_flags, signature))
             for size in (2, 3)]
    size = np.concatenate([np.full(len(p[1]), p[0]) for p in parts])
    rep, total, neg, where = (np.concatenate([p[i] for p in parts]) for i in range(1, 5))
    base = int(n[neg_flags].sum()) / max(int(n.sum()), 1)
    cand = np.flatnonzero((neg >= 2) & (neg / np.maximum(total, 1) >= min(2 * base, 0.9)))
    if not cand.size:
        return []
    cand = cand[np.lexsort((-size[cand], -neg[cand]))]
    bounds = np.flatnonzero(np.r_[True, (neg[cand][1:] != neg[cand][:-1]) | (size[cand][1:] != size[cand][:-1]),
                                  True])
    out, seen = [], set()
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):  # tie groups of (count, words), best first
        group = cand[lo:hi]
        k = int(size[group[0]])
        words = vocab.take(vader._to_arrow((ids[rep[group][:, None] + np.arange(k)]).ravel())).to_pylist()
        phrases = [" ".join(words[i * k:(i + 1) * k]) for i in range(len(group))]
        for phrase, g in sorted(zip(phrases, group.tolist(), strict=True)):
            c, sig = int(neg[g]), int(where[g])
            if (c, sig) in seen:
                continue
            seen.add((c, sig))
            out.append({"phrase": phrase, "negative_texts": c, "negative_rate": round(c / int(total[g]), 3)})
            if len(out) == top:
                return out
    return out
