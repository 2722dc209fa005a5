"""Attribution maths over `Paths`, no SQL: rule-based credit (first / last touch, linear, time decay, position
based), the exact Markov chain's removal effects, exact Shapley values, and scaling credit to a total.

Every function returns arrays in `paths.units` order. Tested against independent references in
tests/tools/test_attribution_models.py (the dense absorbing chain of evals/reference.py, Shapley by permutations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

    from tools.analytics.attribution.paths import Paths

@dataclass
class Credit:
    """Credit per unit: conversions and conversion value."""

    conversions: np.ndarray
    value: np.ndarray


@dataclass
class RemovalEffects(Credit):
    """Share of conversions (and of value) lost when a unit is removed from every journey."""

    conversion_probability: float  # of a journey converting, with every unit present


@dataclass
class States:
    """Journeys as sequences of Markov states, consecutive repeats collapsed."""

    sequence: np.ndarray   # state of each step, journey after journey
    starts: np.ndarray     # index in `sequence` of each journey's first step
    lengths: np.ndarray    # steps per journey
    members: np.ndarray    # states × units: the state's window contains the unit


def touch_shares(paths: Paths, model: str, half_life: float) -> np.ndarray:
    """Each touch's share of its journey's credit (summing to 1 per journey) under a rule-based model."""
    journey = paths.journey
    length = paths.lengths[journey]
    position = np.arange(paths.touches.size) - paths.starts[journey]
    if model == "first_touch":
        return (position == 0).astype(float)
    if model == "last_touch":
        return (position == length - 1).astype(float)
    if model == "linear":  # each occurrence counts, as in ChannelAttribution
        return 1.0 / length
    if model == "position_based":
        ends = (position == 0) | (position == length - 1)
        return np.where(length == 1, 1.0, np.where(length == 2, 0.5,
                                                    np.where(ends, 0.4, 0.2 / np.maximum(length - 2, 1))))
    if model == "time_decay":
        weight = np.power(0.5, paths.age / half_life)
        return weight / np.add.reduceat(weight, paths.starts)[journey]
    raise ValueError(f"not a rule-based model: {model!r}")


def rule_based_credit(paths: Paths, model: str, half_life: float) -> Credit:
    """Credited conversions and value per unit: each touch gets its share of its journey's outcome (over the
    distinct paths when known: the same sums, regrouped)."""
    if paths.distinct is not None:
        paths = paths.distinct
    share, journey, n_units = touch_shares(paths, model, half_life), paths.journey, len(paths.units)
    return Credit(np.bincount(paths.touches, weights=share * paths.conversions[journey], minlength=n_units),
                  np.bincount(paths.touches, weights=share * paths.value[journey], minlength=n_units))


def markov_states(paths: Paths, order: int) -> States:
    """Order-k states (sliding windows of k touches, a shorter journey is one window), consecutive repeats
    collapsed as in ChannelAttribution."""
    if order == 1:
        sequence, members, starts = paths.touches, np.eye(len(paths.units), dtype=bool), paths.starts
    else:
        sequence, members, starts = _windows(paths, order)
    first_step = np.zeros(sequence.size, dtype=bool)
    first_step[starts] = True
    keep = first_step | np.r_[True, sequence[1:] != sequence[:-1]]
    lengths = np.add.reduceat(keep.astype(np.int64), starts)
    return States(sequence[keep], np.cumsum(lengths) - lengths, lengths, members)


def _windows(paths: Paths, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State of each window (windows coded as base-(units + 1) numbers), state × unit membership, window starts."""
    n_units = len(paths.units)
    n_windows = np.maximum(paths.lengths - order + 1, 1)
    window_journey = np.repeat(np.arange(n_windows.size), n_windows)
    window_starts = np.cumsum(n_windows) - n_windows
    first = paths.starts[window_journey] + np.arange(window_journey.size) - np.repeat(window_starts, n_windows)
    width = np.minimum(order, paths.lengths[window_journey])
    base = n_units + 1
    code = np.zeros(window_journey.size, dtype=np.int64)
    for j in range(order):
        digit = paths.touches[np.minimum(first + j, paths.touches.size - 1)] + 1
        code += np.where(j < width, digit, 0) * base ** j
    codes, state = np.unique(code, return_inverse=True)
    members = np.zeros((codes.size, n_units), dtype=bool)
    for j in range(order):
        digit = (codes // base ** j) % base
        rows = np.flatnonzero(digit > 0)
        members[rows, digit[rows] - 1] = True
    return state, members, window_starts


@dataclass
class AbsorbingChain:
    """start → states → conversion / null, as the linear system the expected visits solve."""

    system: sp.csc_matrix      # (I − Q)ᵀ over the states, Q the transition probabilities between them
    start: np.ndarray          # probability of a journey starting in each state
    conversion: np.ndarray     # probability of converting straight from each state
    value: np.ndarray          # expected value absorbed straight from each state

    def absorb(self, keep: np.ndarray) -> tuple[float, float]:
        """Probability of conversion and expected value with only the `keep` states (the rest lead to null)."""
        from scipy.linalg import solve
        from scipy.sparse.linalg import splu

        a = self.system[keep][:, keep]
        start = self.start[keep]
        visits = solve(a.toarray(), start) if keep.sum() <= 600 else splu(a.tocsc()).solve(start)
        return float(visits @ self.conversion[keep]), float(visits @ self.value[keep])


def absorbing_chain(paths: Paths, states: States) -> AbsorbingChain:
    """Transition counts weighted by each journey's conversions + nulls, normalised per state."""
    import scipy.sparse as sp  # lazy: keeps `northstar` start-up fast

    sequence, n_states = states.sequence, states.members.shape[0]
    weight = paths.conversions + paths.nulls
    last = states.starts + states.lengths - 1
    step_weight = np.repeat(weight, states.lengths)
    has_next = np.ones(sequence.size, dtype=bool)
    has_next[last] = False
    i = np.flatnonzero(has_next & (step_weight > 0))
    if n_states <= 2048:  # dense counting is faster than building a COO matrix from millions of steps
        flat = np.bincount(sequence[i] * n_states + sequence[i + 1], weights=step_weight[i],
                           minlength=n_states * n_states)
        transitions = sp.csr_matrix(flat.reshape(n_states, n_states))
    else:
        transitions = sp.csr_matrix((step_weight[i], (sequence[i], sequence[i + 1])), shape=(n_states, n_states))
    start = np.bincount(sequence[states.starts], weights=weight, minlength=n_states)
    to_conversion = np.bincount(sequence[last], weights=paths.conversions, minlength=n_states)
    to_value = np.bincount(sequence[last], weights=paths.value, minlength=n_states)
    out = (np.asarray(transitions.sum(axis=1)).ravel() + to_conversion
           + np.bincount(sequence[last], weights=paths.nulls, minlength=n_states))
    inverse_out = np.divide(1.0, out, out=np.zeros(n_states), where=out > 0)
    system = (sp.identity(n_states, format="csr") - sp.diags(inverse_out) @ transitions).T.tocsc()
    return AbsorbingChain(system, start / start.sum(), to_conversion * inverse_out, to_value * inverse_out)


def markov_removal_effects(paths: Paths, order: int) -> RemovalEffects:
    """Exact removal effects from the absorbing chain (no simulation): 1 − P(conversion without the unit) / P.
    Built from the distinct paths when `paths` knows them (the same weighted counts, summed in another order)."""
    if paths.distinct is not None:
        paths = paths.distinct
    states = markov_states(paths, order)
    chain = absorbing_chain(paths, states)
    p_conversion, p_value = chain.absorb(np.ones(states.members.shape[0], dtype=bool))
    removal = np.zeros(len(paths.units))
    removal_value = np.zeros(len(paths.units))
    for k in range(len(paths.units)):
        if not states.members[:, k].any():
            continue
        without_conversion, without_value = chain.absorb(~states.members[:, k])
        removal[k] = 1.0 - without_conversion / p_conversion if p_conversion > 0 else 0.0
        removal_value[k] = 1.0 - without_value / p_value if p_value > 0 else 0.0
    return RemovalEffects(np.clip(removal, 0.0, 1.0), np.clip(removal_value, 0.0, 1.0), p_conversion)


def shapley_values(paths: Paths) -> Credit:
    """Exact Shapley values where a coalition is worth the conversion rate (value per journey) of the journeys
    that touched only channels in it (over the distinct paths when known: the same sums, regrouped)."""
    if paths.distinct is not None:
        paths = paths.distinct
    n_units = len(paths.units)
    coalition = np.bitwise_or.reduceat(np.left_shift(1, paths.touches).astype(np.int64), paths.starts)
    size = 1 << n_units
    count, conversions, value = (_subset_sums(np.bincount(coalition, weights=w, minlength=size), n_units)
                                 for w in (paths.conversions + paths.nulls, paths.conversions, paths.value))
    rates = [np.divide(x, count, out=np.zeros(size), where=count > 0) for x in (conversions, value)]
    return Credit(*(_shapley_from_worth(rate, n_units) for rate in rates))


def _subset_sums(table: np.ndarray, n_players: int) -> np.ndarray:
    """Zeta transform: each coalition's total over all its subsets, one player (axis) at a time, in place."""
    for i in range(n_players):
        view = table.reshape(-1, 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    return table


def _shapley_from_worth(worth: np.ndarray, n_players: int) -> np.ndarray:
    """φᵢ = Σ over coalitions S without i of |S|! (n − |S| − 1)! / n! · (v(S ∪ i) − v(S))."""
    size = np.bitwise_count(np.arange(worth.size, dtype=np.int64))
    weight = np.array([1.0 / (n_players * math.comb(n_players - 1, s)) for s in range(n_players)])
    phi = np.zeros(n_players)
    for i in range(n_players):
        view = worth.reshape(-1, 2, 1 << i)
        without = size.reshape(-1, 2, 1 << i)[:, 0, :]
        phi[i] = np.sum(weight[without] * (view[:, 1, :] - view[:, 0, :]))
    return phi


def scale_to_total(credit: np.ndarray, total: float) -> np.ndarray:
    """Credit rescaled to sum to `total` (zeros when there is no credit to scale)."""
    credited = credit.sum()
    return credit / credited * total if credited > 0 else np.zeros_like(credit)
