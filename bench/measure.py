"""What a measurement is made of: wall time, peak RSS, rows read, percentiles. No Northstar imports here."""

from __future__ import annotations

import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def rss_mb(field: str = "VmRSS") -> float | None:
    """Resident set size of this process from /proc (VmRSS now, VmHWM peak since start or the last reset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS of this process since it started (getrusage ru_maxrss, kB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux ≥ 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def timed(fn: Callable[[], object], repeat: int, budget_s: float | None = None) -> tuple[list[float], object]:
    """Run fn `repeat` times (fewer when the runs so far exceed budget_s); seconds of each run and the last result."""
    times: list[float] = []
    out = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if budget_s is not None and sum(times) > budget_s:
            break
    return times, out


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list; None for an empty one."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summary(times: list[float]) -> dict:
    """Median, min, max and every run, in seconds (rounded to the microsecond)."""
    return {"median_s": round(statistics.median(times), 6), "min_s": round(min(times), 6),
            "max_s": round(max(times), 6), "runs_s": [round(t, 6) for t in times]}


def cold_warm(times: list[float]) -> dict:
    """The first run (cold: a fresh process, lazy imports, saving what the tool saves — the headline figure) apart
    from the median of the runs after it (warm; None with a single run)."""
    if not times:
        return {"first_s": None, "warm_median_s": None, "warm_runs": 0}
    warm = times[1:]
    return {"first_s": round(times[0], 6), "warm_median_s": round(statistics.median(warm), 6) if warm else None,
            "warm_runs": len(warm)}


_FROM = re.compile(r'\b(?:FROM|JOIN)\s+(?:main\.)?"?([A-Za-z_][A-Za-z0-9_]*)"?', re.IGNORECASE)


def tables_read(sql_texts: list[str], known: set[str]) -> set[str]:
    """Tables that the statements read (FROM / JOIN / USING sources; write targets are not reads)."""
    found: set[str] = set()
    for sql in sql_texts:
        try:
            found |= _tables_sqlglot(sql)
        except Exception:  # a dialect corner sqlglot cannot parse: fall back to FROM/JOIN names
            found |= {m.group(1) for m in _FROM.finditer(sql)}
    return found & known


def _tables_sqlglot(sql: str) -> set[str]:
    import sqlglot
    from sqlglot import exp

    out: set[str] = set()
    for stmt in sqlglot.parse(sql, read="duckdb"):
        if stmt is None:
            continue
        if isinstance(stmt, exp.Insert | exp.Create):
            stmt = stmt.expression
        elif isinstance(stmt, exp.Delete | exp.Update):
            stmt = stmt.args.get("where")
        if stmt is None:
            continue
        out |= {t.name for t in stmt.find_all(exp.Table) if t.name}
    return out
