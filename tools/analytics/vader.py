"""VADER over token arrays: vaderSentiment 3.3.2's scores, bit for bit, for a whole batch of texts at once.

Texts are split and dictionary-encoded by Arrow (C++), each distinct token is classified once in Python (its
lexicon valence, booster value, negation, case), and every rule of `SentimentIntensityAnalyzer.polarity_scores`
then runs as a numpy pass over the lexicon hits, with a fixed loop over the rules' offsets (1–3 words back, 1–2
ahead), never over texts. The lexicon, emoji table and rule constants are vaderSentiment's own, read from the
installed package, and every float is computed in vaderSentiment's order (sums left to right), so the results are
equal, not close; tests/tools/test_vader.py checks them against vaderSentiment on its corpora.

Quirks of vaderSentiment reproduced on purpose:
* Emoji: only single code points of the emoji lexicon are replaced (sequences such as flags never match); the
  description gets a leading space unless it starts the text or follows a plain space (a tab or newline does not
  count), never a trailing one ("😁x" → "… eyesx"); "!" and "?" are counted after the replacement, so 🔛 ("ON!
  arrow") and 🆙 ("UP! button") add an exclamation mark.
* Tokens: `str.split()` (every Unicode whitespace), then leading and trailing ASCII punctuation stripped unless
  that leaves two characters or fewer, in which case the raw token stays ("ok." and ":)" are kept whole, so "ok."
  misses the lexicon). Lexicon entries with capitals or spaces can never match, since lookups are lower-cased
  single tokens.
* ALL CAPS emphasis applies only when some but not all tokens are upper-case; it subtracts 0.733 from a valence of
  exactly 0 (a "no" neutralised before a lexicon word, written NO).
* Boosters that are themselves lexicon words never boost; a booster's sign follows the valence accumulated so far.
* "no": a lexicon word itself, but worth 0 before another lexicon word; any lexicon word one or two tokens after
  "no" (or three, with "or"/"nor" just before it) gets the lexicon value × −0.74, overriding what came before.
* Negation, "never so/this" (× 1.25), "without doubt" and the idioms are checked only at offsets whose token is
  not a lexicon word, the idioms only from a text's fourth token on; an idiom replaces the valence outright, then
  "kind of"/"sort of"/"just enough" ending one or two tokens before the word add −0.293. "kind" scores 0 before
  "of" (it is a lexicon word otherwise).
* "least" before a word negates it unless "at" or "very" precedes it (always, as the text's second token).
* "but" (the first token that is "but" once stripped and lower-cased): words before it × 0.5, after it × 1.5 —
  except that vaderSentiment finds each word by its value (`list.index`), so when a value equals an already
  scaled earlier one, the earlier one is scaled again. Texts where that happens (found vectorised; 0.2 % of the
  benchmark's reviews, and it changes the scores of 0.08 %) are replayed with vaderSentiment's own loop.
* Rounding is Python's `round` (correctly rounded decimals); numpy's, which can differ on near-ties, is used only
  away from them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

BATCH = 100_000  # texts per batch at most …
BATCH_CHARS = 25_000_000  # … and characters: ≈ 11 bytes of peak memory per character


@dataclass
class Polarity:
    """vaderSentiment's polarity_scores for each text, as arrays in the order of the texts."""

    neg: np.ndarray
    neu: np.ndarray
    pos: np.ndarray
    compound: np.ndarray


@dataclass(frozen=True)
class _Tables:
    """Everything the passes look up, built once from vaderSentiment's own data. Rows: 0 is an ordinary word,
    then every word of the lexicon, the boosters, the negations and the words the rules name."""

    words: list[str]            # row − 1 → lower-cased word
    valence: np.ndarray         # lexicon valence, NaN if not in the lexicon
    boost: np.ndarray           # booster/dampener value (0 if none)
    is_boost: np.ndarray
    negates: np.ndarray         # in vaderSentiment's NEGATE list
    code: np.ndarray            # index into the phrase tables (0: a word no rule names)
    codes: dict[str, int]
    special2: np.ndarray        # SPECIAL_CASES of two words, [code, code] → value or NaN
    special3: np.ndarray
    boost2: np.ndarray          # multi-word boosters ("kind of"), same layout
    boost3: np.ndarray
    emojis: dict[str, str]      # single-code-point emoji → description
    emoji_re: re.Pattern
    emoji_re2: str              # the same class for Arrow's RE2
    n_scalar: float
    c_incr: float


