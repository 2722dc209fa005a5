"""The shared classifier (tools/analytics/customers/classifier.py): its quality metrics against scikit-learn's, and
a planted logistic world whose effects come back with the right sign."""

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from tools.analytics.customers.classifier import fit_best, importance, quality
from tools.registry import ToolError


def _scores(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.1, 0.5)).astype(int)
    return y, 0.3 * y + 0.7 * rng.beta(2, 5, n)


@pytest.mark.parametrize("seed, ties", [(0, False), (1, False), (2, False), (3, True), (4, True)])
def test_auc_pr_auc_brier_and_lift_equal_scikit_learns(seed, ties):
    y, prob = _scores(seed, 800 + 150 * seed)
    if ties:
        prob = np.round(prob, 2)
    got = quality(y, prob)
    assert got.auc == pytest.approx(roc_auc_score(y, prob), abs=1e-12)
    assert got.pr_auc == pytest.approx(average_precision_score(y, prob), abs=1e-12)
    assert got.brier == pytest.approx(brier_score_loss(y, prob), abs=1e-12)
    # and from first principles: AUC is the Mann-Whitney U (ties count half), Brier the mean squared error
    ranks, n_pos = rankdata(prob), int(y.sum())
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2
    assert got.auc == pytest.approx(u / (n_pos * (y.size - n_pos)), abs=1e-12)
    assert got.brier == pytest.approx(np.mean((prob - y) ** 2), abs=1e-12)
    assert got.base_rate == pytest.approx(y.mean())
    top = np.argsort(-prob, kind="stable")[: y.size // 10]
    assert got.top_decile_lift == pytest.approx(y[top].mean() / y.mean())


@pytest.mark.parametrize("seed", range(4))
def test_calibration_table_equals_scikit_learns_calibration_curve(seed):
    """Quantile bins of predicted probability. n − 1 is prime to 10, so no decile edge falls exactly on a score
    (where this binning and scikit-learn's put a score on different sides of the edge)."""
    n = 1002 + 100 * seed
    y, prob = _scores(seed, n)
    table = quality(y, prob).calibration
    observed, predicted = calibration_curve(y, prob, n_bins=10, strategy="quantile")
    assert [row["observed_rate"] for row in table] == pytest.approx(observed.tolist(), abs=1e-12)
    assert [row["mean_predicted"] for row in table] == pytest.approx(predicted.tolist(), abs=1e-12)
    assert [row["bin"] for row in table] == list(range(1, 11))
    assert sum(row["n"] for row in table) == n and all(abs(row["n"] - n / 10) <= 1 for row in table)


def test_quality_refuses_a_holdout_with_one_outcome():
    with pytest.raises(ToolError, match="only one outcome"):
        quality(np.zeros(50, dtype=int), np.linspace(0, 1, 50))


def test_fit_best_recovers_the_sign_of_every_planted_effect():
    """Labels drawn from a known logistic model: every feature's driver says whether it raises or lowers the score
    as its coefficient does, every effect is found to matter, and the largest effect leads."""
    rng = np.random.default_rng(11)
    coef = np.array([1.5, -1.0, 0.6, -0.4, 0.25])
    names = [f"x{j}" for j in range(coef.size)]
    X = rng.normal(size=(6000, coef.size))
    y = (rng.random(6000) < 1 / (1 + np.exp(-(X @ coef - 0.5)))).astype(int)
    fitted = fit_best(X[:4000], y[:4000], names, seed=0)
    assert set(fitted.cv) == {"logistic_regression", "gradient_boosting"}
    assert fitted.cv[fitted.kind]["auc"] == max(v["auc"] for v in fitted.cv.values())
    drivers = {d["driver"]: d for d in importance(fitted, X[4000:], y[4000:], seed=0)}
    assert set(drivers) == set(names)
    for name, effect in zip(names, coef, strict=True):
        word = "raises" if effect > 0 else "lowers"
        assert drivers[name]["direction"] == f"higher {name} {word} the score", drivers[name]
        assert drivers[name]["importance"] > 0, drivers[name]
    assert next(iter(drivers)) == "x0"
    assert quality(y[4000:], fitted.predict(X[4000:])).auc > 0.75
