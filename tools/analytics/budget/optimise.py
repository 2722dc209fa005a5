"""Splitting a budget over response curves, pure numpy/scipy: spend bounds per channel, the optimiser that equalises
marginal returns under them (water-filling), what-if allocations, and a `Plan` that evaluates them all on the
curves. Every spend here is per period of history; `Plan.periods` scales to the horizon."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.analytics.budget.curves import Curves


def spend_bounds(channels: list[str], current: np.ndarray, periods: float, min_spend: dict[str, float] | None,
                 max_spend: dict[str, float] | None, max_change: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest spend per period of each channel: the limits over the horizon (known channels only)
    and at most ±max_change around the current spend."""
    low, high = np.zeros(len(channels)), np.full(len(channels), np.inf)
    for limits, bound, tighter in ((min_spend, low, np.maximum), (max_spend, high, np.minimum)):
        for channel, value in (limits or {}).items():
            i = channels.index(channel)
            bound[i] = tighter(bound[i], value / periods)
    if max_change is not None:
        low, high = np.maximum(low, current * (1 - max_change)), np.minimum(high, current * (1 + max_change))
    return low, high


def feasible(low: np.ndarray, high: np.ndarray, total: float) -> bool:
    """Whether some spend within the bounds adds up to `total` (to a relative 1e-9)."""
    return not (low.sum() > total * (1 + 1e-9) or high.sum() < total * (1 - 1e-9))


def optimise(curves: Curves, total: float, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Maximise Σ response under Σ spend = total and low ≤ spend ≤ high by equalising marginal returns
    (water-filling: solve for the common marginal return λ)."""
    from scipy import optimize  # lazy: keeps `northstar` start-up fast

    kind, kappa, beta = curves.kind, curves.kappa, curves.beta

    def spend_at(log_lam: float) -> np.ndarray:
        """Each channel's spend where its marginal return is λ, clipped to its bounds."""
        log_ratio = log_lam + np.log(kappa) - np.log(np.maximum(beta, 1e-300))  # λ κ / β, in logs
        exponential = kappa * np.maximum(-log_ratio, 0.0)
        logistic = 2 * kappa * np.arctanh(np.sqrt(np.clip(1 - 2 * np.exp(np.minimum(log_ratio, 5.0)), 0.0,
                                                          1 - 1e-16)))
        return np.clip(np.where(beta > 0, np.where(kind == 0, exponential, logistic), 0.0), low, high)

    short_at_high_lam, over_at_low_lam = spend_at(700).sum() - total, spend_at(-700).sum() - total
    if short_at_high_lam < 0 < over_at_low_lam:
        return spend_at(optimize.brentq(lambda x: spend_at(x).sum() - total, -700, 700, xtol=1e-12))
    if abs(over_at_low_lam) <= 1e-9 * total:
        return spend_at(-700)
    room = np.where(np.isfinite(high), high - low, total)  # flat curves: spread the rest evenly within the bounds
    return low + room * (total - low.sum()) / room.sum()


def shifted(current: np.ndarray, source: int, target: int, fraction: float) -> np.ndarray:
    """Move `fraction` of the source channel's current spend into the target channel."""
    allocation = current.copy()
    move = current[source] * fraction
    allocation[source] -= move
    allocation[target] += move
    return allocation


def rescaled(current: np.ndarray, changes: dict[int, float]) -> np.ndarray:
    """Change channels' spend by a relative amount each (−0.3 = 30 % less; never below zero)."""
    allocation = current.copy()
    for channel, change in changes.items():
        allocation[channel] *= max(0.0, 1 + change)
    return allocation


@dataclass
class Plan:
    """The recommended split and the what-if scenarios, each compared with a reference of the same total."""

    periods: float
    """Periods of history in the horizon."""
    current: np.ndarray
    """Spend per period of each channel now."""
    budget: float
    """Budget per period."""
    recommended: np.ndarray
    """Spend per period of each channel that maximises the response within the bounds."""
    scenarios: list[tuple[str, np.ndarray]]
    """What-if allocations per period, by name."""

    @property
    def allocations(self) -> np.ndarray:
        """The recommended split, then each scenario."""
        return np.array([self.recommended, *[allocation for _, allocation in self.scenarios]])

    @property
    def references(self) -> np.ndarray:
        """The current proportions at the budget (for the recommendation), the current split (for scenarios)."""
        return np.array([self.current * self.budget / self.current.sum(), *[self.current for _ in self.scenarios]])

    def gains(self, curves: Curves) -> list[float]:
        """Response of each allocation minus its reference's, over the horizon."""
        return [(curves.response(a).sum() - curves.response(r).sum()) * self.periods
                for a, r in zip(self.allocations, self.references, strict=True)]

    def outcome_at_current_split(self, curves: Curves) -> float:
        """The response over the horizon of the budget split in the current proportions."""
        return curves.response(self.references[0]).sum() * self.periods
