"""attribute_conversions: credit conversions to channels with rule-based, exact Markov and exact Shapley models.

The tool on top of paths.py (journeys from SQL) and models.py (the maths): its parameters and result, which
models to run, and the rows, metrics and summary it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.analytics.attribution.models import (
    Credit,
    RemovalEffects,
    markov_removal_effects,
    rule_based_credit,
    scale_to_total,
    shapley_values,
)
from tools.analytics.attribution.paths import (
    Paths,
    count_conversions,
    require_journey_tables,
    table_paths,
    warehouse_paths,
)
from tools.common import money, pct, resolve_period
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import resolve_params

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley")
MAX_SHAPLEY_CHANNELS = 16


class AttributionParams(BaseModel, use_attribute_docstrings=True):
    model_config = ConfigDict(extra="forbid")

    model: Literal["first_touch", "last_touch", "linear", "time_decay", "position_based", "markov", "shapley",
                   "all"] = "all"
    """Attribution model; "all" compares every model side by side."""
    start: date | None = None
    """First day of conversions (default: 90 days before `end`). Ignored with `paths_table`."""
    end: date | None = None
    """Last day of conversions (default: the last day with data). Ignored with `paths_table`."""
    lookback_days: int = Field(30, ge=1, le=365)
    """Touches up to this many days before a conversion (or a non-converting journey's last touch) count."""
    level: Literal["channel", "campaign"] = "channel"
    """Credit channels or individual campaigns (warehouse journeys only)."""
    paths_table: str | None = None
    """A loaded table in ChannelAttribution's format: path ("a > b > c"), total_conversions,
    total_conversion_value and total_null (optional). Used instead of the warehouse journeys."""
    separator: str = Field(">", min_length=1, max_length=3)
    """Separator between channels in `paths_table` paths."""
    markov_order: int = Field(1, ge=1, le=3)
    """Order of the Markov chain (states are the last 1–3 channels)."""
    half_life: float = Field(7.0, gt=0, le=365)
    """Half-life of time-decay credit in days (in touches for a `paths_table`, which has no timestamps)."""


class AttributionResult(ToolResult):
    pass


@dataclass
class Journeys:
    """The journeys to credit, with what the summary says about where they came from."""

    paths: Paths
    key: str                 # what a unit is: "channel" or "campaign"
    period: str              # " from START to END" for warehouse journeys, "" for a paths table
    warnings: list[str]
    start: date | None = None
    end: date | None = None

    @property
    def conversions(self) -> float:
        return float(self.paths.conversions.sum())

    @property
    def value(self) -> float:
        return float(self.paths.value.sum())


def _journeys(con, params: AttributionParams) -> Journeys:
    if params.paths_table:
        try:
            paths, warnings = table_paths(con, params.paths_table, params.separator)
        except duckdb.Error as exc:
            raise ToolError(f"{params.paths_table}: could not read the paths ({str(exc).splitlines()[0]}). It needs "
                            "a text column path and numeric total_conversions / total_null columns.") from exc
        return Journeys(paths, "channel", "", warnings)
    require_journey_tables(con)
    start, end = resolve_period(con, params.start, params.end, default_days=90)
    paths = warehouse_paths(con, start, end, params.lookback_days, params.level)
    unmatched = int(count_conversions(con, start, end) - paths.conversions.sum())
    period = f" from {start} to {end}"
    warnings = [] if unmatched <= 0 else [f"{unmatched:,} conversions{period} had no touch in the "
                                          f"{params.lookback_days}-day lookback and get no channel credit."]
    return Journeys(paths, params.level, period, warnings, start, end)


def _models(params: AttributionParams, n_units: int, warnings: list[str]) -> list[str]:
    models = list(MODELS) if params.model == "all" else [params.model]
    if "shapley" in models and n_units > MAX_SHAPLEY_CHANNELS:
        if params.model == "shapley":
            raise ToolError(f"Exact Shapley needs at most {MAX_SHAPLEY_CHANNELS} channels; these journeys have "
                            f"{n_units}. Use level='channel' or the Markov model.")
        models.remove("shapley")
        warnings.append(f"Shapley skipped: {n_units} channels exceed the exact limit of {MAX_SHAPLEY_CHANNELS}.")
    return models


def _credit(journeys: Journeys, models: list[str], params: AttributionParams
            ) -> tuple[dict[str, Credit], RemovalEffects | None]:
    """Credit per model (Markov and Shapley scaled to the journeys' conversions and value) and the removal
    effects; a warning joins `journeys.warnings` when Shapley gives negative credit."""
    paths = journeys.paths
    credit: dict[str, Credit] = {}
    removal = None
    for model in models:
        if model == "markov":
            removal = markov_removal_effects(paths, params.markov_order)
            credit[model] = Credit(scale_to_total(removal.conversions, journeys.conversions),
                                   scale_to_total(removal.value, journeys.value))
        elif model == "shapley":
            phi = shapley_values(paths)
            credit[model] = Credit(scale_to_total(phi.conversions, journeys.conversions),
                                   scale_to_total(phi.value, journeys.value))
            if (phi.conversions < 0).any():
                journeys.warnings.append("Shapley gives negative credit to " + ", ".join(
                    u for u, f in zip(paths.units, phi.conversions, strict=True) if f < 0)
                    + ": journeys with it convert less often than without it.")
        else:
            credit[model] = rule_based_credit(paths, model, params.half_life)
    return credit, removal


def _rows(journeys: Journeys, credit: dict[str, Credit], removal: RemovalEffects | None) -> list[dict]:
    """One row per model and unit, most credited first."""
    units, rows = journeys.paths.units, []
    for model, given in credit.items():
        for k in np.argsort(-given.conversions, kind="stable"):
            row = {journeys.key: units[k], "model": model, "conversions": float(given.conversions[k]),
                   "value": float(given.value[k]), "share": float(given.conversions[k] / journeys.conversions)}
            if model == "markov":
                row.update(removal_effect=float(removal.conversions[k]), value_removal_effect=float(removal.value[k]))
            rows.append(row)
    return rows


def _summary(journeys: Journeys, credit: dict[str, Credit], removal: RemovalEffects | None,
             params: AttributionParams) -> str:
    paths, total = journeys.paths, journeys.conversions
    lead = "markov" if "markov" in credit else next(iter(credit))
    conv = credit[lead].conversions
    order = np.argsort(-conv, kind="stable")
    top = ", ".join(f"{paths.units[k]} {pct(conv[k] / total)}" for k in order[:3])
    label = f"Markov (order {params.markov_order})" if lead == "markov" else lead.replace("_", " ")
    summary = (f"{paths.starts.size:,} journeys{journeys.period} ({int((paths.conversions > 0).sum()):,} converting "
               f"paths, {money(total)} conversions, value {money(journeys.value)}). {label} credits {top}.")
    if lead == "markov":
        k = order[0]
        summary += (f" Removing {paths.units[k]} would lose {pct(removal.conversions[k])} of conversions "
                    "(removal effect).")
    summary += _contrasts(paths.units, credit, lead, total)
    return summary + (" Attribution shows association along journeys, not incrementality; test causality with an "
                      "experiment.")


def _contrasts(units: list[str], credit: dict[str, Credit], lead: str, total: float) -> str:
    """The lead model against last touch, and Markov against Shapley where they disagree."""
    conv, text = credit[lead].conversions, ""
    if "last_touch" in credit and lead != "last_touch":
        last = credit["last_touch"].conversions
        diff = (conv - last) / total
        k = int(np.argmax(np.abs(diff)))
        text += (f" Versus last touch, {units[k]} moves {100 * diff[k]:+.1f} pp "
                 f"({pct(last[k] / total)} → {pct(conv[k] / total)}).")
    if "shapley" in credit and lead == "markov":
        shapley = credit["shapley"].conversions
        k = int(np.argmax(conv - shapley))
        if (conv[k] - shapley[k]) / total > 0.05:
            text += (f" Shapley, which compares conversion rates with and without each channel, gives "
                     f"{units[k]} only {pct(shapley[k] / total)}: it is often on converting paths but adds "
                     "little to their conversion rate.")
    return text


def _metrics(journeys: Journeys, credit: dict[str, Credit], removal: RemovalEffects | None,
             params: AttributionParams) -> dict:
    paths, metrics = journeys.paths, {}
    if removal is not None:
        metrics.update(markov_order=params.markov_order, conversion_probability=removal.conversion_probability,
                       removal_effects=dict(zip(paths.units, removal.conversions, strict=True)))
    metrics.update(journeys=int(paths.starts.size), converting_paths=int((paths.conversions > 0).sum()),
                   conversions=journeys.conversions, value=journeys.value, channels=len(paths.units),
                   models=list(credit), lookback_days=None if params.paths_table else params.lookback_days,
                   by_model={m: dict(zip(paths.units, c.conversions, strict=True)) for m, c in credit.items()},
                   value_by_model={m: dict(zip(paths.units, c.value, strict=True)) for m, c in credit.items()})
    if not params.paths_table:
        metrics.update(start=journeys.start, end=journeys.end)
    return metrics


@register(example=AttributionParams(start=date(2026, 7, 1), end=date(2026, 9, 30)),
          key_metrics=("conversions", "value", "journeys", "conversion_probability"),
          concepts={"attribute": ["help * buy", "helps * buy", "help * convert", "helps * convert", "drive * sales",
                                  "drives * sales", "drive * conversions", "drives * conversions", "drive * orders",
                                  "contribute * sales", "bring in * sales", "brings in * sales"],  # its verbs
                    "attribution": ["attribution", "attribute", "attributed", "credit", "multi-touch", "multitouch"],
                    "journey": ["journey", "journeys", "path to purchase", "touchpoint", "touchpoints", "touches",
                                "assist", "assisted", "assists"],
                    "models": ["first touch", "last touch", "first click", "last click", "last-click", "first-click",
                               "markov", "shapley", "time decay", "time-decay", "position based", "u-shaped",
                               "removal effect"]},
          synonyms={"lookback_days": ["lookback", "look-back", "look back", "attribution window", "conversion window"],
                    "markov_order": ["order", "markov order", "chain order"],
                    "time_decay": ["time decay", "time-decay", "decay"],
                    "position_based": ["u-shaped", "position-based"],
                    "linear": ["equal credit", "even credit"],
                    "markov": ["data-driven", "data driven", "markov chain"],
                    "first_touch": ["first click", "first-click"],
                    "last_touch": ["last click", "last-click"],
                    "campaign": ["campaign level", "per campaign", "by campaign", "campaign-level"]},
          requests=["Which channels drive our conversions?", "Run a Markov attribution model on our journeys",
                    "Compare first-touch, last-touch and linear attribution by channel",
                    "How much credit does email deserve for conversions last quarter?",
                    "What would we lose if we turned off display? removal effect",
                    "multi-touch attribution by channel", "Shapley value attribution of our marketing channels",
                    "Which campaigns get credit for conversions with a 14-day lookback?",
                    "Is last-click undervaluing social?", "attribute revenue to channels along the customer journey",
                    "removal effects by channel", "Does last-touch attribution give email too much credit?",
                    "which touchpoints assist the most sales before the final click?",
                    "give partial credit to every channel a buyer touched"])
def attribute_conversions(con: duckdb.DuckDBPyConnection, params: AttributionParams) -> AttributionResult:
    """Credit conversions and value to channels along customer journeys (rule-based, exact Markov, Shapley)."""
    if params.paths_table:  # the table as the user typed it, in any case
        params = resolve_params(con, params, table_field="paths_table")
    journeys = _journeys(con, params)
    if journeys.conversions <= 0:
        raise ToolError(f"No conversions{journeys.period} in the journeys: nothing to attribute.")
    models = _models(params, len(journeys.paths.units), journeys.warnings)
    credit, removal = _credit(journeys, models, params)
    rows = _rows(journeys, credit, removal)
    summary = _summary(journeys, credit, removal, params)
    metrics = _metrics(journeys, credit, removal, params)
    warnings = journeys.warnings
    if len(rows) > 200:
        warnings.append(f"{len(rows) - 200} rows not shown; metrics.by_model has every channel.")
    key = journeys.key
    chart_rows = [{key: r[key], "model": r["model"], "conversions": round(r["conversions"], 2)} for r in rows]
    chart = charts.bar(chart_rows, key, "conversions", f"Attributed conversions by {key}",
                       color="model" if len(models) > 1 else None)
    return AttributionResult(summary=summary, data=rows, metrics=metrics, chart=chart, warnings=warnings)
