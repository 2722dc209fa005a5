"""Response curves of media spend, pure numpy: geometric adstock, saturation, the grid of candidate transforms,
the least-squares fit that picks one transform per channel, its prediction and quality, the steady-state response
and marginal-return curves, and block-bootstrap bands. No SQL, no pydantic (tests/tools/test_budget_curves.py
checks it against independent references)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ADSTOCK_LAGS = 12
"""Periods over which spend carries over (geometric weights, truncated and normalised)."""
ALPHAS = np.round(np.arange(0.0, 0.85, 0.1), 2)
"""Candidate adstock decay rates."""
KAPPAS = np.geomspace(0.05, 10.0, 16)
"""Candidate half-saturation points as a multiple of the mean active spend."""
KINDS = ("exponential", "logistic")
"""Saturation shapes, by `kind` index: 1 − e^(−u) and tanh(u / 2) = (1 − e^(−u)) / (1 + e^(−u))."""


def saturation(u: np.ndarray, kind: int) -> np.ndarray:
    """Share of the maximum response at u = adstocked spend / κ, for the shape KINDS[kind]."""
    return 1.0 - np.exp(-u) if kind == 0 else np.tanh(u / 2.0)


def adstock(spend: np.ndarray, alpha: float) -> np.ndarray:
    """Geometric adstock over ADSTOCK_LAGS periods, weights normalised to 1 (a steady spend b has adstock b)."""
    weights = alpha ** np.arange(ADSTOCK_LAGS)
    weights = weights / weights.sum()
    out = weights[0] * spend
    for lag in range(1, ADSTOCK_LAGS):
        out[lag:] += weights[lag] * spend[:-lag]
    return out


@dataclass
class Candidates:
    """Every (kind, α, κ) transform of one channel's spend."""

    features: np.ndarray
    """Periods × candidates: saturation(adstock(spend, α) / κ, kind)."""
    grid: np.ndarray
    """Candidates × 3: the (kind, α, κ) of each column of `features`."""


def candidates(spend: np.ndarray) -> Candidates:
    """The transforms of one channel's spend over the grid KINDS × ALPHAS × KAPPAS (κ scaled to its spend)."""
    scale = spend[spend > 0].mean()
    features, grid = [], []
    for alpha in ALPHAS:
        stocked = adstock(spend, alpha)
        for kind in range(len(KINDS)):
            for kappa in KAPPAS * scale:
                features.append(saturation(stocked / kappa, kind))
                grid.append((kind, alpha, kappa))
    return Candidates(np.array(features).T, np.array(grid))


@dataclass
class Fit:
    """One transform per channel and the least-squares coefficients of each outcome group."""

    choice: np.ndarray
    """Per channel: the index of its chosen candidate."""
    beta: np.ndarray
    """Per channel: its response at full saturation, per period (≥ 0)."""
    coefs: list[np.ndarray]
    """Per group: the coefficients of the non-media regressors, then of the group's channels."""


def _basis(columns: np.ndarray) -> np.ndarray:
    """Orthonormal basis of `columns` (rank-safe)."""
    if columns.shape[1] == 0:
        return columns
    u, singular, _ = np.linalg.svd(columns, full_matrices=False)
    return u[:, singular > singular[0] * 1e-10]


def _best_candidate(channel: int, others: list[int], choice: np.ndarray, outcome: np.ndarray,
                    features: list[np.ndarray], base: np.ndarray, cache: dict) -> int:
    """The candidate of `channel` that most reduces the squared error given the others' choices (β > 0 only).

    The candidates' residuals off the other regressors do not depend on the outcome, so they are cached."""
    key = (channel, *[(other, choice[other]) for other in others])
    if key not in cache:
        basis = _basis(np.column_stack([base, *[features[other][:, k] for other, k in key[1:]]]))
        resid = features[channel] - basis @ (basis.T @ features[channel])
        cache[key] = (basis, resid, np.einsum("ij,ij->j", resid, resid))
    basis, resid, norms = cache[key]
    covariance = resid.T @ (outcome - basis @ (basis.T @ outcome))
    gain = np.where((covariance > 0) & (norms > 1e-12), covariance ** 2 / np.maximum(norms, 1e-12), 0.0)
    return int(np.argmax(gain))


