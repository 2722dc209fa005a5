"""allocate_budget: per-channel response curves (adstock + saturation), ROI, marginal ROI and an optimal split.

The tool on top of its package: `history` reads spend and outcome (SQL), `curves` fits the response model,
`optimise` splits the budget; here the parameters, the result and the rows, summary and metrics written from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.budget.curves import (
    KINDS,
    Bands,
    Curves,
    Quality,
    ResponseModel,
    bootstrap,
    contributions,
    fit_model,
    quality,
)
from tools.analytics.budget.history import History, ad_spend_history, table_history
from tools.analytics.budget.optimise import Plan, feasible, optimise, rescaled, shifted, spend_bounds
from tools.common import money, pct
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import resolve_params


class Scenario(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    """Label for the scenario."""
    shift_from: str | None = None
    """Move budget out of this channel …"""
    shift_to: str | None = None
    """… into this channel."""
    fraction: float = Field(0.2, gt=0, le=1)
    """Share of `shift_from`'s current budget to move (0.2 = 20 %)."""
    changes: dict[str, float] | None = None
    """Relative change per channel instead of a shift, e.g. {"search": 0.1, "display": -0.3}."""


class BudgetParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    total_budget: float | None = Field(None, gt=0)
    """Budget to split over `horizon_days` (default: the current spend rate)."""
    horizon_days: int = Field(30, ge=7, le=366)
    """Days the budget covers; outcomes are predicted over the same days."""
    outcome: Literal["revenue", "conversions"] = "revenue"
    """What the channels should maximise (from ad_spend)."""
    channels: list[str] | None = None
    """Only these channels (default: all with spend)."""
    start: date | None = None
    """First day of history to fit (default: two years before `end`)."""
    end: date | None = None
    """Last day of history (default: the last day with data)."""
    window_days: int = Field(90, ge=7, le=365)
    """The current split is the average spend of the last `window_days`."""
    min_spend: dict[str, float] | None = None
    """Lowest spend per channel over the horizon."""
    max_spend: dict[str, float] | None = None
    """Highest spend per channel over the horizon."""
    max_change: float | None = Field(0.25, gt=0, le=10)
    """Largest relative change of any channel's budget (0.25 = ±25 %); null for no limit."""
    scenarios: list[Scenario] = Field(default_factory=list)
    """What-if scenarios to predict, e.g. move 20 % of search into social."""
    table: str | None = None
    """Fit from a loaded table (one row per day or week) instead of ad_spend."""
    date_column: str = "date"
    """Date column of `table`."""
    outcome_column: str = "y"
    """Outcome column of `table` (sales, conversions …)."""
    spend_columns: list[str] | None = None
    """Spend columns of `table`, one per channel."""
    control_columns: list[str] = Field(default_factory=list)
    """Other drivers in `table` (events, trend, price …), fitted alongside the media."""
    bootstrap: int = Field(100, ge=20, le=1000)
    """Block-bootstrap refits for the uncertainty bands (fixed seed)."""
    min_r2: float = Field(0.5, ge=0, lt=1)
    """Quality gate: below this R² (in sample) or a poor holdout fit, no reallocation is recommended."""
    incremental_roi: dict[str, float] | None = None
    """Measured incremental return per unit of spend by channel, from holdout tests (measure_campaign's `roi`):
    each channel named has its response curve scaled so that its return at current spend matches."""


class BudgetResult(ToolResult):
    pass


@dataclass
class _Assessment:
    """What the rows, summary and metrics are written from."""

    history: History
    model: ResponseModel
    quality: Quality
    reliable: bool
    """Whether the fit passes the quality gate, so a reallocation may be recommended."""
    plan: Plan
    bands: Bands
    gains: list[float]
    """Over the horizon: the recommendation's gain, then each scenario's."""
    outcome_at_current_split: float


def _history(con: duckdb.DuckDBPyConnection, params: BudgetParams) -> History:
    """The history to fit: the loaded `table` when given, else ad_spend."""
    if not params.table:
        return ad_spend_history(con, params.outcome, params.start, params.end, params.channels)
    if not params.spend_columns:
        raise ToolError(f"Name the spend columns of {params.table} in `spend_columns`, e.g. [\"tv\", \"search\"].")
    return table_history(con, params.table, date_column=params.date_column, outcome_column=params.outcome_column,
                         spend_columns=params.spend_columns, control_columns=params.control_columns)