RULE_WORDS = ("no", "kind", "of", "but", "least", "at", "very", "or", "nor", "never", "so", "this", "without",
              "doubt")


def _char_class(chars, escape) -> str:
    """A regex character class of code points, as ranges (Python's re is slow on a long list of astral chars)."""
    points, spans = sorted(map(ord, chars)), []
    for cp in points:
        if spans and cp == spans[-1][1] + 1:
            spans[-1][1] = cp
        else:
            spans.append([cp, cp])
    return "[" + "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in spans) + "]"


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    from vaderSentiment import vaderSentiment as vs

    ref = vs.SentimentIntensityAnalyzer()
    phrase_words = {w for key in [*vs.SPECIAL_CASES, *vs.BOOSTER_DICT] if " " in key for w in key.split(" ")}
    codes = {w: i + 1 for i, w in enumerate(sorted(set(RULE_WORDS) | phrase_words))}
    words = sorted(set(ref.lexicon) | set(vs.BOOSTER_DICT) | set(vs.NEGATE) | set(codes))
    col = lambda f, dtype=float: np.array([f(None), *map(f, words)], dtype=dtype)  # noqa: E731
    k = len(codes) + 1

    def table(source: dict, n: int) -> np.ndarray:
        out = np.full((k,) * n, np.nan)
        for key, value in source.items():
            parts = key.split(" ")
            if len(parts) == n and all(p in codes for p in parts):
                out[tuple(codes[p] for p in parts)] = value
        return out

    emojis = {e: d for e, d in ref.emojis.items() if len(e) == 1}
    return _Tables(
        words=words, valence=col(lambda w: ref.lexicon.get(w, np.nan)),
        boost=col(lambda w: vs.BOOSTER_DICT.get(w, 0.0)), is_boost=col(lambda w: w in vs.BOOSTER_DICT, bool),
        negates=col(lambda w: w in vs.NEGATE, bool), code=col(lambda w: codes.get(w, 0), np.int64), codes=codes,
        special2=table(vs.SPECIAL_CASES, 2), special3=table(vs.SPECIAL_CASES, 3),
        boost2=table(vs.BOOSTER_DICT, 2), boost3=table(vs.BOOSTER_DICT, 3), emojis=emojis,
        emoji_re=re.compile(_char_class(emojis, lambda cp: re.escape(chr(cp)))),
        emoji_re2=_char_class(emojis, lambda cp: f"\\x{{{cp:x}}}"), n_scalar=vs.N_SCALAR, c_incr=vs.C_INCR)


def polarity_scores(texts: list[str]) -> Polarity:
    """vaderSentiment's neg, neu, pos and compound for every text (identical values), vectorised over the batch."""
    parts = [_score_batch(list(texts[b]), _tables()) for b in _batches(texts)]
    if not parts:
        return Polarity(*(np.zeros(0) for _ in range(4)))
    return Polarity(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("neg", "neu", "pos", "compound")))


def _batches(texts: list[str]) -> list[slice]:
    try:
        ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
    except TypeError:
        raise TypeError("VADER scores strings only (no None, no numbers)") from None
    out, start = [], 0
    while start < len(texts):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + BATCH_CHARS, "right"))
        out.append(slice(start, min(max(stop, start + 1), start + BATCH)))
        start = out[-1].stop
    return out


