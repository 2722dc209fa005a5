"""A user's table as a feature matrix, built in SQL: numbers as numbers (blanks → median plus a missing flag;
non-negative ones also on a log scale), text with few values one-hot encoded, ids and free text left out."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np

from tools.analytics.customers.classifier import label_vector
from tools.analytics.customers.runs import ident
from tools.registry import ToolError
from tools.warehouse import WarehouseError, columns_of, is_numeric, resolve_columns


@dataclass
class FeatureMatrix:
    """One row per table row (ordered by id): ids, 0/1 labels (None without a label column), features."""

    ids: np.ndarray
    labels: np.ndarray | None
    X: np.ndarray
    names: list[str]
    """Name of each column of X: the column, `log1p(column)`, `column_missing` or `column=level`."""
    notes: list[str]
    """What was done to the data (blanks filled, columns left out, unlabelled rows dropped)."""


@dataclass
class _Encoding:
    """SQL expressions of the feature columns, their names, and notes, collected column by column."""

    exprs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, expr: str, name: str) -> None:
        self.exprs.append(expr)
        self.names.append(name)


def table_matrix(con: duckdb.DuckDBPyConnection, table: str, id_col: str, label_col: str | None,
                 features: list[str] | None, positive: tuple[str, ...] = ("yes", "true", "1", "y", "t"),
                 max_levels: int = 30) -> FeatureMatrix:
    """Encode `features` (default: every column but the id and label) of `table` in SQL and fetch the matrix."""
    try:  # the columns as the user typed them (Telco's `customerID`), spelled as in the table
        id_col, *named = resolve_columns(con, table, [id_col, *([label_col] if label_col else []), *(features or [])])
    except WarehouseError as exc:
        raise ToolError(str(exc)) from exc
    label_col, features = (named[0], named[1:] or features) if label_col else (None, named or features)
    types = columns_of(con, table)
    source = ident(table)
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    encoding = _Encoding()
    for column in features or [c for c in types if c not in (id_col, label_col)]:
        _encode(con, source, column, types[column], rows, max_levels, encoding)
    if not encoding.exprs:
        raise ToolError(f"No usable feature columns in {table}; pass feature_columns.")
    label = f", {ident(label_col)} AS _label" if label_col else ""
    where = f"WHERE {ident(label_col)} IS NOT NULL" if label_col else ""
    fetched = con.execute(f"SELECT {ident(id_col)} AS _id{label}, "
                          + ", ".join(f"{e} AS f{i}" for i, e in enumerate(encoding.exprs))
                          + f" FROM {source} {where} ORDER BY _id").fetchnumpy()
    X = np.column_stack([np.asarray(fetched[f"f{i}"], dtype=float) for i in range(len(encoding.exprs))])
    labels = label_vector(fetched["_label"], positive, label_col) if label_col else None
    if label_col and rows > X.shape[0]:
        encoding.notes.append(f"{rows - X.shape[0]:,} rows without a label left out")
    return FeatureMatrix(np.asarray(fetched["_id"]), labels, X, encoding.names, encoding.notes)


def _encode(con: duckdb.DuckDBPyConnection, source: str, column: str, sql_type: str, rows: int, max_levels: int,
            encoding: _Encoding) -> None:
    """Add one column's features: numeric (also text that is ≥ 95 % numbers), one-hot levels, or a note why not."""
    quoted, kind = ident(column), sql_type.split("(")[0]
    if is_numeric(kind):
        _numeric(con, source, column, f"TRY_CAST({quoted} AS DOUBLE)", encoding)
    elif kind != "VARCHAR":
        encoding.notes.append(f"{column} left out: {sql_type} columns are not used as features")
    else:
        distinct, filled, numeric = con.execute(
            f"SELECT count(DISTINCT {quoted}), count(nullif(trim({quoted}), '')), "
            f"count(TRY_CAST(nullif(trim({quoted}), '') AS DOUBLE)) FROM {source}").fetchall()[0]
        if filled and numeric >= 0.95 * filled:
            _numeric(con, source, column, f"TRY_CAST(nullif(trim({quoted}), '') AS DOUBLE)", encoding)
        elif distinct <= max(50, 0.01 * rows):
            _one_hot(con, source, column, max_levels, encoding)
        else:
            encoding.notes.append(f"{column} left out: {distinct:,} distinct text values (an id or free text)")


def _one_hot(con: duckdb.DuckDBPyConnection, source: str, column: str, max_levels: int,
             encoding: _Encoding) -> None:
    """A 0/1 column per level, for the `max_levels` most frequent levels."""
    quoted = ident(column)
    levels = con.execute(f"SELECT {quoted}, count(*) FROM {source} WHERE {quoted} IS NOT NULL GROUP BY 1 "
                         f"ORDER BY 2 DESC, 1 LIMIT {max_levels}").fetchall()
    for level, _ in levels:
        encoding.add(f"coalesce(({quoted} = '{str(level).replace(chr(39), chr(39) * 2)}')::DOUBLE, 0)",
                     f"{column}={level}")


def _numeric(con: duckdb.DuckDBPyConnection, source: str, column: str, number: str, encoding: _Encoding) -> None:
    """The number with blanks filled by the median, its log scale when non-negative, and a missing flag."""
    median, missing, low, distinct = con.execute(
        f"SELECT median({number}), count(*) - count({number}), min({number}), count(DISTINCT {number}) "
        f"FROM {source}").fetchall()[0]
    filled = f"coalesce({number}, {float(median or 0)})"
    encoding.add(filled, column)
    if low is not None and low >= 0 and distinct > 2:  # a log scale too: linear models need it for skew
        encoding.add(f"ln(1 + {filled})", f"log1p({column})")
    if missing:
        encoding.add(f"({number} IS NULL)::DOUBLE", f"{column}_missing")
        encoding.notes.append(f"{column}: {missing:,} blank or non-numeric values filled with the median ({median})")
