"""VADER, ours (tools.analytics.vader) vs vaderSentiment: identical scores, and throughput on one core.

`python -m bench.vader_bench [--repeat 5] [--core 0] [--corpora DIR]` builds the 100k distinct reviews of
`analyze_sentiment`'s benchmark (bench.worker.bench_reviews), then, in child processes pinned to one core
(`os.sched_setaffinity`, thread pools of 1):

* **cold**: a fresh process imports one side, loads its lexicon and scores the 100k texts once; four processes in
  the order vaderSentiment, ours, ours, vaderSentiment (so a drift of the machine's load cancels), mean per side;
* **warm**: one process holding both, after an untimed pass of each, alternates `--repeat` timed passes (ours,
  vaderSentiment, ours, …); the median per side, and the speed-up as the median of the per-round ratios;
* **identity**: neg, neu, pos and compound of every text, ours vs vaderSentiment's (the cold runs' scores), and
  the same on every text of VADER's corpora found in ../shared/datasets/sentiment and in `--corpora`; a
  difference above 1e-9 counts.

Results: bench/results/vader-<date>.json (load average at start and end, versions, every time) and a summary.
Numpy is imported before the clock starts on both sides (score_texts returns numpy arrays either way);
vaderSentiment's list of dicts is turned into arrays after its clock stops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NORTHSTAR_SHARED", ROOT.parent / "shared")) / "datasets" / "sentiment"
FIELDS = ("neg", "neu", "pos", "compound")
TOLERANCE = 1e-9
SINGLE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def bench_texts(n: int = 100_000, seed: int = 7) -> list[str]:
    """The analyze_sentiment benchmark's distinct reviews (one DuckDB thread, so the same texts every run)."""
    import duckdb

    from bench.worker import bench_reviews

    con = duckdb.connect()
    con.execute("SET threads = 1")
    bench_reviews(con, n, seed)
    return [r[0] for r in con.execute("SELECT text FROM bench_reviews ORDER BY review_id").fetchall()]