@dataclass
class _Tokens:
    """The tokens of a batch of texts, in text order, as ids into the batch's vocabulary (its distinct tokens),
    and the few tokens the rules look at, by token index."""

    ids: np.ndarray       # vocabulary id of each token
    start: np.ndarray     # first token of each text
    length: np.ndarray    # tokens per text
    row: np.ndarray       # per vocabulary entry: row in _Tables of its lower-cased form
    upper: np.ndarray     # per vocabulary entry: str.isupper() (after stripping punctuation)
    has_nt: np.ndarray    # per vocabulary entry: "n't" in its lower-cased form
    lexical: np.ndarray   # tokens that are lexicon words and not boosters
    capitals: np.ndarray  # tokens in capitals
    buts: np.ndarray      # tokens "but"
    exclaim: np.ndarray   # "!" per text (after emoji replacement)
    question: np.ndarray  # "?" per text

    def text_of(self, idx: np.ndarray) -> np.ndarray:
        return _text_of(self.start, idx)


def _text_of(start: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The text of each token index (the last text starting at or before it: empty texts start where the next
    one does)."""
    return np.searchsorted(start, idx, side="right") - 1


def _demojize(text: str, t: _Tables) -> str:
    return t.emoji_re.sub(lambda m: ("" if m.start() == 0 or text[m.start() - 1] == " " else " ")
                          + t.emojis[m.group()], text)


def _arrow(texts: list[str]):
    """A large_string Arrow array of the texts, built from its buffers (pa.array would import pandas: 0.3 s)."""
    import pyarrow as pa

    try:
        data = "".join(texts).encode()
    except UnicodeEncodeError:  # lone surrogates: any uncased, non-space, non-punctuation stand-in scores the same
        return _arrow([re.sub("[\ud800-\udfff]", "\ue000", x) for x in texts])
    except TypeError:
        raise TypeError("VADER scores strings only (no None, no numbers)") from None
    size = np.fromiter(map(len, texts), np.int64, len(texts))  # characters = bytes for ASCII texts
    wide = np.flatnonzero(~np.fromiter(map(str.isascii, texts), bool, len(texts)))
    size[wide] = [len(texts[i].encode()) for i in wide]
    offsets = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(size, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(data))


def _numpy(values) -> np.ndarray:
    """The values of an Arrow array of booleans or integers, read from its buffers (Arrow's own conversions,
    to_numpy and Python scalars alike, import pandas: 0.3 s on a cold start). Null slots hold anything."""
    import pyarrow as pa

    data, n, offset = values.buffers()[1], len(values), values.offset
    if pa.types.is_boolean(values.type):
        return np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[offset:offset + n].astype(bool)
    return np.frombuffer(data, np.dtype(str(values.type)), n, offset * values.type.byte_width)


def _to_arrow(values: np.ndarray):
    """A numpy array of booleans or int64 as an Arrow array, from its buffers (pa.array imports pandas)."""
    import pyarrow as pa

    if values.dtype == bool:
        kind, data = pa.bool_(), np.packbits(values, bitorder="little")
    else:
        kind, data = pa.int64(), values.astype(np.int64)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(data)])


def _tokenize(texts: list[str], t: _Tables) -> _Tokens:
    import pyarrow.compute as pc

    arr = _arrow(texts)
    flagged = np.flatnonzero(_numpy(pc.match_substring_regex(arr, t.emoji_re2)))
    if flagged.size:
        for i in flagged:
            texts[i] = _demojize(texts[i], t)
        arr = _arrow(texts)
    lists = pc.utf8_split_whitespace(arr)  # the same whitespace as str.split() (tested), but keeps empty ends
    enc = pc.dictionary_encode(lists.flatten())
    ids, vocab = _numpy(enc.indices), enc.dictionary
    length = np.diff(_numpy(lists.offsets))
    empty = np.flatnonzero(_numpy(pc.binary_length(vocab)) == 0)
    if empty.size:
        gone = np.flatnonzero(ids == empty[0])
        length = length - np.bincount(_text_of(np.cumsum(length) - length, gone), minlength=len(length))
        ids = np.delete(ids, gone)
    trimmed = pc.utf8_trim(vocab, characters=string.punctuation)
    stripped = pc.if_else(_to_arrow(_numpy(pc.utf8_length(trimmed)) > 2), trimmed, vocab)
    lower, upper = pc.ascii_lower(stripped), _numpy(pc.ascii_is_upper(stripped))
    found = pc.index_in(lower, value_set=_arrow(t.words))
    row = np.where(_numpy(pc.is_valid(found)), _numpy(found) + 1, 0).astype(np.int64)
    has_nt = _numpy(pc.match_substring(lower, "n't"))
    wide = np.flatnonzero(~_numpy(pc.string_is_ascii(stripped)))
    if wide.size:  # Arrow's case mappings are ASCII-exact only: Python's own for the rest
        rows = {w: i + 1 for i, w in enumerate(t.words)}
        for i, s in zip(wide, stripped.take(_to_arrow(wide)).to_pylist(), strict=True):
            low = s.lower()
            row[i], upper[i], has_nt[i] = rows.get(low, 0), s.isupper(), "n't" in low
    start = np.cumsum(length) - length
    bangs, marks = (_numpy(pc.count_substring(vocab, c)) for c in "!?")
    flags = ((~np.isnan(t.valence[row]) & ~t.is_boost[row]) | upper << 1 | (t.code[row] == t.codes["but"]) << 2
             | (bangs > 0) << 3 | (marks > 0) << 4).astype(np.uint8)
    marked = np.flatnonzero(flags[ids])  # one pass over the tokens; the rest works on these few
    kind = flags[ids[marked]]
    lexical, capitals, buts, with_bang, with_mark = (marked[kind & 1 << b != 0] for b in range(5))
    return _Tokens(ids=ids, start=start, length=length, row=row, upper=upper, has_nt=has_nt, lexical=lexical,
                   capitals=capitals, buts=buts,
                   exclaim=np.bincount(_text_of(start, with_bang), bangs[ids[with_bang]], len(length)),
                   question=np.bincount(_text_of(start, with_mark), marks[ids[with_mark]], len(length)))


def _score_batch(texts: list[str], t: _Tables) -> Polarity:
    tk = _tokenize(texts, t)
    hits, valence = _valences(tk, t)
    valence = _but(tk, t, hits, valence)
    return _combine(tk, hits, valence, len(texts))


def _valences(tk: _Tokens, t: _Tables) -> tuple[np.ndarray, np.ndarray]:
    """The valence of every lexicon word (sentiment_valence: "no", caps, boosters and negation up to three words
    back, idioms, "least"), as vectorised passes over the lexicon hits. Returns their token indices and values."""
    c, n_scalar, c_incr = t.codes, t.n_scalar, t.c_incr
    code, in_lex = t.code[tk.row], ~np.isnan(t.valence[tk.row])
    hits, text = tk.lexical, tk.text_of(tk.lexical)
    p, n = hits - tk.start[text], tk.length[text]
    near = {}  # k → (vocabulary id of the token k places from each hit, whether it is in the same text)
    for k in (-3, -2, -1, 1, 2):
        there = (p + k >= 0) & (p + k < n)
        near[k] = tk.ids[np.where(there, hits + k, hits)], there
    keep = ~((code[tk.ids[hits]] == c["kind"]) & near[1][1] & (code[near[1][0]] == c["of"]))  # "kind of": 0
    hits, text = hits[keep], text[keep]
    near = {k: (vid[keep], there[keep]) for k, (vid, there) in near.items()}
    c0 = code[tk.ids[hits]]
    c3, c2, c1, d1, d2 = (np.where(there, code[vid], 0) for vid, there in near.values())
    n_upper = np.bincount(tk.text_of(tk.capitals), minlength=len(tk.length))
    cap_diff = ((n_upper > 0) & (n_upper < tk.length))[text]  # some, not all, tokens of the text in capitals
    is_ = lambda codes, *words: np.isin(codes, [c[w] for w in words])  # noqa: E731
    v0 = t.valence[tk.row[tk.ids[hits]]]
    v = np.where((c0 == c["no"]) & near[1][1] & in_lex[near[1][0]], 0.0, v0)
    v = np.where((c1 == c["no"]) | (c2 == c["no"]) | ((c3 == c["no"]) & is_(c1, "or", "nor")), v0 * n_scalar, v)
    v = np.where(tk.upper[tk.ids[hits]] & cap_diff, np.where(v > 0, v + c_incr, v - c_incr), v)
    for back in (1, 2, 3):
        vid, ok = near[-back]
        ok = ok & ~in_lex[vid]
        row = tk.row[vid]
        booster = t.is_boost[row]
        s = np.where(booster, np.where(v < 0, -t.boost[row], t.boost[row]), 0.0)
        s = np.where(booster & tk.upper[vid] & cap_diff, np.where(v > 0, s + c_incr, s - c_incr), s)
        if back > 1:
            s = s * (0.95 if back == 2 else 0.9)  # vaderSentiment skips zeros here; 0 × 0.95 is 0 anyway
        v = np.where(ok, v + s, v)
        negated = t.negates[row] | tk.has_nt[vid]
        if back == 1:
            v = np.where(ok & negated, v * n_scalar, v)
            continue
        if back == 2:
            emphasis = (c2 == c["never"]) & is_(c1, "so", "this")
            kept = (c2 == c["without"]) & (c1 == c["doubt"])
        else:
            emphasis = ((c3 == c["never"]) & is_(c2, "so", "this")) | is_(c1, "so", "this")
            kept = (c3 == c["without"]) & ((c2 == c["doubt"]) | (c1 == c["doubt"]))
        v = np.where(ok & emphasis, v * 1.25, np.where(ok & ~kept & negated, v * n_scalar, v))
        if back == 3:
            v = np.where(ok, _idioms(v, t, c0, c1, c2, c3, d1, d2), v)
    least = near[-1][1] & (c1 == c["least"]) & ~in_lex[near[-1][0]] & ~is_(c2, "at", "very")
    return hits, np.where(least, v * n_scalar, v)


def _idioms(v, t: _Tables, c0, c1, c2, c3, d1, d2) -> np.ndarray:
    """_special_idioms_check: the first special case ending at or just before the word replaces its valence, one
    starting at it overrides that, then multi-word boosters before it add their value."""
    first = np.full(len(v), np.nan)
    for value in reversed([t.special2[c1, c0], t.special3[c2, c1, c0], t.special2[c2, c1], t.special3[c3, c2, c1],
                           t.special2[c3, c2]]):
        first = np.where(np.isnan(value), first, value)
    v = np.where(np.isnan(first), v, first)
    for value in (t.special2[c0, d1], t.special3[c0, d1, d2]):
        v = np.where(np.isnan(value), v, value)
    for value in (t.boost3[c3, c2, c1], t.boost2[c3, c2], t.boost2[c2, c1]):
        v = np.where(np.isnan(value), v, v + value)
    return v


def _but(tk: _Tokens, t: _Tables, hits: np.ndarray, valence: np.ndarray) -> np.ndarray:
    """_but_check: × 0.5 before a text's first "but", × 1.5 after; texts where vaderSentiment's `list.index`
    lookup picks an earlier, already scaled word of equal value are replayed with its loop."""
    buts = tk.buts
    if not buts.size:
        return valence
    texts, first = np.unique(tk.text_of(buts), return_index=True)
    at = np.full(len(tk.length), -1)
    at[texts] = buts[first]  # token index of the first "but"
    text = tk.text_of(hits)
    idx = np.flatnonzero((valence != 0) & (at[text] >= 0))  # zeros stay zeros whatever list.index finds
    text, tok, orig = text[idx], hits[idx], valence[idx]
    bi = at[text]
    scaled = orig * np.where(tok < bi, 0.5, np.where(tok > bi, 1.5, 1.0))
    # an earlier word whose scaled value equals a later word's own value: list.index finds that one instead
    key_text, key_val = np.concatenate([text, text]), np.concatenate([scaled, orig]).view(np.int64)
    key_tok, is_query = np.concatenate([tok, tok]), np.repeat([False, True], len(idx))
    order = np.lexsort((is_query, key_tok, key_val, key_text))
    kt, kv, kp, kq = key_text[order], key_val[order], key_tok[order], is_query[order]
    new_group = np.r_[True, (kt[1:] != kt[:-1]) | (kv[1:] != kv[:-1])]
    earliest = np.minimum.reduceat(np.where(kq, np.iinfo(np.int64).max, kp), np.flatnonzero(new_group))
    out = valence.copy()
    out[idx] = scaled
    for d in np.unique(kt[kq & (earliest[np.cumsum(new_group) - 1] < kp)]):
        mine = slice(*np.searchsorted(hits, [tk.start[d], tk.start[d] + tk.length[d]]))
        where = hits[mine] - tk.start[d]
        dense = np.zeros(tk.length[d])
        dense[where] = valence[mine]
        out[mine] = np.array(_but_replay(dense.tolist(), int(at[d] - tk.start[d])))[where]
    return out


def _but_replay(sentiments: list[float], bi: int) -> list[float]:
    """vaderSentiment's _but_check loop as written (for sentiment in sentiments: si = sentiments.index(sentiment))."""
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < bi:
            sentiments[si] = sentiment * 0.5
        elif si > bi:
            sentiments[si] = sentiment * 1.5
    return sentiments


def _ordered_sums(text: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per-text sums added left to right, as Python's sum() does (np.add.reduceat sums pairwise)."""
    out = np.zeros(n)
    if not len(text):
        return out
    counts = np.bincount(text, minlength=n)
    rank = np.arange(len(text)) - (np.cumsum(counts) - counts)[text]
    order = np.argsort(rank, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(rank))]
    for k in range(len(bounds) - 1):
        sel = order[bounds[k]:bounds[k + 1]]
        out[text[sel]] += values[sel]
    return out


def _combine(tk: _Tokens, hits: np.ndarray, valence: np.ndarray, n: int) -> Polarity:
    """score_valence: punctuation emphasis, the normalised compound and the pos/neg/neu shares, rounded."""
    nz = np.flatnonzero(valence)
    s, text = valence[nz], tk.text_of(hits[nz])
    total = _ordered_sums(text, s, n)
    up, down = s > 0, s < 0
    pos_sum = _ordered_sums(text[up], s[up] + 1.0, n)
    neg_sum = _ordered_sums(text[down], s[down] - 1.0, n)
    neu = (tk.length - np.bincount(text[up], minlength=n) - np.bincount(text[down], minlength=n)).astype(float)
    q = tk.question
    amp = np.minimum(tk.exclaim, 4) * 0.292 + np.where(q > 1, np.where(q <= 3, q * 0.18, 0.96), 0.0)
    total = np.where(total > 0, total + amp, np.where(total < 0, total - amp, total))
    compound = np.clip(total / np.sqrt(total * total + 15), -1.0, 1.0)
    more_pos, more_neg = pos_sum > np.abs(neg_sum), pos_sum < np.abs(neg_sum)
    pos_sum, neg_sum = np.where(more_pos, pos_sum + amp, pos_sum), np.where(more_neg, neg_sum - amp, neg_sum)
    whole = pos_sum + np.abs(neg_sum) + neu
    some = tk.length > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = [np.where(some, np.abs(x / whole), 0.0) for x in (neg_sum, neu, pos_sum)]
    return Polarity(*(python_round(x, 3) for x in shares), compound=python_round(compound, 4))


def python_round(x: np.ndarray, digits: int) -> np.ndarray:
    """Python's round(x, digits) element-wise: numpy's rint(x·10^d)/10^d equals it except where x·10^d lands
    within rounding error of a half, and those few are rounded by Python itself."""
    scaled = x * 10.0 ** digits
    out = np.rint(scaled) / 10.0 ** digits
    near = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-7
    out[near] = [round(float(v), digits) for v in x[near]]
    return out
