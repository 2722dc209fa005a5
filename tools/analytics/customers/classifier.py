"""Shared machinery of the customer-analytics tools: checks, run ids, saving scores, and the classifier
that score_churn and score_leads both use (logistic regression vs gradient boosting, calibrated)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from tools.registry import ToolError
from tools.warehouse import WarehouseError, data_end, is_numeric, quote, require_table, transaction

RELIABLE_AUC = 0.6
"""Below this cross-validated (or holdout) AUC a model is not reliable and the tools say not to act on it."""
MAX_TRAIN_ROWS = 50_000
"""Models are fitted on at most this many rows (a stratified, seeded sample); everything is scored."""


def single_thread(fn):
    """Run model code on one OpenMP/BLAS thread: on a busy 2-core machine spinning OpenMP workers made gradient
    boosting 10-50× slower, and one thread keeps results bit-for-bit repeatable."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        import sklearn.ensemble  # noqa: F401  (load the OpenMP and BLAS libraries before limiting them)
        import sklearn.linear_model  # noqa: F401

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return inner


# ---- checks and bookkeeping ---------------------------------------------------------------------------------

def need(con: duckdb.DuckDBPyConnection, table: str, columns: list[str] | tuple[str, ...] = ()) -> None:
    """require_table, but as a ToolError (the agent and CLI show the message, never a traceback)."""
    try:
        require_table(con, table, columns)
    except WarehouseError as exc:
        raise ToolError(str(exc)) from exc


def ident(name: str) -> str:
    """A safely quoted identifier, or a ToolError explaining what a valid name looks like."""
    try:
        return quote(name)
    except WarehouseError as exc:
        raise ToolError(str(exc)) from exc


def resolve_as_of(con: duckdb.DuckDBPyConnection, as_of: date | None, last: date | None = None,
                  what: str = "the warehouse's data") -> date:
    """Default `as_of` to the last day with data; refuse dates after it (the future has no data)."""
    last = last if last is not None else data_end(con)
    if last is None:
        raise ToolError("There is no dated data yet. Run `northstar init --demo` or load your tables.")
    if as_of is None:
        return last
    if as_of > last:
        raise ToolError(f"as_of {as_of} is after the last day of {what} ({last}); use {last} or an earlier date.")
    return as_of


def make_run_id(prefix: str, params: BaseModel, *extra) -> str:
    """A deterministic run id from the arguments and a fingerprint of the rows a run saves: the same id means the
    same rows, so a re-run reuses them."""
    blob = params.model_dump_json() + "|" + "|".join(map(str, extra))
    return f"{prefix}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def read_only(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return bool(rows and rows[0][0])  # fetchall completes the result, so register() may follow


def fingerprint(*arrays) -> str:
    """A cheap digest of arrays (shapes, column sums, text), so a run id changes when its data or scores do."""
    parts = []
    for a in arrays:
        a = np.asarray(a)
        parts.append(str(a.shape))
        if a.dtype.kind in "biuf":
            parts.append(np.round(np.asarray(a, dtype=float).reshape(a.shape[0], -1).sum(axis=0), 6).tobytes().hex())
        else:
            parts.append(hashlib.sha1("\x1f".join(map(str, a.ravel().tolist())).encode()).hexdigest())
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def save_run(con: duckdb.DuckDBPyConnection, table: str, run_id: str, columns: dict) -> str | None:
    """Save `run_id`'s rows of an output table; returns a warning when they cannot be saved.

    Run ids are deterministic (arguments + fingerprint of the scores), so a run already saved in full is left as
    it is: re-running is free, and a large DELETE (slow on DuckDB's key index) is avoided."""
    if read_only(con):
        return f"The warehouse is open read-only, so {table} was not updated (run {run_id})."
    n = len(next(iter(columns.values())))
    have = con.execute(f"SELECT count(*) FROM {quote(table)} WHERE run_id = ?", [run_id]).fetchall()[0][0]
    if have == n:
        return None
    stage = f"_stage_{table}"
    con.register(stage, pa.table(columns))
    try:
        cols = ", ".join(f'"{c}"' for c in columns)
        with transaction(con):
            if have:
                con.execute(f"DELETE FROM {quote(table)} WHERE run_id = ?", [run_id])
            con.execute(f"INSERT INTO {quote(table)} (run_id, {cols}) SELECT ?, {cols} FROM {stage}", [run_id])
    finally:
        con.unregister(stage)
    return None


