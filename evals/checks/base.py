"""Check cases (analytics_reference, content): each names a check function with its parameters.

Reference checks load real datasets from ../shared/datasets with the real loader into a fresh home and run
the tools through the registry, exactly as `northstar load` + `northstar tool` do; demo checks read the
planted truths in tools/demo.py.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

CHECKS: dict = {}
SHARED = Path(os.environ.get("NORTHSTAR_SHARED", Path(__file__).resolve().parents[3] / "shared"))


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def run_check(case: dict) -> list[str]:
    name = case["check"]
    if name not in CHECKS:
        return [f"unknown check {name!r}"]
    return CHECKS[name](case)


class MissingData(Exception):
    pass


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        raise MissingData(f"{path} not found (the shared datasets must be beside the checkout)")
    return path


def fresh_con():
    from tools.warehouse import connect

    home = Path(tempfile.mkdtemp(prefix="northstar-check-"))
    return connect(home / "warehouse.duckdb"), home


@cache
def demo_home(customers: int = 50_000) -> Path:
    """The default demo world (seed 7), built once per eval run."""
    from tools.warehouse.demo import generate

    con, home = fresh_con()
    generate(con, customers=customers, seed=7)
    con.close()
    return home


def run_tool(name: str, args: dict, con, home: Path | None = None):
    from tools.registry import ToolContext, get_tool

    return get_tool(name).run(con, args, ToolContext(home=home or Path(tempfile.mkdtemp()), role="analyst"))


def close(actual, expected, *, rel: float | None = None, abs_: float | None = None, label: str = "") -> list[str]:
    if actual is None:
        return [f"{label}: missing"]
    tol = abs_ if abs_ is not None else rel * abs(expected)
    return [] if abs(actual - expected) <= tol else [f"{label}: {actual} vs {expected} (± {tol:.4g})"]


@check
def content_variants(case: dict) -> list[str]:
    from tools.compliance import check as comply
    from tools.warehouse import connect

    p = case["params"]
    con = connect(demo_home() / "warehouse.duckdb")
    try:
        res = run_tool("generate_content_variants", p, con, demo_home())
    finally:
        con.close()
    texts = [r["text"] for r in res.data]
    why = []
    if getattr(res, "refused", False):
        return [f"refused: {res.summary}"]
    if len(texts) < min(p.get("n", 5), 3):
        why.append(f"only {len(texts)} variants for n={p.get('n')}")
    if len(set(t.lower() for t in texts)) != len(texts):
        why.append("variants are not distinct")
    for t in texts:
        if problems := comply(t, p["channel"]):
            why.append(f"{t!r} fails compliance: {', '.join(map(str, problems))}")
    return why


@check
def content_refused(case: dict) -> list[str]:
    from tools.registry import ToolError
    from tools.warehouse import connect

    con = connect(demo_home() / "warehouse.duckdb")
    try:
        res = run_tool("generate_content_variants", case["params"], con, demo_home())
    except ToolError:
        return []
    finally:
        con.close()
    return [] if getattr(res, "refused", False) else [f"not refused: {[r['text'] for r in res.data][:2]}"]

