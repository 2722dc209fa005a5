"""The budget package's pure maths against independent references: adstock against a plain recursion and
scipy.signal.lfilter, saturation against its closed forms, marginal returns against finite differences, the fit
against planted curves, and the optimiser against the KKT conditions, random feasible splits and SLSQP."""

import numpy as np
import pytest
from scipy import optimize, signal

from tools.analytics.budget.curves import (
    ADSTOCK_LAGS,
    ALPHAS,
    KAPPAS,
    KINDS,
    Curves,
    adstock,
    bootstrap,
    candidates,
    fit_model,
    quality,
    saturation,
)
from tools.analytics.budget.optimise import Plan, feasible, optimise, rescaled, shifted, spend_bounds


def _recursive_adstock(spend: np.ndarray, alpha: float) -> np.ndarray:
    """y_t = α y_{t−1} + c (x_t − α^L x_{t−L}) with c = (1 − α) / (1 − α^L): the truncated, normalised
    geometric sum written as a recursion."""
    lags = ADSTOCK_LAGS
    scale = (1 - alpha) / (1 - alpha ** lags) if alpha > 0 else 1.0
    out, previous = np.zeros(len(spend)), 0.0
    for t, x in enumerate(spend):
        dropped = spend[t - lags] if t >= lags else 0.0
        previous = alpha * previous + scale * (x - alpha ** lags * dropped)
        out[t] = previous
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.4, 0.8])
def test_adstock_is_the_truncated_normalised_geometric_filter(alpha):
    rng = np.random.default_rng(1)
    spend = rng.gamma(2.0, 50.0, 120) * (rng.random(120) > 0.2)
    kept = spend.copy()
    weights = alpha ** np.arange(ADSTOCK_LAGS)
    stocked = adstock(spend, alpha)
    np.testing.assert_array_equal(spend, kept)  # the input is not changed
    np.testing.assert_allclose(stocked, signal.lfilter(weights / weights.sum(), [1.0], spend), rtol=1e-12)
    np.testing.assert_allclose(stocked, _recursive_adstock(spend, alpha), rtol=1e-9, atol=1e-9)


def test_adstock_keeps_a_steady_spend_and_carries_an_impulse_over():
    np.testing.assert_allclose(adstock(np.full(40, 250.0), 0.6)[ADSTOCK_LAGS - 1:], 250.0, rtol=1e-12)
    impulse = np.zeros(30)
    impulse[3] = 1.0
    carried = adstock(impulse, 0.5)
    np.testing.assert_allclose(carried[4:3 + ADSTOCK_LAGS] / carried[3:2 + ADSTOCK_LAGS], 0.5)
    assert carried[:3].sum() == 0 and carried[3 + ADSTOCK_LAGS:].sum() == 0
    assert carried.sum() == pytest.approx(1.0)


def test_saturation_matches_its_closed_forms():
    u = np.linspace(0.0, 20.0, 401)
    assert KINDS == ("exponential", "logistic")
    np.testing.assert_allclose(saturation(u, 0), 1 - np.exp(-u), rtol=1e-14)
    np.testing.assert_allclose(saturation(u, 1), (1 - np.exp(-u)) / (1 + np.exp(-u)), rtol=1e-12, atol=1e-15)
    for kind, slope_at_zero in ((0, 1.0), (1, 0.5)):
        values = saturation(u, kind)
        assert values[0] == 0 and np.all(np.diff(values) > 0) and values[-1] == pytest.approx(1.0, abs=1e-5)
        assert saturation(np.array([1e-7]), kind)[0] / 1e-7 == pytest.approx(slope_at_zero, rel=1e-6)
    assert saturation(np.array([np.log(2.0)]), 0)[0] == pytest.approx(0.5)
    assert saturation(np.array([np.log(3.0)]), 1)[0] == pytest.approx(0.5)


