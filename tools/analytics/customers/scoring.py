"""A fitted classifier applied to a population streamed from the engine in batches (score_churn above its
sampling threshold): memory holds one batch of features, a few numbers per customer (id, probability, value) and
the features of the riskiest rows that get per-row reasons, never every feature of every customer at once.

Why not a SQL expression: gradient boosting wins on the demo worlds (100 trees), and even for logistic regression
the engine would still compute the same features per customer and hand over the same ids; the probability itself
is a matrix-vector product per batch (milliseconds), so scoring in Python costs nothing that SQL would save.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tools.analytics.customers.classifier import Fitted

BATCH_ROWS = 200_000
"""Customers scored per batch (≈ 30 MB of features)."""


@dataclass
class Streamed:
    """Every scored customer's id, probability and value (in stream order), and what reasons need."""

    ids: np.ndarray
    prob: np.ndarray
    value: np.ndarray | None
    typical: np.ndarray
    """Median of each feature over the flagged (sampled) rows (over the first batch when none is flagged)."""
    top_X: np.ndarray
    """Features of the `keep` rows with the highest probability at or above `floor`, highest first (ties: stream
    order), the rows `reasons` explains."""


def fixed_batches(reader, rows: int):
    """Arrow batches of exactly `rows` rows (the last fewer), whatever sizes the engine hands over."""
    pending, size = [], 0
    for batch in reader:
        pending.append(batch)
        size += batch.num_rows
        while size >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending).combine_chunks()


def score_stream(reader, names: list[str], fitted: Fitted, value: str | None, floor: float, keep: int,
                 id_column: str = "customer_id", flag: str = "_sampled") -> Streamed:
    """Score the rows of an Arrow record-batch `reader` (columns: `id_column`, `names`, optionally `flag`)."""
    ids, probs, values, typical_rows, first = [], [], [], [], None
    top_X, top_p, top_pos = np.empty((0, len(names))), np.empty(0), np.empty(0, dtype=np.int64)
    seen = 0
    for table in fixed_batches(reader, BATCH_ROWS):
        X = np.nan_to_num(np.column_stack([table.column(n).to_numpy().astype(float) for n in names]))
        prob = fitted.predict(X)
        first = np.median(X, axis=0) if first is None else first
        ids.append(table.column(id_column).to_numpy())
        probs.append(prob)
        if value is not None:
            values.append(X[:, names.index(value)].copy())
        if flag in table.column_names:
            typical_rows.append(X[table.column(flag).to_numpy().astype(bool)])
        eligible = np.flatnonzero(prob >= floor)
        top_X = np.concatenate([top_X, X[eligible]])
        top_p = np.concatenate([top_p, prob[eligible]])
        top_pos = np.concatenate([top_pos, seen + eligible])
        order = np.lexsort((top_pos, -top_p))[:keep]
        top_X, top_p, top_pos = top_X[order], top_p[order], top_pos[order]
        seen += table.num_rows
    if not ids:
        return Streamed(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0) if value else None,
                        np.zeros(len(names)), top_X)
    sampled = np.concatenate(typical_rows) if typical_rows else np.empty((0, len(names)))
    typical = np.median(sampled, axis=0) if sampled.shape[0] else first
    return Streamed(np.concatenate(ids), np.concatenate(probs), np.concatenate(values) if value else None,
                    typical, top_X)
