"""Seeded samples of customers drawn in the engine, the same on every engine.

A customer is in the sample when the first 8 hex digits of md5('<seed>:<id>') fall below a cut. md5, substring,
`||` and the comparison of equal-length hex strings mean the same in DuckDB, Spark, Snowflake and BigQuery (sqlglot
writes `TO_HEX(MD5(…))` there), so one seed picks the same customers on every engine and the sample is filtered
where the data lives. DuckDB's `USING SAMPLE` is not used: Spark's `TABLESAMPLE (n ROWS)` takes the first n rows, and
`hash()` differs per engine. Membership is per customer (a Bernoulli sample of rate `fraction`), so its size varies
by a few hundred around the target and is counted, never assumed; a customer sampled at one cutoff is sampled at
every cutoff.
"""

from __future__ import annotations

import math

SPACE = 16 ** 8
"""Distinct values of the 8 hex digits compared."""


def sample_condition(column_sql: str, seed: int, fraction: float) -> str:
    """SQL that is true for a seeded `fraction` of the distinct values of `column_sql` (TRUE when fraction ≥ 1)."""
    cut = math.ceil(max(0.0, fraction) * SPACE)
    if cut >= SPACE:
        return "TRUE"
    return f"substr(md5('{int(seed)}:' || CAST({column_sql} AS VARCHAR)), 1, 8) < '{cut:08x}'"


def fraction_for(target: int, population: int) -> float:
    """The sampling rate that gives `target` of `population` customers on average."""
    return min(1.0, target / population) if population else 1.0

