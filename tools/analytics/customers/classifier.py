"""The classifier score_churn and score_leads share: logistic regression vs gradient boosting chosen by
cross-validated AUC and calibrated (Platt), its quality on held-out rows, grouped permutation importance and
per-row reasons. Pure numpy/scikit-learn: no SQL (features.py builds matrices, runs.py saves scores)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from tools.registry import ToolError

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


# ---- labels, samples and bands --------------------------------------------------------------------------------

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


def band(prob: np.ndarray, high: float, medium: float, names: tuple[str, str, str]) -> np.ndarray:
    """Label probabilities ≥ high, ≥ medium and below with the three names."""
    return np.where(prob >= high, names[0], np.where(prob >= medium, names[1], names[2])).astype(object)


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
    rows: int = 0
    """Rows the model was fitted on (at most MAX_TRAIN_ROWS: a stratified, seeded sample of the rows given)."""

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


def _logit(prob: np.ndarray) -> np.ndarray:
    prob = np.clip(prob, 1e-6, 1 - 1e-6)
    return np.log(prob / (1 - prob))


def _fit_calibrator(raw: np.ndarray, y: np.ndarray):
    """Platt scaling on the log-odds of out-of-fold scores: monotone, so the ranking (AUC) is kept."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw)[:, None], y)


def _apply_calibrator(cal, raw: np.ndarray) -> np.ndarray:
    return cal.predict_proba(_logit(raw)[:, None])[:, 1]


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
    return Fitted(kind, model, _fit_calibrator(model.predict_proba(X[ca])[:, 1], y[ca]), names, groups,
                  rows=int(tr.size))


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
                  groups or default_groups(names), cv, rows=int(y.size))


# ---- quality --------------------------------------------------------------------------------------------------

@dataclass
class Quality:
    """How well held-out scores rank the outcome and how well their probabilities match it."""

    auc: float
    pr_auc: float
    """Average precision (area under the precision-recall curve)."""
    brier: float
    base_rate: float
    top_decile_lift: float | None
    """Outcome rate among the top-scored tenth over the base rate (None when the base rate is 0)."""
    calibration: list[dict]
    """Per bin of predicted probability (deciles): bin, n, mean_predicted, observed_rate."""


def calibration_table(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted probability and observed rate in each quantile bin of predicted probability."""
    edges = np.quantile(prob, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, prob, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        members = which == b
        if members.any():
            table.append({"bin": b + 1, "n": int(members.sum()), "mean_predicted": float(prob[members].mean()),
                          "observed_rate": float(y[members].mean())})
    return table


def quality(y: np.ndarray, prob: np.ndarray, bins: int = 10) -> Quality:
    """AUC, PR-AUC, Brier, top-decile lift and a calibration table (deciles of predicted probability)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    if len(np.unique(y)) < 2:
        raise ToolError(f"The holdout ({y.size:,} rows) has only one outcome, so the model cannot be checked; "
                        "use more data or an earlier as_of.")
    top = np.argsort(-prob, kind="stable")[: max(1, y.size // 10)]
    base = y.mean()
    return Quality(auc=float(roc_auc_score(y, prob)), pr_auc=float(average_precision_score(y, prob)),
                   brier=float(brier_score_loss(y, prob)), base_rate=float(base),
                   top_decile_lift=float(y[top].mean() / base) if base > 0 else None,
                   calibration=calibration_table(y, prob, bins))


def is_reliable(fitted: Fitted, holdout: Quality) -> bool:
    """Both the cross-validated and the holdout AUC reach RELIABLE_AUC."""
    return fitted.cv[fitted.kind]["auc"] >= RELIABLE_AUC and (holdout.auc or 0) >= RELIABLE_AUC


def model_metrics(fitted: Fitted, holdout: Quality) -> dict:
    """The model's choice and quality as the tools report them in their metrics."""
    return {"model": fitted.kind, "fit_rows": fitted.rows, "cv_auc": fitted.cv[fitted.kind]["auc"],
            "cv_auc_std": fitted.cv[fitted.kind]["auc_std"], "cv": fitted.cv, "holdout_auc": holdout.auc,
            "pr_auc": holdout.pr_auc, "brier": holdout.brier, "top_decile_lift": holdout.top_decile_lift,
            "calibration": holdout.calibration, "reliable": is_reliable(fitted, holdout)}


# ---- drivers and reasons --------------------------------------------------------------------------------------

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
    for group in groups:
        cols = [j for j, name in enumerate(fitted.groups) if name == group]
        drops = []
        for _ in range(repeats):
            Xp = Xs.copy()
            Xp[:, cols] = Xs[rng.permutation(ys.size)][:, cols]
            drops.append(base - roc_auc_score(ys, fitted.raw(Xp)))
        main = Xs[:, cols[0]]
        corr = float(np.corrcoef(main, base_p)[0, 1]) if main.std() > 0 else 0.0
        out.append({"driver": group, "importance": float(np.mean(drops)), "importance_std": float(np.std(drops)),
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
    for k, group in enumerate(groups):
        cols = [j for j, name in enumerate(fitted.groups) if name == group]
        Xg = X.copy()
        Xg[:, cols] = typical[cols]
        contrib[:, k] = base - fitted.raw(Xg)
    rank = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
    names = np.array(groups + [""], dtype=object)
    chosen = np.where(np.take_along_axis(contrib, rank, axis=1) > 1e-3, rank, len(groups))
    out[:] = [", ".join(x for x in row if x) or None for row in names[chosen].tolist()]
    return out
