"""The small demo world on DuckDB and on Spark, and how their results are compared (the Spark suites share it).

A real local Spark session (`local[1]`: the JVM starts once per process, whichever module asks first) and a real
DuckDB file, both filled by `init --demo`'s generator (2,000 customers, seed 7). Each module builds its own world
under its own temporary folder, so one module's writes (actions, saved runs) never reach another's comparisons.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from pathlib import Path

from tools import get_tool
from tools.registry import ToolContext
from tools.warehouse import connect
from tools.warehouse.backends import SparkBackend

CUSTOMERS, SEED, REL = 2000, 7, 1e-9
FITTED_REL = 1e-6
"""Fitted models (BG/NBD, the churn and lead classifiers) stop at their optimiser's tolerance: inputs that differ in
the last bit (a sum added in another order) can move the optimum by ~1e-9 relative, so their outputs are compared
at 1e-6."""


def need_java(what: str) -> None:
    """Java for the local session: installed from apt under CI=true when missing, else the module is skipped."""
    if os.environ.get("JAVA_HOME"):
        return
    from tests.system_packages import ensure

    ensure("java", "openjdk-17-jre-headless", what)


@contextlib.contextmanager
def world(root: Path, what: str):
    """(DuckDB connection, Spark connection, root) for a module's tests, with NORTHSTAR_WAREHOUSE unset meanwhile
    (each connection is opened explicitly) and both closed afterwards; `what` names the suite in Java's notice."""
    need_java(what)
    saved = os.environ.pop("NORTHSTAR_WAREHOUSE", None)
    try:
        duck, spark = build_pair(root)
        yield duck, spark, root
        duck.close()
        spark.close()
    finally:
        if saved is not None:
            os.environ["NORTHSTAR_WAREHOUSE"] = saved


def build_pair(root: Path):
    """(DuckDB connection, Spark connection) over the same demo world under `root`; the Spark home shares the
    DuckDB home's pseudonym key, so masked values compare too. The caller closes both."""
    from tools.privacy import KEY_FILE, home_key
    from tools.warehouse.demo import generate

    duck = connect(root / "duck" / "warehouse.duckdb")
    generate(duck, customers=CUSTOMERS, seed=SEED)
    spark = SparkBackend("local[1]").connect(root / "spark" / "warehouse.duckdb")
    generate(spark, customers=CUSTOMERS, seed=SEED)
    home_key(root / "duck")
    shutil.copy(root / "duck" / KEY_FILE, root / "spark" / KEY_FILE)
    spark.execute("SELECT count(*) FROM orders").fetchall()  # warm the JVM before timed tools run
    return duck, spark


def same(a, b, where: str = "result", rel: float = REL) -> None:
    """Equal, floats within `rel` relative (and 1e-12 absolute near zero)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{where}: {a!r} != {b!r}"
        if math.isnan(a) and math.isnan(b):
            return
        assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}", rel)
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{where}: {len(a)} rows != {len(b)} rows"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]", rel)
    elif where.endswith(".run_id"):  # a fingerprint of the scores' bits: equal within 1e-9 is not bit-equal
        assert str(a).split("-")[0] == str(b).split("-")[0], f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def run_both(pair, name: str, args: dict, ctx: ToolContext | None = None):
    """The tool's result on DuckDB and on Spark (each with its own home unless `ctx` is given)."""
    duck, spark, root = pair
    spec = get_tool(name)
    left = spec.run(duck, args, ctx or ToolContext(home=root / "duck"))
    right = spec.run(spark, args, ctx or ToolContext(home=root / "spark"))
    return left, right


def rows(con, sql: str, params=None) -> list[tuple]:
    """A query's rows on either engine (the query orders them)."""
    return [tuple(r) for r in con.execute(sql, params).fetchall()]