def test_marginal_return_is_the_derivative_of_the_response():
    curves = Curves(kind=np.array([0.0, 1.0, 0.0]), kappa=np.array([100.0, 40.0, 7.0]),
                    beta=np.array([300.0, 80.0, 0.0]))
    spend, step = np.array([55.0, 90.0, 3.0]), 1e-4
    derivative = (curves.response(spend + step) - curves.response(spend - step)) / (2 * step)
    np.testing.assert_allclose(curves.marginal(spend), derivative, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(curves.response(spend)[:2],
                               curves.beta[:2] * np.array([1 - np.exp(-0.55), np.tanh(90 / 80)]))
    np.testing.assert_allclose(curves.saturation(spend), [1 - np.exp(-0.55), np.tanh(90 / 80), 0.0])


def test_candidates_cover_the_grid_of_transforms():
    rng = np.random.default_rng(2)
    spend = rng.gamma(2.0, 30.0, 80)
    cands = candidates(spend)
    assert cands.features.shape == (80, len(ALPHAS) * len(KINDS) * len(KAPPAS))
    scale = spend[spend > 0].mean()
    for column in (0, 37, cands.features.shape[1] - 1):
        kind, alpha, kappa = cands.grid[column]
        assert alpha in ALPHAS and kappa / scale == pytest.approx(KAPPAS[np.argmin(abs(KAPPAS * scale - kappa))])
        np.testing.assert_allclose(cands.features[:, column], saturation(adstock(spend, alpha) / kappa, int(kind)))


def _planted(per_channel: bool, noise: float = 0.0, seed: int = 3):
    """Three channels with known (kind, α, κ, β) on the grid and an outcome built from them."""
    rng = np.random.default_rng(seed)
    n = 300
    spend = rng.gamma(3.0, 1.0, (n, 3)) * np.array([100.0, 40.0, 10.0])
    truth = [(0, ALPHAS[4], 3), (1, ALPHAS[2], 9), (0, ALPHAS[0], 6)]  # (kind, α, index into KAPPAS)
    betas = np.array([500.0, 120.0, 60.0])
    base = np.ones((n, 1))
    signal_ = np.column_stack([
        betas[c] * saturation(adstock(spend[:, c], alpha) / (KAPPAS[k] * spend[:, c].mean()), kind)
        for c, (kind, alpha, k) in enumerate(truth)])
    shared = 200.0 + signal_ + noise * rng.standard_normal((n, 3)) * betas / 10
    outcome = shared if per_channel else shared.sum(1, keepdims=True)
    return spend, outcome, base, truth, betas


@pytest.mark.parametrize("per_channel", [True, False])
def test_the_fit_recovers_planted_curves(per_channel):
    spend, outcome, base, truth, betas = _planted(per_channel)
    model = fit_model(spend, outcome, base, per_channel)
    for c, (kind, alpha, k) in enumerate(truth):
        chosen_kind, chosen_alpha, chosen_kappa = model.chosen(c)
        assert (chosen_kind, chosen_alpha) == (kind, alpha)
        assert chosen_kappa == pytest.approx(KAPPAS[k] * spend[:, c].mean())
    np.testing.assert_allclose(model.fit.beta, betas, rtol=1e-6)
    np.testing.assert_allclose(model.fitted, outcome, rtol=1e-8)
    fit_quality = quality(model)
    assert fit_quality.r2 == pytest.approx(1.0) and fit_quality.mape < 1e-8 and fit_quality.holdout_mape < 1e-8


def test_the_fit_keeps_betas_non_negative_and_matches_least_squares_on_its_choice():
    spend, outcome, base, _, _ = _planted(True, noise=1.0)
    outcome[:, 2] = 200.0 - 0.5 * spend[:, 2] + np.random.default_rng(5).normal(0, 1, len(spend))  # spend hurts
    model = fit_model(spend, outcome, base, per_channel=True)
    assert model.fit.beta[2] == 0 and np.all(model.fit.beta >= 0)
    for c in (0, 1):
        design = np.column_stack([base, model.features[c][:, model.fit.choice[c]]])
        np.testing.assert_allclose(model.fit.coefs[c], optimize.nnls(design, outcome[:, c])[0], rtol=1e-9)


def test_bootstrap_bands_bracket_the_fit_and_repeat_with_the_seed():
    spend, outcome, base, _, _ = _planted(True, noise=3.0)
    model = fit_model(spend, outcome, base, per_channel=True)
    current = spend[-30:].mean(0)
    allocations, references = np.array([current * 1.1]), np.array([current])
    bands = bootstrap(model, current, allocations, references, periods=30.0, draws=40, block=14)
    again = bootstrap(model, current, allocations, references, periods=30.0, draws=40, block=14)
    np.testing.assert_array_equal(bands.gain, again.gain)
    assert np.all(bands.contribution[0] <= bands.contribution[1]) and np.all(bands.marginal[0] <= bands.marginal[1])
    point = model.curves.marginal(current)
    assert np.all((bands.marginal[0] <= point * 1.05) & (point * 0.95 <= bands.marginal[1]))


CURVES = Curves(kind=np.array([0.0, 1.0, 0.0, 1.0, 0.0]), kappa=np.array([120.0, 60.0, 30.0, 200.0, 80.0]),
                beta=np.array([400.0, 150.0, 45.0, 500.0, 90.0]))


def _check_kkt(curves: Curves, spend: np.ndarray, total: float, low: np.ndarray, high: np.ndarray) -> None:
    """Σ spend = total within the bounds; equal marginal returns inside them, higher at a cap, lower at a floor."""
    assert spend.sum() == pytest.approx(total, rel=1e-9)
    assert np.all(spend >= low - 1e-9) and np.all(spend <= high + 1e-9)
    marginal = curves.marginal(spend)
    inside = (spend > low + 1e-6) & (spend < high - 1e-6)
    assert inside.any()
    level = marginal[inside].mean()
    np.testing.assert_allclose(marginal[inside], level, rtol=1e-6)
    assert np.all(marginal[spend >= high - 1e-6] >= level * (1 - 1e-6))
    assert np.all(marginal[spend <= low + 1e-6] <= level * (1 + 1e-6))


def _random_feasible(rng, total: float, low: np.ndarray, high: np.ndarray, n: int) -> np.ndarray:
    """Random splits of `total` within the bounds: a uniform point of the box (capped at `total` per channel), its
    surplus or shortfall then spread over the channels in proportion to their room."""
    splits = []
    for _ in range(n):
        spend = rng.uniform(low, np.minimum(high, total))
        gap = total - spend.sum()
        room = (np.minimum(high, total) - spend) if gap > 0 else (spend - low)
        spend = spend + gap * room / room.sum()
        assert spend.sum() == pytest.approx(total) and np.all(spend >= low - 1e-9) and np.all(spend <= high + 1e-9)
        splits.append(spend)
    return np.array(splits)


@pytest.mark.parametrize("total", [150.0, 600.0, 2500.0])
def test_optimiser_equalises_marginal_returns_without_bounds(total):
    low, high = np.zeros(5), np.full(5, np.inf)
    spend = optimise(CURVES, total, low, high)
    _check_kkt(CURVES, spend, total, low, high)
    best = CURVES.response(spend).sum()
    rng = np.random.default_rng(int(total))
    assert all(CURVES.response(other).sum() <= best + 1e-9 for other in _random_feasible(rng, total, low, high, 500))


def test_optimiser_respects_bounds_and_beats_random_splits_and_slsqp():
    current = np.array([300.0, 120.0, 60.0, 150.0, 90.0])
    total = 800.0
    low, high = spend_bounds(["a", "b", "c", "d", "e"], current, 30.0, {"c": 2400.0}, {"a": 9000.0}, 0.5)
    np.testing.assert_allclose(low, [150.0, 60.0, 80.0, 75.0, 45.0])
    np.testing.assert_allclose(high, [300.0, 180.0, 90.0, 225.0, 135.0])
    assert feasible(low, high, total)
    spend = optimise(CURVES, total, low, high)
    _check_kkt(CURVES, spend, total, low, high)
    best = CURVES.response(spend).sum()
    rng = np.random.default_rng(9)
    assert all(CURVES.response(other).sum() <= best + 1e-9 for other in _random_feasible(rng, total, low, high, 300))
    start = (low + high) / 2 * total / ((low + high) / 2).sum()
    reference = optimize.minimize(lambda b: -CURVES.response(b).sum(), start,
                                  method="SLSQP", bounds=list(zip(low, high, strict=True)),
                                  constraints=[{"type": "eq", "fun": lambda b: b.sum() - total}],
                                  options={"ftol": 1e-12, "maxiter": 500})
    assert reference.success and best >= -reference.fun - 1e-6
    np.testing.assert_allclose(spend, reference.x, rtol=1e-3, atol=1e-2)


def test_optimiser_spreads_a_budget_the_curves_cannot_use_evenly():
    flat = Curves(kind=np.zeros(3), kappa=np.ones(3), beta=np.zeros(3))
    low, high = np.array([10.0, 0.0, 0.0]), np.array([50.0, 40.0, np.inf])
    spend = optimise(flat, 100.0, low, high)
    assert spend.sum() == pytest.approx(100.0)
    assert np.all(spend >= low) and np.all(spend <= high)


def test_bounds_feasibility_and_what_if_allocations():
    current = np.array([100.0, 50.0, 0.0])
    low, high = spend_bounds(["x", "y", "z"], current, 10.0, None, None, None)
    np.testing.assert_array_equal(low, 0.0)
    assert np.all(np.isinf(high))
    assert not feasible(np.array([60.0, 50.0]), np.array([70.0, 60.0]), 100.0)
    assert not feasible(np.array([10.0, 10.0]), np.array([40.0, 50.0]), 100.0)
    assert feasible(np.array([10.0, 10.0]), np.array([40.0, 60.0]), 100.0)
    moved = shifted(current, 0, 2, 0.2)
    np.testing.assert_allclose(moved, [80.0, 50.0, 20.0])
    np.testing.assert_allclose(rescaled(current, {0: 0.1, 1: -2.0}), [110.0, 0.0, 0.0])
    np.testing.assert_array_equal(current, [100.0, 50.0, 0.0])  # inputs untouched


def test_plan_gains_compare_each_allocation_with_its_reference():
    current = np.array([300.0, 120.0, 60.0, 150.0, 90.0])
    low, high = spend_bounds(list("abcde"), current, 30.0, None, None, 0.25)
    budget = float(current.sum())
    recommended = optimise(CURVES, budget, low, high)
    scenario = shifted(current, 0, 1, 0.2)
    plan = Plan(periods=30.0, current=current, budget=budget, recommended=recommended,
                scenarios=[("move", scenario)])
    gains = plan.gains(CURVES)
    assert gains[0] == pytest.approx((CURVES.response(recommended).sum() - CURVES.response(current).sum()) * 30)
    assert gains[0] > 0
    assert gains[1] == pytest.approx((CURVES.response(scenario).sum() - CURVES.response(current).sum()) * 30)
    assert plan.outcome_at_current_split(CURVES) == pytest.approx(CURVES.response(current).sum() * 30)