def fit_response(outcome: np.ndarray, features: list[np.ndarray], base: np.ndarray, groups: list[list[int]],
                 cache: dict | None = None) -> Fit:
    """Choose each channel's transform by coordinate descent over the grid; least squares with β ≥ 0.

    `outcome` is periods × groups: one outcome per channel (platform-reported) or one shared outcome (a table).
    Pass the same `cache` to refits on the same features (the bootstrap) to reuse the projections."""
    cache = {} if cache is None else cache
    choice = np.array([f.shape[1] // 2 for f in features])
    beta, coefs = np.zeros(len(features)), []
    for group, channels in enumerate(groups):
        target = outcome[:, group]
        for _ in range(8):
            changed = False
            for channel in channels:
                others = [other for other in channels if other != channel]
                best = _best_candidate(channel, others, choice, target, features, base, cache)
                changed, choice[channel] = changed or best != choice[channel], best
            if not changed or len(channels) == 1:
                break
        design = np.column_stack([base, *[features[c][:, choice[c]] for c in channels]])
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        coef[base.shape[1]:] = np.maximum(coef[base.shape[1]:], 0.0)
        beta[channels] = coef[base.shape[1]:]
        coefs.append(coef)
    return Fit(choice, beta, coefs)


def predict(fit: Fit, features: list[np.ndarray], base: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """The fitted outcome, periods × groups."""
    return np.column_stack([np.column_stack([base, *[features[c][:, fit.choice[c]] for c in channels]]) @ coef
                            for channels, coef in zip(groups, fit.coefs, strict=True)])


def contributions(fit: Fit, features: list[np.ndarray]) -> np.ndarray:
    """Per channel: the outcome its spend brought over the whole history."""
    return np.array([fit.beta[c] * features[c][:, fit.choice[c]].sum() for c in range(len(features))])


@dataclass
class Curves:
    """Steady-state response per period of each channel to a constant spend b per period: β · sat(b / κ)."""

    kind: np.ndarray
    """Index into KINDS."""
    kappa: np.ndarray
    """Half-saturation spend per period (the κ of the chosen candidate)."""
    beta: np.ndarray
    """Response at full saturation, per period."""

    def response(self, spend: np.ndarray) -> np.ndarray:
        u = spend / self.kappa
        return self.beta * np.where(self.kind == 0, 1 - np.exp(-u), np.tanh(u / 2))

    def marginal(self, spend: np.ndarray) -> np.ndarray:
        """d response / d spend: the return of one more unit of spend."""
        u = spend / self.kappa
        return self.beta / self.kappa * np.where(self.kind == 0, np.exp(-u), 0.5 * (1 - np.tanh(u / 2) ** 2))

    def saturation(self, spend: np.ndarray) -> np.ndarray:
        """Share of the maximum response reached at `spend`."""
        return self.response(spend) / np.maximum(self.beta, 1e-300)


def steady_state(fit: Fit, grids: list[np.ndarray]) -> Curves:
    """Each channel's response curve from its chosen candidate (kind, κ) and its β."""
    rows = np.array([(grids[c][k][0], grids[c][k][2], fit.beta[c]) for c, k in enumerate(fit.choice)])
    return Curves(*rows.T)


@dataclass
class ResponseModel:
    """Channels' candidates, the fit on the whole history and its response curves."""

    outcome: np.ndarray
    """Periods × groups (see `fit_response`)."""
    base: np.ndarray
    """Non-media regressors, periods × k."""
    groups: list[list[int]]
    """Channels sharing each outcome column."""
    candidates: list[Candidates]
    fit: Fit
    fitted: np.ndarray
    curves: Curves
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def features(self) -> list[np.ndarray]:
        return [c.features for c in self.candidates]

    @property
    def grids(self) -> list[np.ndarray]:
        return [c.grid for c in self.candidates]

    def chosen(self, channel: int) -> np.ndarray:
        """The (kind, α, κ) chosen for `channel`."""
        return self.candidates[channel].grid[self.fit.choice[channel]]


def fit_model(spend: np.ndarray, outcome: np.ndarray, base: np.ndarray, per_channel: bool) -> ResponseModel:
    """Fit every channel's curve: each on its own outcome column (`per_channel`) or all on the one outcome."""
    groups = [[c] for c in range(spend.shape[1])] if per_channel else [list(range(spend.shape[1]))]
    cands = [candidates(spend[:, c]) for c in range(spend.shape[1])]
    features, cache = [c.features for c in cands], {}
    fit = fit_response(outcome, features, base, groups, cache)
    curves = steady_state(fit, [c.grid for c in cands])
    return ResponseModel(outcome, base, groups, cands, fit, predict(fit, features, base, groups), curves, cache)


@dataclass
class Quality:
    """How well the fit explains the total outcome."""

    r2: float
    """In sample."""
    mape: float
    """Mean absolute percentage error in sample (periods with a zero outcome left out)."""
    holdout_mape: float
    """The same on the periods after the first `train_share`, predicted by a fit on those first periods."""


def _mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    nonzero = np.abs(actual) > 0
    return float(np.mean(np.abs(actual - predicted)[nonzero] / np.abs(actual[nonzero])))


def quality(model: ResponseModel, train_share: float = 0.8) -> Quality:
    """R² and MAPE of the total outcome in sample, and MAPE on a time holdout."""
    total, total_fit = model.outcome.sum(1), model.fitted.sum(1)
    r2 = 1 - np.sum((total - total_fit) ** 2) / max(np.sum((total - total.mean()) ** 2), 1e-300)
    cut = int(len(total) * train_share)
    early = fit_response(model.outcome[:cut], [f[:cut] for f in model.features], model.base[:cut], model.groups)
    late = predict(early, [f[cut:] for f in model.features], model.base[cut:], model.groups).sum(1)
    return Quality(r2, _mape(total, total_fit), _mape(total[cut:], late))


@dataclass
class Bands:
    """5th and 95th percentiles (rows) of bootstrap refits."""

    contribution: np.ndarray
    """2 × channels."""
    marginal: np.ndarray
    """2 × channels: marginal return at the current spend."""
    gain: np.ndarray
    """2 × allocations: each allocation's response minus its reference's, over the horizon."""


def bootstrap(model: ResponseModel, current: np.ndarray, allocations: np.ndarray, references: np.ndarray,
              periods: float, draws: int, block: int, seed: int = 7) -> Bands:
    """Refit on the fitted outcome plus residuals resampled in blocks of `block` periods (moving-block bootstrap)."""
    rng = np.random.default_rng(seed)
    n = len(model.outcome)
    resid = model.outcome - model.fitted
    draws_of: dict[str, list] = {"contribution": [], "marginal": [], "gain": []}
    for _ in range(draws):
        starts = rng.integers(0, n - block + 1, -(-n // block))
        idx = (starts[:, None] + np.arange(block)).ravel()[:n]
        refit = fit_response(model.fitted + resid[idx], model.features, model.base, model.groups, model.cache)
        curves = steady_state(refit, model.grids)
        draws_of["contribution"].append(contributions(refit, model.features))
        draws_of["marginal"].append(curves.marginal(current))
        draws_of["gain"].append([(curves.response(a).sum() - curves.response(r).sum()) * periods
                                 for a, r in zip(allocations, references, strict=True)])
    return Bands(**{k: np.percentile(np.array(v), [5, 95], axis=0) for k, v in draws_of.items()})