def band(prob: np.ndarray, high: float, medium: float, names: tuple[str, str, str]) -> np.ndarray:
    """Label probabilities ≥ high, ≥ medium and below with the three names."""
    return np.where(prob >= high, names[0], np.where(prob >= medium, names[1], names[2])).astype(object)


# ---- a labelled table as a design matrix --------------------------------------------------------------------


def label_vector(values: np.ndarray, positive: tuple[str, ...], column: str) -> np.ndarray:
    """0/1 labels from booleans, 0/1 numbers or yes/no-style text; exactly two classes are required."""
    text = np.char.lower(np.char.strip(np.asarray([str(v) for v in values], dtype=str)))
    classes = sorted(set(text.tolist()))
    if len(classes) != 2:
        shown = ", ".join(classes[:6]) + (" …" if len(classes) > 6 else "")
        raise ToolError(f"Label column {column!r} must have exactly two values (e.g. yes/no); it has "
                        f"{len(classes)}: {shown}.")
    pos = [c for c in classes if c in positive] or [classes[1]]
    return (text == pos[0]).astype(int)


def table_matrix(con: duckdb.DuckDBPyConnection, table: str, id_col: str, label_col: str | None,
                 features: list[str] | None, positive: tuple[str, ...] = ("yes", "true", "1", "y", "t"),
                 max_levels: int = 30):
    """Numbers as numbers (blanks → median plus a missing flag; non-negative ones also on a log scale), text
    with few values one-hot encoded, all in SQL; returns ids, labels (or None), X, feature names and notes."""
    from tools.warehouse import columns_of

    types = columns_of(con, table)
    t = ident(table)
    cols = features or [c for c in types if c not in (id_col, label_col)]
    n = con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
    exprs, names, notes = [], [], []
    for col in cols:
        q, kind = ident(col), types[col].split("(")[0]
        if is_numeric(kind):
            num = f"TRY_CAST({q} AS DOUBLE)"
        elif kind == "VARCHAR":
            distinct, filled, numeric = con.execute(
                f"SELECT count(DISTINCT {q}), count(nullif(trim({q}), '')), "
                f"count(TRY_CAST(nullif(trim({q}), '') AS DOUBLE)) FROM {t}").fetchall()[0]
            if filled and numeric >= 0.95 * filled:
                num = f"TRY_CAST(nullif(trim({q}), '') AS DOUBLE)"
            elif distinct <= max(50, 0.01 * n):
                levels = con.execute(f"SELECT {q}, count(*) FROM {t} WHERE {q} IS NOT NULL GROUP BY 1 "
                                     f"ORDER BY 2 DESC, 1 LIMIT {max_levels}").fetchall()
                for level, _ in levels:
                    exprs.append(f"coalesce(({q} = '{str(level).replace(chr(39), chr(39) * 2)}')::DOUBLE, 0)")
                    names.append(f"{col}={level}")
                continue
            else:
                notes.append(f"{col} left out: {distinct:,} distinct text values (an id or free text)")
                continue
        else:
            notes.append(f"{col} left out: {types[col]} columns are not used as features")
            continue
        median, missing, low, distinct = con.execute(
            f"SELECT median({num}), count(*) - count({num}), min({num}), count(DISTINCT {num}) FROM {t}").fetchall()[0]
        fill = f"coalesce({num}, {float(median or 0)})"
        exprs.append(fill)
        names.append(col)
        if low is not None and low >= 0 and distinct > 2:  # a log scale too: linear models need it for skew
            exprs.append(f"ln(1 + {fill})")
            names.append(f"log1p({col})")
        if missing:
            exprs.append(f"({num} IS NULL)::DOUBLE")
            names.append(f"{col}_missing")
            notes.append(f"{col}: {missing:,} blank or non-numeric values filled with the median ({median})")
    if not exprs:
        raise ToolError(f"No usable feature columns in {table}; pass feature_columns.")
    label = f", {ident(label_col)} AS _label" if label_col else ""
    where = f"WHERE {ident(label_col)} IS NOT NULL" if label_col else ""
    rel = con.execute(f"SELECT {ident(id_col)} AS _id{label}, " + ", ".join(f"{e} AS f{i}" for i, e in
                      enumerate(exprs)) + f" FROM {t} {where} ORDER BY _id").fetchnumpy()
    X = np.column_stack([np.asarray(rel[f"f{i}"], dtype=float) for i in range(len(exprs))])
    y = label_vector(rel["_label"], positive, label_col) if label_col else None
    if label_col and n > X.shape[0]:
        notes.append(f"{n - X.shape[0]:,} rows without a label left out")
    return np.asarray(rel["_id"]), y, X, names, notes


