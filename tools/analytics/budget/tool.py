"""allocate_budget: per-channel response curves (adstock + saturation), ROI, marginal ROI and an optimal split."""

from __future__ import annotations

from datetime import date
from typing import Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tools import charts
from tools.common import money, pct, resolve_period
from tools.registry import ToolError, ToolResult, register
from tools.warehouse import quote, require_table

LMAX = 12
ALPHAS = np.round(np.arange(0.0, 0.85, 0.1), 2)
KAPPAS = np.geomspace(0.05, 10.0, 16)      # half-saturation as a multiple of mean active spend
KINDS = ("exponential", "logistic")


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


class BudgetResult(ToolResult):
    pass


def _sat(u: np.ndarray, kind: int) -> np.ndarray:
    return 1.0 - np.exp(-u) if kind == 0 else np.tanh(u / 2.0)


def _adstock(x: np.ndarray, alpha: float) -> np.ndarray:
    """Geometric adstock over LMAX periods, weights normalised to 1 (so a steady spend b has adstock b)."""
    w = alpha ** np.arange(LMAX)
    w = w / w.sum()
    out = w[0] * x
    for lag in range(1, LMAX):
        out[lag:] += w[lag] * x[:-lag]
    return out


def _candidates(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (kind, α, κ) transform of one channel's spend: features T × K and params K × 3."""
    scale = x[x > 0].mean()
    feats, params = [], []
    for a in ALPHAS:
        ad = _adstock(x, a)
        for kind in range(len(KINDS)):
            for k in KAPPAS * scale:
                feats.append(_sat(ad / k, kind))
                params.append((kind, a, k))
    return np.array(feats).T, np.array(params)


def _basis(b: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the columns of `b` (rank-safe)."""
    if b.shape[1] == 0:
        return b
    u, sv, _ = np.linalg.svd(b, full_matrices=False)
    return u[:, sv > sv[0] * 1e-10]


def _fit(y: np.ndarray, feats: list[np.ndarray], base: np.ndarray, groups: list[list[int]],
         cache: dict | None = None) -> dict:
    """Choose each channel's transform by coordinate descent over the grid; least squares with β ≥ 0.

    `y` is periods × groups: one outcome per channel (platform-reported) or one shared outcome (a table).
    The candidates' residuals off the other regressors do not depend on `y`, so bootstrap refits reuse them."""
    cache = {} if cache is None else cache
    choice = np.array([f.shape[1] // 2 for f in feats])
    beta, coefs = np.zeros(len(feats)), []
    for g, chans in enumerate(groups):
        yg = y[:, g]
        for _ in range(8):
            changed = False
            for c in chans:
                key = (c, *[(d, choice[d]) for d in chans if d != c])
                if key not in cache:
                    q = _basis(np.column_stack([base, *[feats[d][:, k] for d, k in key[1:]]]))
                    rf = feats[c] - q @ (q.T @ feats[c])
                    cache[key] = (q, rf, np.einsum("ij,ij->j", rf, rf))
                q, rf, den = cache[key]
                num = rf.T @ (yg - q @ (q.T @ yg))
                gain = np.where((num > 0) & (den > 1e-12), num ** 2 / np.maximum(den, 1e-12), 0.0)
                best = int(np.argmax(gain))
                changed, choice[c] = changed or best != choice[c], best
            if not changed or len(chans) == 1:
                break
        design = np.column_stack([base, *[feats[c][:, choice[c]] for c in chans]])
        coef = np.linalg.lstsq(design, yg, rcond=None)[0]
        coef[base.shape[1]:] = np.maximum(coef[base.shape[1]:], 0.0)
        beta[chans] = coef[base.shape[1]:]
        coefs.append(coef)
    return {"choice": choice, "beta": beta, "coefs": coefs}


def _predict(fit: dict, feats: list[np.ndarray], base: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    return np.column_stack([np.column_stack([base, *[feats[c][:, fit["choice"][c]] for c in chans]]) @ coef
                            for chans, coef in zip(groups, fit["coefs"], strict=True)])


def _curve(fit: dict, params: list[np.ndarray]) -> np.ndarray:
    """Steady-state curve per channel: rows (kind, κ, β); response per period = β·sat(b/κ)."""
    return np.array([(params[c][k][0], params[c][k][2], fit["beta"][c]) for c, k in enumerate(fit["choice"])])


def _response(curve: np.ndarray, b: np.ndarray) -> np.ndarray:
    kind, kappa, beta = curve.T
    u = b / kappa
    return beta * np.where(kind == 0, 1 - np.exp(-u), np.tanh(u / 2))


def _marginal(curve: np.ndarray, b: np.ndarray) -> np.ndarray:
    kind, kappa, beta = curve.T
    u = b / kappa
    return beta / kappa * np.where(kind == 0, np.exp(-u), 0.5 * (1 - np.tanh(u / 2) ** 2))


def _optimise(curve: np.ndarray, total: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Maximise Σ response under Σ b = total and lo ≤ b ≤ hi: equalise marginal returns (water-filling)."""
    from scipy import optimize  # lazy: keeps `northstar` start-up fast

    kind, kappa, beta = curve.T

    def spend_at(log_lam: float) -> np.ndarray:
        log_ratio = log_lam + np.log(kappa) - np.log(np.maximum(beta, 1e-300))  # λ κ / β, in logs
        b_exp = kappa * np.maximum(-log_ratio, 0.0)
        b_log = 2 * kappa * np.arctanh(np.sqrt(np.clip(1 - 2 * np.exp(np.minimum(log_ratio, 5.0)), 0.0, 1 - 1e-16)))
        return np.clip(np.where(beta > 0, np.where(kind == 0, b_exp, b_log), 0.0), lo, hi)

    low_end, high_end = spend_at(700).sum() - total, spend_at(-700).sum() - total
    if low_end < 0 < high_end:
        return spend_at(optimize.brentq(lambda x: spend_at(x).sum() - total, -700, 700, xtol=1e-12))
    if abs(high_end) <= 1e-9 * total:
        return spend_at(-700)
    room = np.where(np.isfinite(hi), hi - lo, total)  # flat curves: spread the rest evenly within the bounds
    return lo + room * (total - lo.sum()) / room.sum()


def _history(con, p: BudgetParams) -> dict:
    """Spend (periods × channels), outcome (periods × groups), the non-media design and the period length."""
    import pandas as pd  # lazy: keeps `northstar` start-up fast

    if p.table:
        spends = p.spend_columns or []
        if not spends:
            raise ToolError(f"Name the spend columns of {p.table} in `spend_columns`, e.g. [\"tv\", \"search\"].")
        require_table(con, p.table, [p.date_column, p.outcome_column, *spends, *p.control_columns])
        cols = ", ".join([f"sum({quote(c)})::DOUBLE" for c in [p.outcome_column, *spends]]
                         + [f"avg({quote(c)})::DOUBLE" for c in p.control_columns])
        try:
            df = con.execute(f"SELECT {quote(p.date_column)}::DATE AS d, {cols} FROM {quote(p.table)} "
                             f"WHERE {quote(p.date_column)} IS NOT NULL GROUP BY 1 ORDER BY 1").df()
        except duckdb.Error as exc:
            raise ToolError(f"Could not read {p.table}: {str(exc).splitlines()[0]}") from exc
        vals = df.iloc[:, 1:].fillna(0.0).to_numpy(dtype=float)
        dates = pd.to_datetime(df["d"])
        y, spend, controls = vals[:, :1], vals[:, 1:1 + len(spends)], vals[:, 1 + len(spends):]
        span = (dates.iloc[-1] - dates.iloc[0]).days if len(dates) else 0
        doy = dates.dt.day_of_year.to_numpy()
        season = [f(2 * np.pi * k * doy / 365.25) for k in (1, 2) for f in (np.sin, np.cos)] if span >= 364 else []
        keep = [controls[:, j] for j in range(controls.shape[1]) if np.ptp(controls[:, j]) > 0]
        base = np.column_stack([np.ones(len(dates)), *keep, *season])
        return {"dates": dates, "spend": spend, "y": y, "channels": list(spends), "base": base, "per_channel": False,
                "label": f"{p.outcome_column} in {p.table}"}
    require_table(con, "ad_spend", ["date", "channel", "spend", p.outcome])
    start, end = resolve_period(con, p.start, p.end, default_days=730)
    df = con.execute(f"SELECT date, channel, sum(spend) AS s, sum(coalesce({p.outcome}, 0)) AS y FROM ad_spend "
                     "WHERE date BETWEEN ? AND ? GROUP BY ALL", [start, end]).df()
    if df.empty:
        raise ToolError(f"No ad spend between {start} and {end}. Choose a period with data.")
    known = sorted(df["channel"].unique())
    chosen = p.channels or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ToolError(f"Unknown channel(s) {', '.join(unknown)}; the warehouse has {', '.join(known)}.")
    days = pd.date_range(start, end, freq="D")
    wide = {k: df.pivot_table(index="date", columns="channel", values=k, aggfunc="sum")
            .reindex(index=days, columns=chosen).fillna(0.0).to_numpy() for k in ("s", "y")}
    dow = days.day_of_week.to_numpy()
    base = np.column_stack([(dow == d).astype(float) - (dow == 6) for d in range(6)])  # sum-to-zero weekday
    return {"dates": pd.Series(days), "spend": wide["s"], "y": wide["y"], "channels": list(chosen), "base": base,
            "per_channel": True, "label": f"platform-reported {p.outcome}"}


def _bounds(p: BudgetParams, channels: list[str], cur: np.ndarray, periods: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.zeros(len(channels)), np.full(len(channels), np.inf)
    for limits, arr, fn in ((p.min_spend, lo, np.maximum), (p.max_spend, hi, np.minimum)):
        for ch, v in (limits or {}).items():
            if ch not in channels:
                raise ToolError(f"Budget limit for unknown channel {ch!r}; channels: {', '.join(channels)}.")
            i = channels.index(ch)
            arr[i] = fn(arr[i], v / periods)
    if p.max_change is not None:
        lo, hi = np.maximum(lo, cur * (1 - p.max_change)), np.minimum(hi, cur * (1 + p.max_change))
    return lo, hi


def _scenario(s: Scenario, channels: list[str], cur: np.ndarray) -> tuple[str, np.ndarray]:
    alloc = cur.copy()
    named = [c for c in (s.shift_from, s.shift_to, *(s.changes or {})) if c]
    missing = [c for c in named if c not in channels]
    if missing:
        raise ToolError(f"Scenario names unknown channel(s) {', '.join(missing)}; channels: {', '.join(channels)}.")
    if s.changes:
        for ch, change in s.changes.items():
            alloc[channels.index(ch)] *= max(0.0, 1 + change)
        name = s.name or ", ".join(f"{ch} {v:+.0%}" for ch, v in s.changes.items())
    elif s.shift_from and s.shift_to:
        move = cur[channels.index(s.shift_from)] * s.fraction
        alloc[channels.index(s.shift_from)] -= move
        alloc[channels.index(s.shift_to)] += move
        name = s.name or f"move {s.fraction:.0%} of {s.shift_from} into {s.shift_to}"
    else:
        raise ToolError("A scenario needs `shift_from` and `shift_to`, or `changes` per channel.")
    return name, alloc


@register(example=BudgetParams(total_budget=300_000, scenarios=[Scenario(shift_from="search", shift_to="social")]),
          key_metrics=("budget", "outcome_at_current_split", "predicted_gain", "horizon_days"),
          requests=["How should we split next month's budget across channels?", "Where should the money go?",
                    "Optimise our media budget of 300k for the next 30 days", "Which channel is saturated?",
                    "What is the marginal ROI of each channel?", "What happens if we move 20 % of search into social?",
                    "Fit response curves for our channels", "Should we cut display spend?",
                    "marketing mix model contribution by channel", "What return do we get on each extra dollar?"])
def allocate_budget(con: duckdb.DuckDBPyConnection, p: BudgetParams) -> BudgetResult:
    """Fit per-channel response curves (adstock + saturation) and recommend the budget split with the best return."""
    h = _history(con, p)
    spend, y, channels, base = h["spend"], h["y"], h["channels"], h["base"]
    warnings = [f"{ch} has no spend in the history: no response curve can be fitted, so it is left out."
                for ch, s in zip(channels, spend.sum(0), strict=True) if s <= 0]
    active = spend.sum(0) > 0
    channels, spend = [c for c, a in zip(channels, active, strict=True) if a], spend[:, active]
    y = y[:, active] if h["per_channel"] else y
    n, n_ch = spend.shape
    if n_ch == 0:
        raise ToolError("No channel has any spend in the history: there is nothing to fit or allocate.")
    if n < 20:
        raise ToolError(f"Only {n} periods of history; response curves need at least 20 (ideally a year or more).")
    period_days = max(1, int(np.median(np.diff(h["dates"].to_numpy()).astype("timedelta64[D]").astype(int))))
    warnings += [f"{ch}'s spend hardly varies, so its curve is poorly identified." for ch, s in
                 zip(channels, spend.std(0) / spend.mean(0), strict=True) if s < 0.05]
    groups = [[c] for c in range(n_ch)] if h["per_channel"] else [list(range(n_ch))]
    cands = [_candidates(spend[:, c]) for c in range(n_ch)]
    feats, params = [f for f, _ in cands], [q for _, q in cands]
    cache: dict = {}
    fit = _fit(y, feats, base, groups, cache)
    fitted = _predict(fit, feats, base, groups)
    total, total_fit = y.sum(1), fitted.sum(1)
    r2 = 1 - np.sum((total - total_fit) ** 2) / max(np.sum((total - total.mean()) ** 2), 1e-300)
    nz = np.abs(total) > 0
    mape = float(np.mean(np.abs(total - total_fit)[nz] / np.abs(total[nz])))
    cut = int(n * 0.8)
    fit_h = _fit(y[:cut], [f[:cut] for f in feats], base[:cut], groups)
    pred_h = _predict(fit_h, [f[cut:] for f in feats], base[cut:], groups).sum(1)
    nzh = np.abs(total[cut:]) > 0
    holdout_mape = float(np.mean(np.abs(pred_h - total[cut:])[nzh] / np.abs(total[cut:][nzh])))
    good = bool(r2 >= p.min_r2 and holdout_mape <= max(0.15, 2 * mape))
    periods = p.horizon_days / period_days
    cur = spend[-max(1, round(p.window_days / period_days)):].mean(0)
    if cur.sum() <= 0:
        raise ToolError(f"No spend in the last {p.window_days} days, so there is no current split to start from. "
                        "Increase window_days or check the data.")
    budget = p.total_budget / periods if p.total_budget else float(cur.sum())
    lo, hi = _bounds(p, channels, cur, periods)
    infeasible = lo.sum() > budget * (1 + 1e-9) or hi.sum() < budget * (1 - 1e-9)
    if infeasible and "max_change" not in p.model_fields_set and p.max_change is not None:
        # a total far from today's spend cannot stay within ±25 % per channel: widen the bound just enough, say so
        needed = round(abs(budget / cur.sum() - 1) + 0.05, 2)
        p = p.model_copy(update={"max_change": needed})
        lo, hi = _bounds(p, channels, cur, periods)
        warnings.append(f"A total of {money(budget * periods)} is {budget / cur.sum() - 1:+.0%} against current "
                        f"spend, so each channel may move by up to ±{needed:.0%} (not the default ±25 %).")
        infeasible = lo.sum() > budget * (1 + 1e-9) or hi.sum() < budget * (1 - 1e-9)
    if infeasible:
        raise ToolError(f"The limits cannot hold a budget of {money(budget * periods)}: they allow "
                        f"{money(lo.sum() * periods)} to {money(hi.sum() * periods)} over {p.horizon_days} days. "
                        "Change the budget, max_change or the per-channel limits.")
    curve = _curve(fit, params)
    rec = _optimise(curve, budget, lo, hi)
    scen = [_scenario(s, channels, cur) for s in p.scenarios]
    allocs = np.array([rec, *[a for _, a in scen]])
    refs = np.array([cur * budget / cur.sum(), *[cur for _ in scen]])  # same total: the split's own value
    rng = np.random.default_rng(7)
    resid, block = y - fitted, 4 if period_days >= 7 else 14
    boot = {"contrib": [], "mroi": [], "gain": []}
    for _ in range(p.bootstrap):
        starts = rng.integers(0, n - block + 1, -(-n // block))
        idx = (starts[:, None] + np.arange(block)).ravel()[:n]
        fb = _fit(fitted + resid[idx], feats, base, groups, cache)
        cb = _curve(fb, params)
        boot["contrib"].append([fb["beta"][c] * feats[c][:, fb["choice"][c]].sum() for c in range(n_ch)])
        boot["mroi"].append(_marginal(cb, cur))
        boot["gain"].append([(_response(cb, a).sum() - _response(cb, r).sum()) * periods
                              for a, r in zip(allocs, refs, strict=True)])
    band = {k: np.percentile(np.array(v), [5, 95], axis=0) for k, v in boot.items()}
    contrib = np.array([fit["beta"][c] * feats[c][:, fit["choice"][c]].sum() for c in range(n_ch)])
    spent = spend.sum(0)
    mroi, sat = _marginal(curve, cur), _response(curve, cur) / np.maximum(curve[:, 2], 1e-300)
    mroi_rec = _marginal(curve, rec)
    gains = [(_response(curve, a).sum() - _response(curve, r).sum()) * periods for a, r in zip(allocs, refs, strict=True)]
    base_outcome = _response(curve, refs[0]).sum() * periods
    rows = [{"channel": ch, "spend": spent[c], "contribution": contrib[c],
             "contribution_low": band["contrib"][0][c], "contribution_high": band["contrib"][1][c],
             "share_of_media": contrib[c] / contrib.sum() if contrib.sum() > 0 else None,
             "roi": contrib[c] / spent[c], "roi_low": band["contrib"][0][c] / spent[c],
             "roi_high": band["contrib"][1][c] / spent[c], "marginal_roi": mroi[c], "marginal_roi_low":
             band["mroi"][0][c], "marginal_roi_high": band["mroi"][1][c], "saturation": sat[c],
             "current_budget": cur[c] * periods, "recommended_budget": (rec[c] if good else cur[c]) * periods,
             "change": (rec[c] / cur[c] - 1 if good else 0.0) if cur[c] > 0 else None,
             "marginal_roi_at_recommended": mroi_rec[c] if good else None,
             "adstock_alpha": params[c][fit["choice"][c]][1], "half_saturation_spend": curve[c, 1],
             "curve": KINDS[int(curve[c, 0])]} for c, ch in enumerate(channels)]
    rows.sort(key=lambda r: -r["contribution"])
    saturated = [r["channel"] for r in rows if r["saturation"] >= 0.9 or (r["roi"] > 0 and r["marginal_roi"] < 0.1
                                                                          * r["roi"])]
    unit = "per unit of spend"
    summary = (f"Response curves of {h['label']} fitted on {n} {'weeks' if period_days >= 7 else 'days'} "
               f"(R² {r2:.2f}, holdout error {pct(holdout_mape)}). Contribution share: " + ", ".join(
                   f"{r['channel']} {pct(r['share_of_media'])} (ROI {r['roi']:.2f}, marginal {r['marginal_roi']:.2f} "
                   f"{unit})" for r in rows[:4]) + ".")
    if saturated:
        summary += (" Saturated at current spend: " + ", ".join(
            f"{r['channel']} ({pct(r['saturation'], 0)} of its maximum response)" for r in rows
            if r["channel"] in saturated) + ": extra budget there returns little.")
    if not good:
        summary += (f" The fit is not reliable enough to recommend a reallocation (R² {r2:.2f}, minimum "
                    f"{p.min_r2}; holdout error {pct(holdout_mape)}): keep the current split and fit on a longer or "
                    "richer history.")
        warnings.append("Quality gate failed: no reallocation recommended.")
    else:
        moves = sorted(rows, key=lambda r: -abs(r["change"] or 0))[:3]
        summary += (f" Recommended split of {money(budget * periods)} over {p.horizon_days} days: " + ", ".join(
            f"{r['channel']} {money(r['recommended_budget'])} ({(r['change'] or 0):+.0%})" for r in moves)
            + f"; predicted {p.outcome if not p.table else p.outcome_column} {gains[0]:+,.0f} "
            f"({gains[0] / base_outcome:+.1%}; 90 % band {band['gain'][0][0]:+,.0f} to {band['gain'][1][0]:+,.0f}) "
            "versus keeping the current proportions.")
    for (name, _), g, lo_g, hi_g in zip(scen, gains[1:], band["gain"][0][1:], band["gain"][1][1:], strict=True):
        summary += f" What if {name}: {g:+,.0f} (90 % band {lo_g:+,.0f} to {hi_g:+,.0f})."
    metrics = {"r2": r2, "mape": mape, "holdout_mape": holdout_mape, "quality_ok": good, "periods": n,
               "period_days": period_days, "horizon_days": p.horizon_days, "budget": budget * periods,
               "outcome_at_current_split": base_outcome, "predicted_gain": gains[0] if good else 0.0,
               "predicted_gain_band": list(band["gain"][:, 0]) if good else None, "saturated": saturated,
               "scenarios": [{"name": nm, "allocation": dict(zip(channels, a * periods, strict=True)), "gain": g,
                              "band": [lo_g, hi_g]} for (nm, a), g, lo_g, hi_g in
                             zip(scen, gains[1:], band["gain"][0][1:], band["gain"][1][1:], strict=True)],
               "recommendation": dict(zip(channels, rec * periods, strict=True)) if good else None}
    chart = charts.bar([{"channel": r["channel"], "budget": round(v, 2), "split": k} for r in rows for k, v in
                        (("current", r["current_budget"]), ("recommended", r["recommended_budget"]))],
                       "channel", "budget", f"Budget over {p.horizon_days} days", color="split")
    return BudgetResult(summary=summary, data=rows, metrics=metrics, chart=chart, warnings=warnings)
