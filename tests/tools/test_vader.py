"""tools.analytics.vader against the reference, vaderSentiment: the same neg, neu, pos and compound on every text."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer

from tests.conftest import shared_path
from tools.analytics import vader

FIELDS = ("neg", "neu", "pos", "compound")
CORPORA = ("tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt")  # in ../shared (SOURCES.md)


@pytest.fixture(scope="module")
def reference():
    return SentimentIntensityAnalyzer()


def assert_identical(texts: list[str], reference) -> None:
    """Every field of every text equal to vaderSentiment's (to 1e-9; in practice bit for bit)."""
    ours = vader.polarity_scores(texts)
    theirs = [reference.polarity_scores(t) for t in texts]
    for field in FIELDS:
        expected = np.array([s[field] for s in theirs])
        got = getattr(ours, field)
        bad = np.flatnonzero(np.abs(got - expected) > 1e-9)
        assert not bad.size, (f"{len(bad)} of {len(texts)} texts differ in {field}, e.g. {texts[bad[0]]!r}: "
                              f"{got[bad[0]]} vs {expected[bad[0]]}")


def corpus_texts(path) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    return [line.rstrip("\r").split("\t", 2)[2] for line in lines if line.strip()]


@pytest.mark.shared
@pytest.mark.parametrize("name", CORPORA)
def test_identical_on_vaders_own_corpora(name, reference):
    texts = corpus_texts(shared_path(f"datasets/sentiment/{name}"))
    assert len(texts) > 3000
    assert_identical(texts, reference)
    assert_identical([t.upper() for t in texts[:500]] + [t.lower() for t in texts[:500]], reference)


RULE_CASES = [
    # vaderSentiment's own examples
    "VADER is smart, handsome, and funny.", "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.", "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!", "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.", "The book was good.", "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.", "Today SUX!",
    "Today only kinda sux! But I'll get by, lol", "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁", "Not bad at all", "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!", "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!", "Other sentiment analysis tools can be quite bad.",
    "On the other hand, VADER is quite bad ass", "VADER is such a badass!", "Without a doubt, excellent idea.",
    "Roger Dodger is one of the most compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "Roger Dodger is one of the least compelling variations on this theme.", "Not such a badass after all.",
    "Without a doubt, an excellent idea.",
    # "no": its own valence, neutralised before a lexicon word, negating up to three words on
    "no", "No.", "no good", "NO good at all", "no no good", "there is no way this is good", "no or bad",
    "no, nor good", "it is NO fun", "nope NO",
    # caps: only when some but not all tokens are capitals; a zero valence loses 0.733
    "GOOD", "GOOD BAD", "GOOD bad", "VERY good", "very GOOD movie", "NO happy people", "NOT GOOD at all",
    # boosters and dampeners one, two, three words back; boosters that are lexicon words
    "extremely good", "extremely very good", "so so so good", "kind of good", "sort of bad", "kinda bad",
    "it was kind of the bomb", "just enough good", "hardly bad", "SLIGHTLY bad news", "kind of",
    # negation and its exceptions
    "never so good", "never this bad", "not so very good", "without doubt great", "without any doubt great",
    "isn't good", "wasn't very bad", "don't really like it", "aint nothing good", "ain't nothin' bad",
    # idioms, with and without the three words before them
    "the shit", "this is the shit", "a b the shit", "a b c the bomb", "it was the bomb dot com",
    "a b c yeah right", "a b c kiss of death", "a b c to die for", "a b c beating heart",
    "wait at the bus stop ok", "kind of the shit", "sort of kiss of death",
    # "least"
    "least good", "the least good", "at least good", "very least good", "LEAST good",
    # "but": before × 0.5, after × 1.5, and vaderSentiment's list.index quirk on equal values
    "good but bad", "bad but good", "good but good", "alol but np", "np alol but fine", "fine but np alol np",
    "good, but not bad, but great", "BUT good", "but", "good but",
    # punctuation emphasis
    "good!", "good!!", "good!!!!!!", "good?", "good??", "good???", "good????", "bad!?!?", "? ? good",
    "!!!", "???", "good 🔛", "bad 🆙🆙",
    # emoji: replaced only when a single code point; a description glued to what follows
    "😁", "😁😁", "good😁", "😁good", "a\t😁", "a 😁 b", "🇺🇸 flag", "👍🏽 fine", " 😡 ",
    # tokens, stripping and whitespace
    "", " ", "\t\n", "  good  ", "ok.", "ok", "'ok'", ":)", "(:", ":-)", "good\u00a0bad", "good\u3000bad",
    "good\x1cbad", "good\u2028bad", "good\x85bad", "goood!!!", "...good...", "'good'", '"bad"', "g", "-",
    "it's good", "don't", "DON'T like", "İSTANBUL is GOOD", "ΣΟΦΟΣ good", "STRASSE ÉTÉ good", "ﬀ good",
    "\ud800 good", "good \udfff bad",
]


def test_identical_on_each_rule_and_quirk(reference):
    assert_identical(RULE_CASES, reference)