# ---- the classifier -------------------------------------------------------------------------------------------

@dataclass
class Fitted:
    """A chosen, calibrated classifier and how it was chosen."""

    kind: str
    model: object
    calibrator: object
    names: list[str]
    groups: list[str]
    """Driver group of each column (one-hot levels of a category share a group)."""
    cv: dict[str, dict[str, float]] = field(default_factory=dict)

    @single_thread
    def raw(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(X)[:, 1]

    @single_thread
    def predict(self, X: np.ndarray) -> np.ndarray:
        return _apply_calibrator(self.calibrator, self.raw(X))


def _model(kind: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=50,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _fit_calibrator(raw: np.ndarray, y: np.ndarray):
    """Platt scaling on the log-odds of out-of-fold scores: monotone, so the ranking (AUC) is kept."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw)[:, None], y)


def _apply_calibrator(cal, raw: np.ndarray) -> np.ndarray:
    return cal.predict_proba(_logit(raw)[:, None])[:, 1]


def sample_rows(y: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices of a stratified, seeded sample of at most `cap` rows (all rows when there are fewer)."""
    n = y.size
    if n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        k = max(1, round(cap * idx.size / n))
        keep.append(np.sort(rng.choice(idx, k, replace=False)))
    return np.sort(np.concatenate(keep))


def default_groups(names: list[str]) -> list[str]:
    """`contract=Two year` → `contract`; `totalcharges_missing` and `log1p(totalcharges)` → `totalcharges`."""
    return [n.split("=", 1)[0].removesuffix("_missing").removeprefix("log1p(").removesuffix(")") for n in names]


@single_thread
def fit_split(kind: str, X: np.ndarray, y: np.ndarray, names: list[str], groups: list[str], seed: int) -> Fitted:
    """One model of `kind` fitted on a stratified 80 % and calibrated on the other 20 % (the out-of-time check)."""
    from sklearn.model_selection import train_test_split

    if min(int(y.sum()), int((1 - y).sum())) < 20:
        raise ToolError(f"Too few examples of each outcome for the out-of-time check ({int(y.sum())} positive, "
                        f"{int((1 - y).sum())} negative; 20 of each needed). Use a later as_of or a shorter horizon.")
    idx = sample_rows(y, MAX_TRAIN_ROWS, seed)
    tr, ca = train_test_split(idx, test_size=0.2, stratify=y[idx], random_state=seed)
    model = _model(kind, seed).fit(X[tr], y[tr])
    return Fitted(kind, model, _fit_calibrator(model.predict_proba(X[ca])[:, 1], y[ca]), names, groups)


@single_thread
def fit_best(X: np.ndarray, y: np.ndarray, names: list[str], seed: int, groups: list[str] | None = None,
             kinds: tuple[str, ...] | None = None, folds: int = 5) -> Fitted:
    """Stratified k-fold CV AUC for each model kind; the best is refitted on all rows and calibrated on its
    out-of-fold scores."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    kinds = kinds or ("logistic_regression", "gradient_boosting")
    idx = sample_rows(y, MAX_TRAIN_ROWS, seed)
    X, y = X[idx], y[idx]
    if min(int(y.sum()), int((1 - y).sum())) < folds * 4:
        raise ToolError(f"Too few examples of each outcome to fit a model ({int(y.sum())} positive, "
                        f"{int((1 - y).sum())} negative); at least {folds * 4} of each are needed.")
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
    cv, oof = {}, {}
    for kind in kinds:
        pred = np.zeros(y.size)
        aucs = []
        for tr, te in splits:
            pred[te] = _model(kind, seed).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
            aucs.append(roc_auc_score(y[te], pred[te]))
        cv[kind] = {"auc": float(np.mean(aucs)), "auc_std": float(np.std(aucs))}
        oof[kind] = pred
    best = max(kinds, key=lambda k: cv[k]["auc"])
    return Fitted(best, _model(best, seed).fit(X, y), _fit_calibrator(oof[best], y), names,
                  groups or default_groups(names), cv)


# ---- quality --------------------------------------------------------------------------------------------------

def quality(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    """AUC, PR-AUC, Brier, top-decile lift and a calibration table (deciles of predicted probability)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    if len(np.unique(y)) < 2:
        raise ToolError(f"The holdout ({y.size:,} rows) has only one outcome, so the model cannot be checked; "
                        "use more data or an earlier as_of.")
    order = np.argsort(-p, kind="stable")
    top = order[: max(1, y.size // 10)]
    base = y.mean()
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        m = which == b
        if m.any():
            table.append({"bin": b + 1, "n": int(m.sum()), "mean_predicted": float(p[m].mean()),
                          "observed_rate": float(y[m].mean())})
    return {"auc": float(roc_auc_score(y, p)), "pr_auc": float(average_precision_score(y, p)),
            "brier": float(brier_score_loss(y, p)), "base_rate": float(base),
            "top_decile_lift": float(y[top].mean() / base) if base > 0 else None, "calibration": table}


@single_thread
def importance(fitted: Fitted, X: np.ndarray, y: np.ndarray, seed: int, cap: int = 8000,
               repeats: int = 3) -> list[dict]:
    """Global drivers: grouped permutation importance (the drop in AUC when a group's columns are shuffled
    together, e.g. all levels of a category), largest first."""
    from sklearn.metrics import roc_auc_score

    idx = sample_rows(y, cap, seed)
    Xs, ys = X[idx], y[idx]
    base_p = fitted.raw(Xs)
    base = roc_auc_score(ys, base_p)
    rng = np.random.default_rng(seed)
    groups = list(dict.fromkeys(fitted.groups))
    out = []
    for g in groups:
        cols = [j for j, name in enumerate(fitted.groups) if name == g]
        drops = []
        for _ in range(repeats):
            Xp = Xs.copy()
            Xp[:, cols] = Xs[rng.permutation(ys.size)][:, cols]
            drops.append(base - roc_auc_score(ys, fitted.raw(Xp)))
        main = Xs[:, cols[0]]
        corr = float(np.corrcoef(main, base_p)[0, 1]) if main.std() > 0 else 0.0
        out.append({"driver": g, "importance": float(np.mean(drops)), "importance_std": float(np.std(drops)),
                    "features": [fitted.names[j] for j in cols],
                    "direction": f"higher {fitted.names[cols[0]]} {'raises' if corr > 0 else 'lowers'} the score"})
    return sorted(out, key=lambda d: -d["importance"])


@single_thread
def reasons(fitted: Fitted, X: np.ndarray, drivers: list[dict], typical: np.ndarray, top: int = 3,
            lead: int = 8) -> np.ndarray:
    """Per-row top reasons: how much the score falls when a leading driver group is set to its `typical` (the
    population median) value — a what-if attribution that works for any model; only groups that push the score
    up are named."""
    out = np.full(X.shape[0], None, dtype=object)
    groups = [d["driver"] for d in drivers[:lead] if d["importance"] > 0]
    if X.shape[0] == 0 or not groups:
        return out
    base = fitted.raw(X)
    contrib = np.zeros((X.shape[0], len(groups)))
    for k, g in enumerate(groups):
        cols = [j for j, name in enumerate(fitted.groups) if name == g]
        Xg = X.copy()
        Xg[:, cols] = typical[cols]
        contrib[:, k] = base - fitted.raw(Xg)
    rank = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    names = np.array(groups + [""], dtype=object)
    chosen = np.where(np.take_along_axis(contrib, rank, axis=1) > 1e-3, rank, len(groups))
    out[:] = [", ".join(x for x in row if x) or None for row in names[chosen].tolist()]
    return out