def corpus_texts(path: Path) -> list[str]:
    """The text column of a VADER ground-truth file (id, rating, text; tab-separated, CRLF lines)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return [line.rstrip("\r").split("\t", 2)[2] for line in lines if line.strip()]


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _vader_dicts(texts: list[str]) -> list[dict]:
    analyzer = _analyzer()
    return [analyzer.polarity_scores(t) for t in texts]


def _vader_arrays(scores: list[dict]) -> dict[str, np.ndarray]:
    return {f: np.array([s[f] for s in scores]) for f in FIELDS}


def reference(texts: list[str]) -> dict[str, np.ndarray]:
    return _vader_arrays(_vader_dicts(texts))


def ours(texts: list[str]) -> dict[str, np.ndarray]:
    from tools.analytics.vader import polarity_scores

    got = polarity_scores(texts)
    return {f: getattr(got, f) for f in FIELDS}


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray], texts: list[str]) -> dict:
    """Texts checked, fields differing by more than TOLERANCE, the largest difference, a few examples."""
    diff = np.stack([np.abs(a[f] - b[f]) for f in FIELDS])
    bad = np.flatnonzero((diff > TOLERANCE).any(axis=0))
    return {"texts": len(texts), "mismatched_texts": int(bad.size),
            "mismatched_fields": int((diff > TOLERANCE).sum()), "max_abs_diff": float(diff.max(initial=0.0)),
            "examples": [texts[i][:200] for i in bad[:5]]}


def _child(args) -> None:
    """Child, pinned to one core. `cold`: import one side and score the texts once, timed, then save the scores.
    `warm`: after one untimed pass of each side, alternate timed passes (ours, vaderSentiment, ours, …), so a
    change of load hits both sides alike."""
    os.sched_setaffinity(0, {args.core})
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    if args.mode == "cold":
        timed = {"ours": lambda: ours(texts), "vaderSentiment": lambda: _vader_dicts(texts)}[args.side]
        t0 = time.perf_counter()
        got = timed()
        seconds = time.perf_counter() - t0
        np.savez(args.out, **(got if args.side == "ours" else _vader_arrays(got)))
        Path(args.out + ".json").write_text(json.dumps({"cold_s": seconds}))
        return
    passes = {"ours": lambda: ours(texts), "vaderSentiment": lambda: _vader_dicts(texts)}
    for run in passes.values():
        run()
    warm: dict[str, list[float]] = {side: [] for side in passes}
    for _ in range(args.repeat):
        for side, run in passes.items():
            t0 = time.perf_counter()
            run()
            warm[side].append(time.perf_counter() - t0)
    Path(args.out + ".json").write_text(json.dumps(warm))


def _spawn(mode: str, side: str, texts_file: Path, out: str, repeat: int, core: int) -> dict:
    env = {**os.environ, **SINGLE_THREAD, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "bench.vader_bench", "--mode", mode, "--side", side, "--texts",
                    str(texts_file), "--out", out, "--repeat", str(repeat), "--core", str(core)],
                   check=True, cwd=ROOT, env=env)
    return json.loads(Path(out + ".json").read_text())


def _versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("vaderSentiment", "numpy", "pyarrow", "duckdb")} | {
        "python": platform.python_version()}


def main(repeat: int = 5, core: int = 0, corpora: list[Path] | None = None, results_dir: Path | None = None) -> dict:
    load = os.getloadavg()[0]
    folders = [SHARED, *(corpora or [])]
    found: dict[str, Path] = {}
    for path in (p for d in folders for p in sorted(Path(d).glob("*_GroundTruth.txt"))):
        found.setdefault(path.name, path)  # ../shared first
    files = sorted(found.values(), key=lambda p: p.name)
    identity = {}
    for path in files:
        texts = corpus_texts(path)
        identity[path.name] = compare(ours(texts), reference(texts), texts)
    texts = bench_texts()
    cold: dict[str, list[float]] = {"ours": [], "vaderSentiment": []}
    with tempfile.TemporaryDirectory(prefix="vader-bench-") as tmp:
        work = Path(tmp)
        texts_file = work / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        for i, side in enumerate(("vaderSentiment", "ours", "ours", "vaderSentiment")):  # ABBA: drift cancels
            cold[side].append(_spawn("cold", side, texts_file, str(work / f"{side}{i}.npz"), 0, core)["cold_s"])
        scores = {}
        for side, i in (("vaderSentiment", 0), ("ours", 1)):
            with np.load(work / f"{side}{i}.npz") as z:
                scores[side] = {f: z[f] for f in FIELDS}
        warm = _spawn("warm", "both", texts_file, str(work / "warm"), repeat, core)
    identity["bench_reviews (100k)"] = compare(scores["ours"], scores["vaderSentiment"], texts)
    timing = {side: {"cold_s": round(statistics.mean(cold[side]), 4), "cold_runs_s": [round(x, 4) for x in cold[side]],
                     "warm_median_s": round(statistics.median(warm[side]), 4),
                     "warm_s": [round(x, 4) for x in warm[side]]} for side in cold}
    ref, new = timing["vaderSentiment"], timing["ours"]
    pairs = [b / a for a, b in zip(warm["ours"], warm["vaderSentiment"], strict=True)]
    results = {"meta": {"date": date.today().isoformat(), "load_start": round(load, 2),
                        "load_end": round(os.getloadavg()[0], 2), "core": core,
                        "cpus": os.cpu_count(), "repeat": repeat, "texts": len(texts), "versions": _versions(),
                        "corpora": [str(f) for f in files]},
               "identity": identity, "throughput": timing,
               "speedup": {"cold": round(ref["cold_s"] / new["cold_s"], 2),
                           "warm": round(statistics.median(pairs), 2)},
               "texts_per_s": {side: round(len(texts) / t["warm_median_s"]) for side, t in timing.items()}}
    out_dir = results_dir or ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"vader-{results['meta']['date']}.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def pair(repeat: int = 3, core: int = 0, results_dir: Path | None = None) -> dict:
    """This comparison as a row of bench/comparisons.py (ratio ours ÷ theirs on the cold pass, the headline figure;
    the warm one and the identity check in the note). Never raises: a failure is a row with its error."""
    try:
        r = main(repeat, core, results_dir=results_dir)
    except Exception as exc:  # the comparison run goes on without this row
        return {"label": "VADER, 100k distinct reviews, one core, vs vaderSentiment", "ok": False,
                "note": f"**{type(exc).__name__}: {exc}**"[:300]}
    ours, theirs = r["throughput"]["ours"], r["throughput"]["vaderSentiment"]
    differ = sum(x["mismatched_texts"] for x in r["identity"].values())
    checked = sum(x["texts"] for x in r["identity"].values())
    return {"label": "VADER, 100k distinct reviews, one core, vs vaderSentiment (cold: imports + first pass)",
            "ok": differ == 0, "rows": r["meta"]["texts"], "ours_s": ours["cold_s"], "theirs_s": theirs["cold_s"],
            "ratio": round(ours["cold_s"] / theirs["cold_s"], 4),
            "note": (f"warm {ours['warm_median_s']:.3f} s vs {theirs['warm_median_s']:.3f} s "
                     f"({r['speedup']['warm']}× faster); {checked:,} texts checked, {differ} differ "
                     f"(neg, neu, pos, compound to 1e-9)"), "detail": r}


def summary(results: dict) -> str:
    m = results["meta"]
    lines = [f"load {m['load_start']} at start, {m['load_end']} at the end; core {m['core']}"]
    for name, r in results["identity"].items():
        lines.append(f"{name}: {r['texts']:,} texts, {r['mismatched_texts']} differ, max |diff| {r['max_abs_diff']:.3g}")
    for side, t in results["throughput"].items():
        lines.append(f"{side}: cold {t['cold_s']:.3f} s, warm {t['warm_median_s']:.3f} s (median of {len(t['warm_s'])})")
    lines.append(f"speed-up: cold {results['speedup']['cold']}×, warm {results['speedup']['warm']}×")
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.vader_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="Warm passes per side (median reported).")
    ap.add_argument("--core", type=int, default=0, help="The one core both sides run on.")
    ap.add_argument("--corpora", type=Path, nargs="*", help="More folders with VADER *_GroundTruth.txt files.")
    ap.add_argument("--results", type=Path, help="Folder for the JSON results (default bench/results).")
    ap.add_argument("--mode", choices=["cold", "warm"], help=argparse.SUPPRESS)
    ap.add_argument("--side", choices=["ours", "vaderSentiment", "both"], help=argparse.SUPPRESS)
    ap.add_argument("--texts", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.mode:
        _child(a)
        return 0
    results = main(a.repeat, a.core, a.corpora, a.results)
    print(summary(results))
    bad = sum(r["mismatched_texts"] for r in results["identity"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(cli())
