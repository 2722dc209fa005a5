"""The attribution maths (tools/analytics/attribution/models.py) against independent references, no SQL:
Markov removal effects against the dense absorbing chain of evals/reference.py, Shapley against its axioms and
a brute force over permutations, rule-based credit against the totals it splits."""

import itertools
import math

import numpy as np
import pytest

from evals.reference import compare_credit, dense_removal_effects
from tools.analytics.attribution.models import (
    markov_removal_effects,
    markov_states,
    rule_based_credit,
    scale_to_total,
    shapley_values,
)
from tools.analytics.attribution.paths import Paths


def _paths(journeys) -> Paths:
    """(channels, conversions, value, nulls) per journey, as evals.reference.read_paths gives them → Paths."""
    units = sorted({c for channels, *_ in journeys for c in channels})
    lengths = np.array([len(channels) for channels, *_ in journeys], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    touches = np.array([units.index(c) for channels, *_ in journeys for c in channels], dtype=np.int64)
    age = np.concatenate([np.arange(n - 1, -1, -1) for n in lengths]).astype(float)
    conversions, value, nulls = (np.array([j[i] for j in journeys], dtype=float) for i in (1, 2, 3))
    return Paths(units, touches, starts, lengths, conversions, nulls, value, age)


def _random_journeys(seed: int, n_channels: int, n_journeys: int, max_length: int):
    rng = np.random.default_rng(seed)
    names = [f"ch{i}" for i in range(n_channels)]
    journeys = []
    for _ in range(n_journeys):  # repeats allowed ("a > a > b"): the chain collapses them
        channels = [names[i] for i in rng.integers(0, n_channels, rng.integers(1, max_length + 1))]
        conversions = int(rng.integers(0, 4))
        journeys.append((channels, conversions, float(rng.uniform(0, 50) * conversions), int(rng.integers(1, 6))))
    return journeys


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_markov_removal_effects_equal_dense_absorbing_chain(seed, order):
    journeys = _random_journeys(seed, n_channels=3 + seed, n_journeys=40, max_length=5)
    effects = markov_removal_effects(_paths(journeys), order)
    expected = dense_removal_effects(journeys, order)
    got = dict(zip(_paths(journeys).units, effects.conversions, strict=True))
    assert set(got) == set(expected)
    assert compare_credit(got, expected, 1e-9, label=f"order {order}") == []
    assert 0 < effects.conversion_probability < 1


def test_markov_sparse_solve_equals_dense_absorbing_chain():
    """Enough order-3 states (> 600) that the chain is solved with a sparse LU factorisation."""
    journeys = _random_journeys(7, n_channels=12, n_journeys=800, max_length=6)
    paths = _paths(journeys)
    assert markov_states(paths, 3).members.shape[0] > 600
    got = dict(zip(paths.units, markov_removal_effects(paths, 3).conversions, strict=True))
    expected = dense_removal_effects(journeys, 3)
    assert set(got) == set(expected)
    assert compare_credit(got, expected, 1e-9, label="order 3") == []


def _brute_force_shapley(journeys) -> dict[str, float]:
    """Average marginal conversion rate over every order of the channels."""
    players = sorted({c for channels, *_ in journeys for c in channels})

    def worth(coalition):
        inside = [(conv, conv + null) for channels, conv, _value, null in journeys if set(channels) <= coalition]
        count = sum(total for _, total in inside)
        return sum(conv for conv, _ in inside) / count if count else 0.0

    phi = dict.fromkeys(players, 0.0)
    for order in itertools.permutations(players):
        for i, player in enumerate(order):
            phi[player] += (worth(set(order[:i + 1])) - worth(set(order[:i]))) / math.factorial(len(players))
    return phi


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shapley_sums_to_the_total_and_equals_brute_force(seed):
    journeys = _random_journeys(seed, n_channels=3 + seed, n_journeys=30, max_length=4)
    paths = _paths(journeys)
    phi = shapley_values(paths)
    weight = (paths.conversions + paths.nulls).sum()
    assert phi.conversions.sum() == pytest.approx(paths.conversions.sum() / weight, abs=1e-12)  # efficiency
    assert phi.value.sum() == pytest.approx(paths.value.sum() / weight, abs=1e-12)
    assert scale_to_total(phi.conversions, 11.0).sum() == pytest.approx(11.0)
    got = dict(zip(paths.units, phi.conversions, strict=True))
    assert compare_credit(got, _brute_force_shapley(journeys), 1e-12, label="shapley") == []


def test_shapley_gives_interchangeable_channels_equal_credit():
    """a and b play the same part in every coalition (with and without c); c differs."""
    journeys = [(["a"], 2, 20.0, 8), (["b"], 2, 20.0, 8), (["a", "b"], 5, 50.0, 5), (["b", "a"], 5, 50.0, 5),
                (["a", "c"], 3, 30.0, 7), (["c", "b"], 3, 30.0, 7), (["c"], 1, 10.0, 9)]
    phi = shapley_values(_paths(journeys))
    a, b, c = phi.conversions
    assert a == pytest.approx(b, abs=1e-12) and abs(a - c) > 0.01
    assert phi.value[0] == pytest.approx(phi.value[1], abs=1e-12)
    assert phi.conversions.sum() == pytest.approx(21 / 70, abs=1e-12)


@pytest.mark.parametrize("model", ["first_touch", "last_touch", "linear", "time_decay", "position_based"])
def test_rule_based_credit_splits_each_journey_once(model):
    journeys = _random_journeys(5, n_channels=4, n_journeys=50, max_length=6)
    paths = _paths(journeys)
    credit = rule_based_credit(paths, model, half_life=2.0)
    assert credit.conversions.sum() == pytest.approx(paths.conversions.sum())
    assert credit.value.sum() == pytest.approx(paths.value.sum())
    assert (credit.conversions >= 0).all()


# --- reading a paths table (tools/analytics/attribution/paths.py) -----------------------------------------------

def _ref_table_paths(con, table: str, separator: str) -> Paths:
    """The first table reader, verbatim in substance: DuckDB splits every row's path, each token trimmed of spaces."""
    rows = con.execute(f"""SELECT coalesce(total_conversions, 0)::DOUBLE, coalesce(total_conversion_value, 0)::DOUBLE,
        coalesce(total_null, 0)::DOUBLE, string_split(path::VARCHAR, ?) FROM "{table}" WHERE path IS NOT NULL""",
                       [separator]).fetchall()
    tokens = [[t.strip(" ") for t in r[3]] for r in rows]
    units = sorted({t for ts in tokens for t in ts} - {""})
    journeys = [([t for t in ts if t], *r[:3]) for ts, r in zip(tokens, rows, strict=True)]
    journeys = [(chs, conv, value, nul) for chs, conv, value, nul in journeys if chs]
    paths = _paths([(chs, conv, value, nul) for chs, conv, value, nul in journeys])
    assert paths.units == units
    return paths


@pytest.mark.parametrize("separator", [">", " > ", "->"])
def test_table_paths_equal_splitting_every_row(separator):
    import duckdb

    from tools.analytics.attribution.paths import table_paths

    rng = np.random.default_rng(5)
    names = ["search", "email", "social ", " display", "vidéo", "a>b"] if separator != ">" else [
        "search", "email", "social ", " display", "vidéo"]
    shapes = [separator.join(rng.choice(names, rng.integers(1, 5))) for _ in range(40)]
    shapes += ["", " ", separator, separator * 2, f"email{separator}{separator} {separator}search", "email"]
    rows = [(shapes[i], float(rng.integers(0, 3)), float(rng.uniform(0, 9)), float(rng.integers(0, 2)))
            for i in rng.integers(0, len(shapes), 3000)] + [(None, 1.0, 1.0, 0.0)]
    con = duckdb.connect()
    con.execute("CREATE TABLE p (path VARCHAR, total_conversions DOUBLE, total_conversion_value DOUBLE, "
                "total_null DOUBLE)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?, ?)", rows)
    got, _ = table_paths(con, "p", separator)
    want = _ref_table_paths(con, "p", separator)
    assert got.units == want.units
    # every model from the merged paths (got.distinct): the same credit as from every row
    for model in ("first_touch", "last_touch", "linear", "time_decay", "position_based"):
        a, b = rule_based_credit(got, model, 2.0), rule_based_credit(want, model, 2.0)
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-12, atol=1e-12, err_msg=model)
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-12, err_msg=model)
    a, b = shapley_values(got), shapley_values(want)
    np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-12, atol=1e-12)
    assert "touches" not in vars(got)  # per-row touches were not needed so far …
    for field in ("touches", "starts", "lengths", "conversions", "nulls", "value", "age"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    con.execute("CREATE VIEW pv AS SELECT * FROM p")  # no rowid: every string read and dictionary-encoded
    via_view, _ = table_paths(con, "pv", separator)
    for field in ("touches", "lengths", "conversions", "value"):
        np.testing.assert_array_equal(getattr(via_view, field), getattr(want, field), err_msg=f"view {field}")
    merged = got.distinct
    assert merged is not None and merged.starts.size < got.starts.size
    assert merged.conversions.sum() == pytest.approx(got.conversions.sum(), abs=1e-9)
    for order in (1, 2):  # the chain from the merged paths: the same removal effects as from every row
        a, b = markov_removal_effects(got, order), markov_removal_effects(want, order)
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-14)
        assert a.conversion_probability == pytest.approx(b.conversion_probability, rel=1e-12)
