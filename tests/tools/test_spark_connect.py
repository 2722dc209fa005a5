"""Spark Connect, really run: a Spark Connect server on this machine, the `northstar` CLI pointed at it.

The server is the real one, `org.apache.spark.sql.connect.service.SparkConnectServer`, whose jar pyspark ships
(`pyspark/jars/spark-connect_*.jar`): started with the bundled `spark-submit`, offline, `local[1]`, on a port of
18600-18649, its catalogue's tables under a temporary `spark.sql.warehouse.dir`. Northstar reaches it only through
NORTHSTAR_WAREHOUSE=spark:sc://127.0.0.1:<port>, in separate `northstar` processes, as a user would. The numbers are
compared with the local-session backend (`spark:local[1]` in this process) on the same demo world.

Needs Java (installed from apt when missing, as the parity suite does) and pyspark's Connect client dependencies
(`pyspark[connect]`: grpcio, grpcio-status, googleapis-common-protos). Without them: CI fails with what to add,
elsewhere the module is skipped with that notice.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ui.test_gradio_app import free_port_in

pytestmark = [pytest.mark.slow, pytest.mark.spark]
ROOT = Path(__file__).resolve().parents[2]
PORTS = range(18600, 18650)
CUSTOMERS, SEED = 1000, 7
START_TIMEOUT_S = 180


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need_client() -> None:
    """pyspark's Connect client refuses to import without grpcio-status & co: say exactly what is missing."""
    try:
        from pyspark.sql.connect.utils import check_dependencies

        check_dependencies("tests.tools.test_spark_connect")
    except ImportError as exc:
        message = (f"Spark Connect's client needs `pyspark[connect]` in the lock file ({exc}); add "
                   "`pyspark[connect]>=4.0,<5` to pyproject.toml's dependencies and run `uv lock`")
        pytest.fail(message) if _ci() else pytest.skip(f"NOTICE: {message}")


