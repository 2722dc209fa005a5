"""The other side of a comparison: runs inside bench/.venv-compare (lifetimes, ChannelAttribution, old pandas).

`bench/.venv-compare/bin/python bench/extern.py JOB.json` — stand-alone on purpose: it imports nothing from
Northstar, so the comparison libraries never meet the product's dependencies. Input is read before the clock
starts; the clock covers the library call a data scientist would make.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from pathlib import Path


def _timed(fn, repeat: int, budget_s: float | None):
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if budget_s is not None and sum(times) > budget_s:
            break
    return times, out


def lifetimes_bgnbd(job: dict) -> dict:
    """BetaGeoFitter.fit on frequency / recency / T (weeks), optionally on deduplicated rows with weights."""
    import lifetimes
    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter

    df = pd.read_csv(job["csv"])
    x, t_x, T = (df[c].to_numpy(dtype=float) for c in job["columns"])
    weights = None
    if job.get("dedup"):
        uniq, w = np.unique(np.c_[x, t_x, T], axis=0, return_counts=True)
        x, t_x, T, weights = uniq[:, 0], uniq[:, 1], uniq[:, 2], w.astype(float)

    def fit():
        return BetaGeoFitter(penalizer_coef=0.0).fit(x, t_x, T, weights=weights)

    BetaGeoFitter(penalizer_coef=0.0).fit(x[:1000], t_x[:1000], T[:1000])  # warm-up, not timed

    times, model = _timed(fit, job.get("repeat", 3), job.get("budget_s"))
    params = {k: float(v) for k, v in model.params_.items()}
    return {"library": f"lifetimes {lifetimes.__version__}", "times_s": times, "params": params,
            "log_likelihood": -float(model._negative_log_likelihood_) * float(
                weights.sum() if weights is not None else len(x)), "rows": int(len(x))}


def ca_markov(job: dict) -> dict:
    """ChannelAttribution.markov_model (order 1, simulated removal effects) on paths with conversions and nulls."""
    import ChannelAttribution as ca
    import pandas as pd

    df = pd.read_csv(job["csv"], sep=job.get("csv_sep", ";"))

    def fit(data=df):
        return ca.markov_model(data, "path", "total_conversions", var_value="total_conversion_value",
                               var_null="total_null", order=1, sep=job.get("sep", ">"), ncore=job.get("ncore", 1),
                               verbose=False, flg_pro=False, out_more=True)

    fit(df.head(1000))  # warm-up, not timed

    times, res = _timed(fit, job.get("repeat", 3), job.get("budget_s"))
    result, removal = res["result"], res["removal_effects"]
    conv = dict(zip(result["channel_name"], result["total_conversions"].astype(float), strict=True))
    rem = dict(zip(removal["channel_name"], removal["removal_effects_conversion"].astype(float), strict=True))
    from importlib.metadata import version

    return {"library": f"ChannelAttribution {version('ChannelAttribution')}", "times_s": times,
            "conversions": conv, "removal_effects": rem, "rows": int(len(df))}


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    try:
        out = {"lifetimes_bgnbd": lifetimes_bgnbd, "ca_markov": ca_markov}[job["kind"]](job)
        out["ok"] = True
    except Exception as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-3000:]}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(job["out"]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