def _spelled(con: duckdb.DuckDBPyConnection, params: BudgetParams) -> BudgetParams:
    """Table mode: the table, its columns, and the channels (spend columns) named in limits and scenarios, spelled
    as in the warehouse, whatever case the user typed."""
    if not params.spend_columns:
        raise ToolError(f"Name the spend columns of {params.table} in `spend_columns`, e.g. [\"tv\", \"search\"].")
    params = resolve_params(con, params, columns=("date_column", "outcome_column", "spend_columns", "control_columns"))
    spelled = {c.lower(): c for c in params.spend_columns}

    def channel(name: str | None) -> str | None:
        return spelled.get(name.lower(), name) if name else name

    def keyed(limits: dict[str, float] | None) -> dict[str, float] | None:
        return {channel(k): v for k, v in limits.items()} if limits else limits

    scenarios = [s.model_copy(update={"shift_from": channel(s.shift_from), "shift_to": channel(s.shift_to),
                                      "changes": keyed(s.changes)}) for s in params.scenarios]
    return params.model_copy(update={"min_spend": keyed(params.min_spend), "max_spend": keyed(params.max_spend),
                                     "scenarios": scenarios})


def _usable(history: History) -> tuple[History, list[str]]:
    """The channels that spent, checked for enough history; warnings about channels left out or poorly identified."""
    warnings = [f"{ch} has no spend in the history: no response curve can be fitted, so it is left out."
                for ch in history.idle_channels()]
    history = history.with_spend()
    n_periods, n_channels = history.spend.shape
    if n_channels == 0:
        raise ToolError("No channel has any spend in the history: there is nothing to fit or allocate.")
    if n_periods < 20:
        raise ToolError(f"Only {n_periods} periods of history; response curves need at least 20 "
                        "(ideally a year or more).")
    variation = history.spend.std(0) / history.spend.mean(0)
    warnings += [f"{ch}'s spend hardly varies, so its curve is poorly identified." for ch, cv in
                 zip(history.channels, variation, strict=True) if cv < 0.05]
    return history, warnings


def _limits(params: BudgetParams, channels: list[str], current: np.ndarray, periods: float,
            max_change: float | None) -> tuple[np.ndarray, np.ndarray]:
    """`spend_bounds` after checking that the per-channel limits name known channels."""
    for limits in (params.min_spend, params.max_spend):
        for ch in limits or {}:
            if ch not in channels:
                raise ToolError(f"Budget limit for unknown channel {ch!r}; channels: {', '.join(channels)}.")
    return spend_bounds(channels, current, periods, params.min_spend, params.max_spend, max_change)


