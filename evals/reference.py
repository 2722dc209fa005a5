"""Independent reference computations the evals and tests compare the tools against (no tool code used)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np

HEURISTIC_COLUMNS = {"first_touch": "first_touch", "last_touch": "last_touch", "linear": "linear_touch"}
"""attribute_conversions' model name → the column prefix in ChannelAttribution's heuristic_models() output."""


def read_paths(path: Path) -> list[tuple[list[str], float, float, float]]:
    """ChannelAttribution's aggregated paths file → (channels, conversions, value, nulls) per path."""
    with Path(path).open() as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    return [([c.strip() for c in r["path"].split(">") if c.strip()], float(r["total_conversions"]),
             float(r["total_conversion_value"]), float(r["total_null"])) for r in rows]


def dense_removal_effects(paths, order: int = 1) -> dict[str, float]:
    """Independent exact computation: dense absorbing chain, fundamental matrix N = (I − Q)⁻¹."""
    seqs = []
    for chans, conv, _value, null in paths:
        wins = [tuple(chans[i:i + order]) for i in range(max(len(chans) - order + 1, 1))]
        states = [w for i, w in enumerate(wins) if i == 0 or w != wins[i - 1]]
        seqs.append((states, conv, null))
    names = sorted({s for states, _, _ in seqs for s in states})
    idx = {s: i + 1 for i, s in enumerate(names)}  # 0 = start
    n = len(names) + 1
    counts = np.zeros((n, n + 2))  # columns n, n+1 = conversion, null
    for states, conv, null in seqs:
        w = conv + null
        chain = [0] + [idx[s] for s in states]
        for a, b in itertools.pairwise(chain):
            counts[a, b] += w
        counts[chain[-1], n] += conv
        counts[chain[-1], n + 1] += null
    probs = counts / counts.sum(axis=1, keepdims=True)

    def p_conv(removed):
        keep = [0] + [idx[s] for s in names if not removed(s)]
        q = probs[np.ix_(keep, keep)]
        fundamental = np.linalg.inv(np.eye(len(keep)) - q)
        return (fundamental @ probs[keep, n])[0]

    base = p_conv(lambda s: False)
    channels = sorted({c for chans, *_ in paths for c in chans})
    return {c: 1 - p_conv(lambda s, c=c: c in s) / base for c in channels}




def channel_attribution_heuristics(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """ChannelAttribution's heuristic_models() output (CSV, one row per channel) shaped like attribute_conversions'
    metrics: {"by_model": {model: {channel: conversions}}, "value_by_model": {model: {channel: value}}}."""
    with Path(path).open() as fh:
        rows = list(csv.DictReader(fh))
    return {key: {model: {r["channel_name"]: float(r[f"{column}_{suffix}"]) for r in rows}
                  for model, column in HEURISTIC_COLUMNS.items()}
            for key, suffix in (("by_model", "conversions"), ("value_by_model", "value"))}


def compare_credit(got: dict[str, float], expected: dict[str, float], tol: float, label: str = "") -> list[str]:
    """Every expected channel's number against `got`, to an absolute tolerance: readable mismatches ([] = agree)."""
    why = []
    for channel, want in expected.items():
        have = got.get(channel)
        if have is None:
            why.append(f"{label} {channel}: missing".strip())
        elif not abs(have - want) <= tol:
            why.append(f"{label} {channel}: {have} vs {want} (± {tol:.4g})".strip())
    return why


def compare_attribution(metrics: dict, reference: dict, tol: float = 1e-6) -> list[str]:
    """attribute_conversions' metrics against a reference shaped like them (see channel_attribution_heuristics):
    one readable line per channel credit that is missing or off by more than `tol`."""
    return [line for key, models in reference.items() for model, expected in models.items()
            for line in compare_credit((metrics.get(key) or {}).get(model) or {}, expected, tol,
                                       f"{model}{' value' if key == 'value_by_model' else ''}")]