def _generated(n: int, seed: int) -> list[str]:
    """Texts dense in everything the rules look at: lexicon words, boosters, negations, rule words and idioms,
    in every case, glued to punctuation and emoji, joined by assorted whitespace."""
    rng = random.Random(seed)
    ref = SentimentIntensityAnalyzer()
    lexicon = sorted(ref.lexicon)
    words = (rng.sample(lexicon, 400) + list(BOOSTER_DICT) + NEGATE + list(SPECIAL_CASES) + sorted(vader.RULE_WORDS)
             + ["at least", "very least", "without doubt", "never so", "never this", "no or", "kind of", "sort of",
                "it's", "n't", "isnt", "the", "a", "movie", "İstanbul", "ÉTÉ", "straße", "ΣΟΦΟΣ", "naïve", "ok"])
    emoji = [e for e in ref.emojis if len(e) == 1][::40] + ["🔛", "🆙", "🇺🇸", "👍🏽"]
    glue = ["", "", "", "!", "!!", "?", "??", ".", ",", "...", "'", '"', ":)", "!?"]
    spaces = [" "] * 12 + ["  ", "\t", "\n", "\u00a0", "\u3000", "\x1c", "\u2028"]
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 24)):
            w = rng.choice(emoji) if rng.random() < 0.05 else rng.choice(words)
            w = rng.choice([w, w, w, w.upper(), w.title()])
            parts.append(rng.choice(glue) + w + rng.choice(glue) if rng.random() < 0.3 else w)
            parts.append(rng.choice(spaces))
        texts.append(rng.choice(["", " ", "\t"]) + "".join(parts))
    return texts


def test_identical_on_generated_texts(reference):
    assert_identical(_generated(15_000, seed=19), reference)


def test_batches_do_not_change_the_scores(monkeypatch):
    texts = _generated(500, seed=3) + RULE_CASES
    whole = vader.polarity_scores(texts)
    monkeypatch.setattr(vader, "BATCH", 37)
    by_count = vader.polarity_scores(texts)
    monkeypatch.setattr(vader, "BATCH_CHARS", 500)
    assert len(vader._batches(texts)) > len(texts) / 37
    by_size = vader.polarity_scores(texts)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(by_count, field), getattr(whole, field))
        np.testing.assert_array_equal(getattr(by_size, field), getattr(whole, field))


def test_empty_input_and_non_strings():
    assert all(len(getattr(vader.polarity_scores([]), f)) == 0 for f in FIELDS)
    out = vader.polarity_scores(["", "   "])
    assert all((getattr(out, f) == 0).all() for f in FIELDS)
    with pytest.raises(TypeError, match="strings only"):
        vader.polarity_scores(["fine", None])


def test_python_round_matches_round_on_ties_and_near_ties():
    rng = np.random.default_rng(5)
    for digits in (3, 4):
        ties = (np.arange(-2000, 2000) + 0.5) / 10**digits  # binary neighbours of decimal halves
        x = np.concatenate([rng.uniform(-1, 1, 200_000), ties, np.nextafter(ties, 2), np.nextafter(ties, -2),
                            [0.0, -0.0, 1.0, -1.0]])
        np.testing.assert_array_equal(vader.python_round(x, digits), [round(float(v), digits) for v in x])


def test_arrow_splits_on_exactly_pythons_whitespace():
    """The tokeniser relies on Arrow's utf8_split_whitespace and Python's str.split() agreeing on every code point,
    and on str.lower being idempotent (vaderSentiment lower-cases twice before its negation check)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    probes = pa.array([f"a{chr(c)}b" for c in points], pa.large_string())
    splits = np.asarray(pc.list_value_length(pc.utf8_split_whitespace(probes)))
    python = np.array([len(f"a{chr(c)}b".split()) for c in points])
    assert (splits == python).all(), [hex(points[i]) for i in np.flatnonzero(splits != python)[:10]]
    assert all(chr(c).lower().lower() == chr(c).lower() for c in points)


def test_arrow_ascii_case_and_trim_are_pythons():
    """Arrow's ascii_lower, ascii_is_upper and utf8_trim(punctuation) stand in for Python's on ASCII tokens."""
    import string

    import pyarrow as pa
    import pyarrow.compute as pc

    rng = random.Random(1)
    tokens = ["".join(rng.choice(string.printable) for _ in range(rng.randint(0, 6))) for _ in range(100_000)]
    arrow = pa.array(tokens)
    assert pc.ascii_lower(arrow).to_pylist() == [x.lower() for x in tokens]
    assert pc.ascii_is_upper(arrow).to_pylist() == [x.isupper() for x in tokens]
    assert pc.utf8_trim(arrow, characters=string.punctuation).to_pylist() == [x.strip(string.punctuation)
                                                                              for x in tokens]


@pytest.mark.slow
@pytest.mark.shared
def test_identical_on_the_100k_benchmark_reviews(reference):
    """The 100k distinct reviews analyze_sentiment is benchmarked on (pairs of corpus sentences, bench.worker)."""
    shared_path("datasets/sentiment/tweets_GroundTruth.txt")
    from bench.vader_bench import bench_texts

    texts = bench_texts()
    assert len(set(texts)) == 100_000
    assert_identical(texts, reference)