def _bounds(params: BudgetParams, channels: list[str], current: np.ndarray, periods: float,
            budget: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Spend bounds per period that can hold the budget, and a warning when the default max_change was widened."""
    low, high = _limits(params, channels, current, periods, params.max_change)
    warnings = []
    default_bound = "max_change" not in params.model_fields_set and params.max_change is not None
    if not feasible(low, high, budget) and default_bound:
        # a total far from today's spend cannot stay within ±25 % per channel: widen the bound just enough, say so
        needed = round(abs(budget / current.sum() - 1) + 0.05, 2)
        low, high = _limits(params, channels, current, periods, needed)
        warnings.append(f"A total of {money(budget * periods)} is {budget / current.sum() - 1:+.0%} against "
                        f"current spend, so each channel may move by up to ±{needed:.0%} (not the default ±25 %).")
    if not feasible(low, high, budget):
        raise ToolError(f"The limits cannot hold a budget of {money(budget * periods)}: they allow "
                        f"{money(low.sum() * periods)} to {money(high.sum() * periods)} over {params.horizon_days} "
                        "days. Change the budget, max_change or the per-channel limits.")
    return low, high, warnings


def _scenario(scenario: Scenario, channels: list[str], current: np.ndarray) -> tuple[str, np.ndarray]:
    """A scenario's name and its allocation per period."""
    named = [c for c in (scenario.shift_from, scenario.shift_to, *(scenario.changes or {})) if c]
    missing = [c for c in named if c not in channels]
    if missing:
        raise ToolError(f"Scenario names unknown channel(s) {', '.join(missing)}; channels: {', '.join(channels)}.")
    if scenario.changes:
        name = scenario.name or ", ".join(f"{ch} {v:+.0%}" for ch, v in scenario.changes.items())
        return name, rescaled(current, {channels.index(ch): v for ch, v in scenario.changes.items()})
    if scenario.shift_from and scenario.shift_to:
        name = scenario.name or f"move {scenario.fraction:.0%} of {scenario.shift_from} into {scenario.shift_to}"
        return name, shifted(current, channels.index(scenario.shift_from), channels.index(scenario.shift_to),
                             scenario.fraction)
    raise ToolError("A scenario needs `shift_from` and `shift_to`, or `changes` per channel.")


def _plan(params: BudgetParams, history: History, curves: Curves) -> tuple[Plan, list[str]]:
    """Current split (mean spend of the last window), budget, bounds, the optimal split and the scenarios."""
    period_days = history.period_days
    periods = params.horizon_days / period_days
    current = history.spend[-max(1, round(params.window_days / period_days)):].mean(0)
    if current.sum() <= 0:
        raise ToolError(f"No spend in the last {params.window_days} days, so there is no current split to start "
                        "from. Increase window_days or check the data.")
    budget = params.total_budget / periods if params.total_budget else float(current.sum())
    low, high, warnings = _bounds(params, history.channels, current, periods, budget)
    recommended = optimise(curves, budget, low, high)
    scenarios = [_scenario(s, history.channels, current) for s in params.scenarios]
    return Plan(periods, current, budget, recommended, scenarios), warnings


def _assess(params: BudgetParams, history: History) -> tuple[_Assessment, list[str]]:
    """Fit the curves, check their quality, plan the split and bootstrap the uncertainty."""
    model = fit_model(history.spend, history.outcome, history.base, history.per_channel)
    warnings = _calibrate(params, history, model)
    fit_quality = quality(model)
    reliable = bool(fit_quality.r2 >= params.min_r2
                    and fit_quality.holdout_mape <= max(0.15, 2 * fit_quality.mape))
    plan, plan_warnings = _plan(params, history, model.curves)
    warnings += plan_warnings
    bands = bootstrap(model, plan.current, plan.allocations, plan.references, plan.periods, params.bootstrap,
                      block=4 if history.period_days >= 7 else 14)
    return _Assessment(history, model, fit_quality, reliable, plan, bands, plan.gains(model.curves),
                       plan.outcome_at_current_split(model.curves)), warnings


def _calibrate(params: BudgetParams, history: History, model: ResponseModel) -> list[str]:
    """Scale the curves of channels with a measured incremental ROI so that their return at current spend (the last
    `window_days`) equals it: β × measured / modelled. The optimiser then works on the calibrated curves; the
    uncertainty bands stay the uncalibrated model's."""
    if not params.incremental_roi:
        return []
    unknown = [ch for ch in params.incremental_roi if ch not in history.channels]
    if unknown:
        raise ToolError(f"incremental_roi names unknown channel(s) {', '.join(unknown)}; channels with spend: "
                        f"{', '.join(history.channels)}.")
    current = history.spend[-max(1, round(params.window_days / history.period_days)):].mean(0)
    modelled = model.curves.response(current) / np.maximum(current, 1e-12)
    beta, notes = model.curves.beta.copy(), []
    for ch, measured in params.incremental_roi.items():
        c = history.channels.index(ch)
        if measured < 0 or modelled[c] <= 0:
            raise ToolError(f"incremental_roi for {ch} must be ≥ 0 and the model must credit {ch} with some return "
                            f"(modelled {modelled[c]:.3g}).")
        beta[c] *= measured / modelled[c]
        notes.append(f"{ch} calibrated to its measured incremental ROI {measured:.2f} (the model said "
                     f"{modelled[c]:.2f} at current spend): its curve × {measured / modelled[c]:.2f}.")
    model.curves = Curves(model.curves.kind, model.curves.kappa, beta)
    return notes + ["Uncertainty bands are the uncalibrated model's."]


def _rows(assessment: _Assessment) -> list[dict]:
    """One row per channel, largest contribution first."""
    history, model, plan, bands = assessment.history, assessment.model, assessment.plan, assessment.bands
    curves, current, recommended, periods = model.curves, plan.current, plan.recommended, plan.periods
    good = assessment.reliable
    contrib, spent = contributions(model.fit, model.features), history.spend.sum(0)
    mroi, saturation, mroi_recommended = (curves.marginal(current), curves.saturation(current),
                                          curves.marginal(recommended))
    rows = [{"channel": ch, "spend": spent[c], "contribution": contrib[c],
             "contribution_low": bands.contribution[0][c], "contribution_high": bands.contribution[1][c],
             "share_of_media": contrib[c] / contrib.sum() if contrib.sum() > 0 else None,
             "roi": contrib[c] / spent[c], "roi_low": bands.contribution[0][c] / spent[c],
             "roi_high": bands.contribution[1][c] / spent[c], "marginal_roi": mroi[c],
             "marginal_roi_low": bands.marginal[0][c], "marginal_roi_high": bands.marginal[1][c],
             "saturation": saturation[c], "current_budget": current[c] * periods,
             "recommended_budget": (recommended[c] if good else current[c]) * periods,
             "change": (recommended[c] / current[c] - 1 if good else 0.0) if current[c] > 0 else None,
             "marginal_roi_at_recommended": mroi_recommended[c] if good else None,
             "adstock_alpha": model.chosen(c)[1], "half_saturation_spend": curves.kappa[c],
             "curve": KINDS[int(curves.kind[c])]} for c, ch in enumerate(history.channels)]
    rows.sort(key=lambda r: -r["contribution"])
    return rows


def _saturated(rows: list[dict]) -> list[str]:
    """Channels near their maximum response, or whose next unit returns under a tenth of their average."""
    return [r["channel"] for r in rows
            if r["saturation"] >= 0.9 or (r["roi"] > 0 and r["marginal_roi"] < 0.1 * r["roi"])]


def _scenario_outcomes(assessment: _Assessment) -> list[tuple[str, np.ndarray, float, float, float]]:
    """Per scenario: name, allocation per period, gain over the horizon and its 90 % band."""
    gain_band = assessment.bands.gain
    return [(name, allocation, gain, low, high) for (name, allocation), gain, low, high in
            zip(assessment.plan.scenarios, assessment.gains[1:], gain_band[0][1:], gain_band[1][1:], strict=True)]


def _fit_sentences(assessment: _Assessment, rows: list[dict], saturated: list[str]) -> str:
    history, fit_quality = assessment.history, assessment.quality
    unit = "per unit of spend"
    text = (f"Response curves of {history.label} fitted on {len(history.spend)} "
            f"{'weeks' if history.period_days >= 7 else 'days'} (R² {fit_quality.r2:.2f}, holdout error "
            f"{pct(fit_quality.holdout_mape)}). Contribution share: " + ", ".join(
                f"{r['channel']} {pct(r['share_of_media'])} (ROI {r['roi']:.2f}, marginal {r['marginal_roi']:.2f} "
                f"{unit})" for r in rows[:4]) + ".")
    if saturated:
        text += (" Saturated at current spend: " + ", ".join(
            f"{r['channel']} ({pct(r['saturation'], 0)} of its maximum response)" for r in rows
            if r["channel"] in saturated) + ": extra budget there returns little.")
    return text


def _recommendation_sentence(params: BudgetParams, assessment: _Assessment, rows: list[dict]) -> str:
    fit_quality, plan, gains, gain_band = assessment.quality, assessment.plan, assessment.gains, assessment.bands.gain
    if not assessment.reliable:
        return (f" The fit is not reliable enough to recommend a reallocation (R² {fit_quality.r2:.2f}, minimum "
                f"{params.min_r2}; holdout error {pct(fit_quality.holdout_mape)}): keep the current split and fit "
                "on a longer or richer history.")
    moves = sorted(rows, key=lambda r: -abs(r["change"] or 0))[:3]
    return (f" Recommended split of {money(plan.budget * plan.periods)} over {params.horizon_days} days: "
            + ", ".join(f"{r['channel']} {money(r['recommended_budget'])} ({(r['change'] or 0):+.0%})" for r in moves)
            + f"; predicted {params.outcome if not params.table else params.outcome_column} {gains[0]:+,.0f} "
            f"({gains[0] / assessment.outcome_at_current_split:+.1%}; 90 % band {gain_band[0][0]:+,.0f} to "
            f"{gain_band[1][0]:+,.0f}) versus keeping the current proportions.")


def _summary(params: BudgetParams, assessment: _Assessment, rows: list[dict], saturated: list[str]) -> str:
    return (_fit_sentences(assessment, rows, saturated) + _recommendation_sentence(params, assessment, rows)
            + "".join(f" What if {name}: {gain:+,.0f} (90 % band {low:+,.0f} to {high:+,.0f})."
                      for name, _, gain, low, high in _scenario_outcomes(assessment)))


def _metrics(params: BudgetParams, assessment: _Assessment, saturated: list[str]) -> dict:
    fit_quality, plan, good, channels = (assessment.quality, assessment.plan, assessment.reliable,
                                         assessment.history.channels)
    return {"r2": fit_quality.r2, "mape": fit_quality.mape, "holdout_mape": fit_quality.holdout_mape,
            "quality_ok": good, "periods": len(assessment.history.spend),
            "period_days": assessment.history.period_days, "horizon_days": params.horizon_days,
            "calibrated_channels": sorted(params.incremental_roi or {}),
            "budget": plan.budget * plan.periods, "outcome_at_current_split": assessment.outcome_at_current_split,
            "predicted_gain": assessment.gains[0] if good else 0.0,
            "predicted_gain_band": list(assessment.bands.gain[:, 0]) if good else None, "saturated": saturated,
            "scenarios": [{"name": name, "allocation": dict(zip(channels, allocation * plan.periods, strict=True)),
                           "gain": gain, "band": [low, high]}
                          for name, allocation, gain, low, high in _scenario_outcomes(assessment)],
            "recommendation": dict(zip(channels, plan.recommended * plan.periods, strict=True)) if good else None}


def _chart(params: BudgetParams, rows: list[dict]) -> dict:
    return charts.bar([{"channel": r["channel"], "budget": round(v, 2), "split": k} for r in rows for k, v in
                       (("current", r["current_budget"]), ("recommended", r["recommended_budget"]))],
                      "channel", "budget", f"Budget over {params.horizon_days} days", color="split")


@register(example=BudgetParams(total_budget=300_000, scenarios=[Scenario(shift_from="search", shift_to="social")]),
          key_metrics=("budget", "outcome_at_current_split", "predicted_gain", "horizon_days"),
          concepts={"allocation": ["budget split", "split the budget", "allocate", "allocation", "reallocate",
                                   "reallocation", "channel mix", "media mix", "budget mix", "optimal split",
                                   "optimise the budget", "optimise", "optimize", "optimiser", "optimizer",
                                   "where should the money go", "where to put", "recommended split",
                                   "recommended budget", "recommended plan", "recommendation", "suggested split",
                                   "optimal plan", "optimised plan", "rebalance", "where do i cut",
                                   "where should we cut", "where to cut", "what should we cut", "hit a roas target",
                                   "target roas"],
                    "saturation": ["saturated", "saturation", "diminishing returns", "response curve",
                                   "response curves", "headroom", "ceiling"],
                    "marginal": ["marginal roi", "marginal roas", "marginal return", "marginal", "incremental return",
                                 "next dollar", "where to scale", "what to pull back", "scale and pull back",
                                 "extra dollar", "each extra", "mmm", "marketing mix model", "mix model"],
                    "what_if": ["what if we moved", "what would happen if we moved", "scenario", "what-if"]},
          synonyms={"conversions": ["conversions", "orders", "sales volume"],
                    "max_change": ["change", "move", "shift"],
                    "total_budget": ["total of", "a total of", "budget of", "in total", "overall budget"]},
          requests=["How should we split next month's budget across channels?", "Where should the money go?",
                    "Optimise our media budget of 300k for the next 30 days", "Which channel is saturated?",
                    "What is the marginal ROI of each channel?", "What happens if we move 20 % of search into social?",
                    "Fit response curves for our channels", "Should we cut display spend?",
                    "marketing mix model contribution by channel", "What return do we get on each extra dollar?",
                    "if spend on display doubled, would revenue follow?",
                    "where would an extra 10k a month earn the most?"])
def allocate_budget(con: duckdb.DuckDBPyConnection, params: BudgetParams) -> BudgetResult:
    """Fit per-channel response curves (adstock + saturation) and recommend the budget split with the best return."""
    if params.table:
        params = _spelled(con, params)
    history, warnings = _usable(_history(con, params))
    assessment, plan_warnings = _assess(params, history)
    warnings += plan_warnings
    rows = _rows(assessment)
    saturated = _saturated(rows)
    if not assessment.reliable:
        warnings.append("Quality gate failed: no reallocation recommended.")
    return BudgetResult(summary=_summary(params, assessment, rows, saturated), data=rows,
                        metrics=_metrics(params, assessment, saturated), chart=_chart(params, rows), warnings=warnings)