def _need_java() -> None:
    if os.environ.get("JAVA_HOME"):
        return
    from tests.system_packages import ensure

    ensure("java", "openjdk-17-jre-headless", "The Spark Connect test")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Spark Connect server on a free port of 18600-18649; stopped (its process group) at the end."""
    _need_client()
    _need_java()
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    jars = sorted((spark_home / "jars").glob("spark-connect_*.jar"))
    assert jars, f"pyspark {pyspark.__version__} ships no spark-connect jar in {spark_home / 'jars'}"
    root = tmp_path_factory.mktemp("connect")
    port = free_port_in(PORTS)
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed at teardown
    cmd = [str(spark_home / "bin" / "spark-submit"), "--class",
           "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", "local[1]",
           "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
           "--conf", f"spark.sql.warehouse.dir={root / 'catalogue'}", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.sql.shuffle.partitions=2", "spark-internal"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
                            env={**os.environ, "SPARK_HOME": str(spark_home)})
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "server.log").read_text()[-2000:]
                pytest.fail(f"the Spark Connect server did not start on port {port} (exit {proc.poll()}):\n{tail}")
            time.sleep(1)
        yield {"port": port, "root": root, "catalogue": root / "catalogue"}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def northstar(home: Path, setting: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`northstar …` in its own process with this home and NORTHSTAR_WAREHOUSE."""
    env = {**os.environ, "NORTHSTAR_HOME": str(home), "NORTHSTAR_WAREHOUSE": setting,
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    env.pop("NORTHSTAR_SERVER", None)
    return subprocess.run([sys.executable, "-m", "ui.cli.app", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def world(server, tmp_path_factory):
    """`northstar init --demo` through Spark Connect (the home keeps only the governance file)."""
    home = tmp_path_factory.mktemp("connect-home")
    setting = f"spark:sc://127.0.0.1:{server['port']}"
    done = northstar(home, setting, "init", "--demo", "--customers", str(CUSTOMERS), "--seed", str(SEED))
    assert done.returncode == 0, f"init --demo on Spark Connect failed:\n{done.stdout[-1500:]}{done.stderr[-3000:]}"
    return {**server, "home": home, "setting": setting}


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The same demo world on the local-session backend (`spark:local[1]`), in this process."""
    from tools.warehouse.backends import SparkBackend
    from tools.warehouse.demo import generate

    home = tmp_path_factory.mktemp("local-home")
    con = SparkBackend("local[1]").connect(home / "warehouse.duckdb")
    counts = generate(con, customers=CUSTOMERS, seed=SEED)
    yield con, home, counts
    con.close()


def test_init_demo_writes_the_world_into_the_servers_catalogue(world, local):
    _, _, counts = local
    listed = northstar(world["home"], world["setting"], "tables", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = {t["table"]: t["rows"] for t in json.loads(listed.stdout)}
    for table, n in counts.items():  # every demo table, with the generator's row count
        assert rows.get(table) == n, f"{table}: {rows.get(table)} rows on Spark Connect, generator made {n}"
    assert not [t for t in rows if "__new_" in t], f"a rewrite's temporary table is visible: {sorted(rows)}"
    # the rows live in the server's catalogue, not as Parquet under the home (that is spark:local[N])
    assert (world["catalogue"] / "customers").is_dir(), sorted(p.name for p in world["catalogue"].iterdir())
    assert not (world["home"] / "spark").exists()
    assert (world["home"] / "warehouse.duckdb").exists()  # the governance state stays local


def _same(a, b, where: str, rel: float) -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), \
            f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}", rel)
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} rows"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]", rel)
    elif where.endswith(".run_id"):  # fingerprints the scores' bits (docs/scale-out.md)
        assert str(a).split("-")[0] == str(b).split("-")[0], f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize(("name", "args", "rel"), [
    ("campaign_report", {"group_by": "week", "channels": ["search", "social"], "start": "2026-06-01",
                         "end": "2026-08-31"}, 1e-9),
    ("predict_clv", {}, 1e-6),  # fitted: compared at the optimiser's tolerance, as in the parity suite
])
def test_tools_on_spark_connect_give_the_local_sessions_numbers(world, local, name, args, rel):
    from tools import get_tool, jsonable
    from tools.registry import ToolContext

    con, home, _ = local
    ran = northstar(world["home"], world["setting"], "tool", name, "--args", json.dumps(args), "--json")
    assert ran.returncode == 0, ran.stderr[-3000:]
    remote = json.loads(ran.stdout)
    here = jsonable(get_tool(name).run(con, args, ToolContext(home=home)).model_dump(mode="json"))  # as the CLI
    assert remote["data"], f"{name} returned no rows: the comparison would prove nothing"
    for part in ("summary", "data", "metrics"):
        _same(remote[part], here[part], f"{name}.{part}", rel)
    if name == "predict_clv":  # its scores were written to the server's catalogue table
        listed = json.loads(northstar(world["home"], world["setting"], "tables", "--json").stdout)
        assert {t["table"]: t["rows"] for t in listed}["clv_scores"] == CUSTOMERS


def test_query_data_on_spark_connect_answers_selects_and_refuses_ddl(world):
    def query(sql: str):
        return northstar(world["home"], world["setting"], "tool", "query_data", "--args", json.dumps({"sql": sql}),
                         "--json")

    ok = query("SELECT acquisition_channel, count(*) AS n FROM customers GROUP BY 1 ORDER BY 1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert sum(r["n"] for r in json.loads(ok.stdout)["data"]) == CUSTOMERS
    for sql in ("DROP TABLE customers", "SELECT 1; DROP TABLE orders", "CREATE TABLE x AS SELECT * FROM orders",
                "DELETE FROM customers"):
        refused = query(sql)
        assert refused.returncode != 0, f"{sql!r} was not refused: {refused.stdout[:500]}"
        assert "refused" in (refused.stdout + refused.stderr).lower(), refused.stderr[-1000:]
    listed = json.loads(northstar(world["home"], world["setting"], "tables", "--json").stdout)
    rows = {t["table"]: t["rows"] for t in listed}
    assert rows["customers"] == CUSTOMERS and rows["orders"] > 0 and "x" not in rows


def test_an_unreachable_server_is_a_clear_error_not_a_hang(server, tmp_path):
    port = free_port_in(PORTS)  # the server holds its own port
    started = time.monotonic()
    try:
        done = northstar(tmp_path / "home", f"spark:sc://127.0.0.1:{port}", "init", timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("`northstar init` against a Spark Connect port where nothing listens hung for 90 s")
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert f"127.0.0.1:{port}" in text and "reach" in text.lower(), text[-1500:]
    assert time.monotonic() - started < 60
