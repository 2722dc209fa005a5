"""`python -m bench.profile TOOL --home HOME [--args JSON]`: where one tool spends its time (cProfile).

One untimed warm-up run (imports, caches), then one profiled run of the registry example (or --args merged
over it) against HOME/warehouse.duckdb; prints the top functions by cumulative and by own time. Time inside
DuckDB shows as the `execute`/`fetch*` call that waited for it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    ap.add_argument("tool")
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--args", default="{}", help="JSON merged over the registry example.")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--dynamic", choices=["bench_reviews", "current_budget"],
                    help="Arguments computed from the warehouse, as the harness does (bench_reviews: sentiment on "
                         "100k distinct reviews).")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--out", type=Path, help="Also save the raw profile (pstats) here.")
    a = ap.parse_args(argv)

    from bench.worker import DYNAMIC, safe_registry
    from tools.registry import ToolContext
    from tools.warehouse import connect

    registry, errors = safe_registry()
    if a.tool not in registry:
        print(f"{a.tool} is not registered; import errors: {errors}", file=sys.stderr)
        return 2
    spec = registry[a.tool]
    con = connect(a.home / "warehouse.duckdb")
    args = spec.example.model_dump(mode="json")
    if a.dynamic or a.tool == "allocate_budget":
        args.update(DYNAMIC[a.dynamic or "current_budget"](con))
    args.update(json.loads(a.args))
    params, ctx = spec.parse(args), ToolContext(home=a.home, user="bench", role="analyst")
    if not a.no_warmup:
        t0 = time.perf_counter()
        spec.run(con, params, ctx)
        print(f"warm-up run: {time.perf_counter() - t0:.3f} s", file=sys.stderr)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    spec.run(con, params, ctx)
    prof.disable()
    print(f"profiled run: {time.perf_counter() - t0:.3f} s (with profiler overhead)", file=sys.stderr)
    if a.out:
        prof.dump_stats(str(a.out))
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(a.top)
        print(f"==== by {key} ====\n" + buf.getvalue().split("\n\n", 2)[-1])
    con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
