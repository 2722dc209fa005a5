"""Run the comparison pairs (ours in a bench.worker child, theirs in the comparison venv) and report ratios."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench import venv
from bench.compare import JOURNEYS

ROOT = Path(__file__).resolve().parents[1]


def _median(times: list[float] | None) -> float | None:
    return round(statistics.median(times), 6) if times else None


def _pair(label: str, ours: dict, theirs: dict, ours_s, theirs_s, rows, note: str = "") -> dict:
    ok = bool(ours.get("ok") and theirs.get("ok"))
    errors = [f"{side}: {r.get('error')}" for side, r in (("Northstar", ours), ("library", theirs)) if not r.get("ok")]
    ratio = round(ours_s / theirs_s, 4) if ok and ours_s and theirs_s else None
    return {"label": label, "ok": ok, "rows": rows, "ours_s": ours_s, "theirs_s": theirs_s, "ratio": ratio,
            "note": note if ok else "**" + "; ".join(errors)[:300] + "**", "ours": ours, "theirs": theirs}


def _param_gap(a: dict, b: dict) -> float | None:
    """Largest relative difference between two parameter dicts (same keys)."""
    keys = [k for k in a if k in b and b[k]]
    return max(abs(a[k] - b[k]) / abs(b[k]) for k in keys) if keys else None


def _share_gap(a: dict, b: dict) -> float | None:
    """Largest difference in credited share (percentage points) between two channel → conversions dicts."""
    ta, tb = sum(a.values()), sum(b.values())
    keys = set(a) & set(b)
    return max(abs(a[k] / ta - b[k] / tb) * 100 for k in keys) if keys and ta and tb else None


def bgnbd(child, py, csv: str, columns: list[str], label: str, repeat: int, budget_s: float, plain: bool) -> dict:
    ours = child({"kind": "ours_bgnbd", "csv": csv, "columns": columns, "repeat": repeat, "budget_s": budget_s,
                  "plain": plain})
    theirs = venv.run(py, {"kind": "lifetimes_bgnbd", "csv": csv, "columns": columns, "repeat": repeat,
                           "budget_s": budget_s})
    gap = _param_gap(ours.get("params", {}), theirs.get("params", {}))
    note = (f"ours from the raw rows, merging identical customers inside the fit (timed) into "
            f"{ours.get('unique_rows', 0):,} weighted rows (exact); parameters agree within {100 * gap:.2g} %"
            if gap is not None else "")
    if ours.get("plain"):
        note += f"; ours without merging repeat customers {ours['plain']['median_s']:.3f} s"
    if ours.get("as_tool") and theirs.get("times_s"):
        cap = ours["as_tool"]
        note += (f"; as predict_clv fits above {cap['fit_rows']:,} customers (a seeded sample of that size): "
                 f"{cap['median_s']:.3f} s, ratio {cap['median_s'] / _median(theirs['times_s']):.3f}, "
                 f"parameters within {100 * cap['max_param_gap_vs_all']:.2g} % of the fit on everyone")
    return _pair(label, ours, theirs, ours.get("median_s"), _median(theirs.get("times_s")), ours.get("rows"), note)


def markov(child, py, home: Path, table: str, csv: str, label: str, repeat: int, budget_s: float) -> dict:
    ours = child({"kind": "ours_markov", "home": str(home), "table": table, "repeat": repeat, "budget_s": budget_s})
    theirs = venv.run(py, {"kind": "ca_markov", "csv": csv, "csv_sep": ";", "sep": ">", "repeat": repeat,
                           "budget_s": budget_s})
    gap = _share_gap(ours.get("conversions", {}), theirs.get("conversions", {}))
    split = ours.get("split") or {}
    note = "ours exact (absorbing chain), ChannelAttribution simulated (1e5 paths, 1 core)"
    if gap is not None:
        note += f"; credited shares differ by at most {gap:.2f} pp"
    if "markov_solve_median_s" in split:
        note += f"; of ours: reading paths {split['read_paths_s']:.3f} s, solve {split['markov_solve_median_s']:.3f} s"
    return _pair(label, ours, theirs, ours.get("median_s"), _median(theirs.get("times_s")), ours.get("rows"), note)


def segments(child, home: Path, repeat: int, budget_s: float) -> dict:
    """segment_customers' clustering vs MiniBatchKMeans (bench/compare_segments.py): k chosen by both sides (the
    tool as run), k given (ours' choice), and the tool's two other algorithms with that k."""
    res = child({"kind": "segments", "home": str(home), "repeat": repeat, "budget_s": budget_s})
    lib = res.get("library", "scikit-learn")
    how = {"k_chosen": "the Gaussian mixture's centres, nearest-centre membership",
           "k_given": "the Gaussian mixture's centres, nearest-centre membership",
           "k_given_posterior": "the Gaussian mixture's most probable segment (algorithm='gmm_posterior')",
           "k_given_kmeans": "k-means' labels (algorithm='kmeans')"}
    out = {}
    for key, what in (("k_chosen", "k chosen by silhouette (3..8) on both sides"),
                      ("k_given", "k given (ours' choice)"),
                      ("k_given_posterior", "k given, ours with algorithm='gmm_posterior'"),
                      ("k_given_kmeans", "k given, ours with algorithm='kmeans'")):
        part = res.get(key) or {}
        ours, theirs = part.get("ours") or {}, part.get("theirs") or {}
        side = {"ok": res.get("ok"), "error": res.get("error")}
        note = ""
        if ours and theirs:
            gap = ours["silhouette"] - theirs["silhouette"]
            note = (f"silhouette on the same 10,000 customers: ours {ours['silhouette']:.4f} (k = {ours['k']}), "
                    f"theirs {theirs['silhouette']:.4f} (k = {theirs['k']}), ours − theirs {gap:+.4f}")
            if "ari_planted" in ours and "ari_planted" in theirs:
                note += (f"; adjusted Rand index against the planted segments: ours {ours['ari_planted']:.3f}, "
                         f"theirs {theirs['ari_planted']:.3f}")
            note += (f"; ours: segmentation._cluster (k-means on seeded samples, then {how[key]}, every customer "
                     "labelled); theirs: MiniBatchKMeans(n_clusters=k, random_state=0) on every customer; both on "
                     "one thread")
        out[f"segments_{key}"] = {**_pair(f"segment_customers' clustering vs {lib} MiniBatchKMeans, {what}",
                                          {**side, **ours}, {**side, **theirs}, ours.get("median_s"),
                                          theirs.get("median_s"), res.get("rows"), note),
                                  "silhouette_gap": (ours["silhouette"] - theirs["silhouette"]) if note else None}
    return out


PAIRS = ("pandas", "vader", "bgnbd", "markov", "segments")


def run_comparisons(home: Path, work: Path, results: dict, repeat: int, child, log,
                    pairs: tuple[str, ...] = PAIRS) -> dict:
    """Every pair of the issue (or those in `pairs`); a pair that cannot run is recorded with its reason, the
    others still run."""
    shared = Path(__import__("os").environ.get("NORTHSTAR_SHARED", ROOT.parent / "shared")) / "datasets"
    cdnow, demo_paths = shared / "clv" / "cdnow_customers_summary.csv", shared / "attribution" / "paths.csv"
    out: dict = {}
    log("comparison inputs (BG/NBD summary, path tables) …")
    exp = child({"kind": "export", "home": str(home), "dir": str(work), "demo_paths": str(demo_paths),
                 "journeys": JOURNEYS})
    out["inputs"] = exp
    if "segments" in pairs:
        log("segment_customers' clustering vs MiniBatchKMeans …")
        out.update(segments(child, home, repeat, 900))
    if "pandas" in pairs:
        _pandas(out, home, results, repeat, child, log)
    if "vader" in pairs:
        log("VADER on 100k reviews: ours vs vaderSentiment, one core …")
        from bench import vader_bench

        out["vader_100k"] = vader_bench.pair(max(repeat, 3))
    if not {"bgnbd", "markov"} & set(pairs):
        return out
    if not exp.get("ok"):
        out["error"] = f"exporting the comparison inputs failed: {exp.get('error')}"
        return out
    env = venv.ensure(log)
    out["venv"] = {k: env[k] for k in ("ok", "error", "venv", "packages") if k in env}
    if not env.get("ok"):
        out["error"] = f"the comparison libraries could not be installed: {env.get('error')}"
        return out
    py = env["python"]
    if "bgnbd" in pairs:
        if cdnow.exists():
            log("BG/NBD on CDNOW: ours vs lifetimes …")
            out["bgnbd_cdnow"] = bgnbd(child, py, str(cdnow), ["frequency", "recency", "T"],
                                       "BG/NBD fit, CDNOW (2,357 customers) vs lifetimes", max(repeat, 5), 120, True)
        n = exp.get("customers") or 0
        log(f"BG/NBD on the warehouse ({n:,} customers): ours vs lifetimes …")
        out["bgnbd_warehouse"] = bgnbd(child, py, exp["bgnbd_csv"], ["x", "t_x", "T"],
                                       f"BG/NBD fit, {n:,} warehouse customers vs lifetimes", repeat, 900, True)
    if "markov" in pairs:
        if demo_paths.exists():
            log("Markov on ChannelAttribution's demo paths …")
            out["markov_demo"] = markov(child, py, home, "bench_paths_demo", str(demo_paths),
                                        "Markov order 1, ChannelAttribution demo (10,000 paths)", max(repeat, 5), 120)
        j = exp.get("journeys") or 0
        log(f"Markov on {j:,} journeys …")
        out["markov_journeys"] = markov(child, py, home, "bench_paths_journeys", exp["journeys_csv"],
                                        f"Markov order 1, {j:,} warehouse journeys (one row each)", repeat, 900)
    for key, pair in (("bgnbd_cdnow", "bgnbd"), ("markov_demo", "markov")):
        if key not in out and pair in pairs:
            out[key] = {"label": key, "ok": False, "note": f"**shared dataset missing under {shared}**"}
    return out


def _pandas(out: dict, home: Path, results: dict, repeat: int, child, log) -> None:
    log("pandas KPIs …")
    ex = next((c for c in results.get("tools", []) if c["tool"] == "campaign_report" and c["case"] == "example"), {})
    args = ex.get("args") or {}
    pd_res = child({"kind": "pandas_kpis", "home": str(home), "start": args.get("start", "2026-09-01"),
                    "end": args.get("end", "2026-09-30"), "repeat": max(repeat, 5)})
    ours_cr = {"ok": bool(ex.get("ok")), "error": ex.get("error"), "median_s": ex.get("median_s")}
    for key, part, what in (("campaign_report_pandas", "compute", "DataFrame already in memory"),
                            ("campaign_report_pandas_load", "load_and_compute", "DuckDB → DataFrame, then compute")):
        theirs = {"ok": pd_res.get("ok"), "error": pd_res.get("error"), "times_s": (pd_res.get(part) or {}).get("runs_s")}
        out[key] = _pair(f"campaign_report vs pandas {pd_res.get('pandas', '')} ({what})", ours_cr, theirs,
                         ex.get("median_s"), (pd_res.get(part) or {}).get("median_s"), pd_res.get("rows"),
                         "ours: the whole tool (validation, 3 SQL queries, chart); pandas: the KPIs only")
