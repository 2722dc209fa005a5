"""`northstar serve` as a team meets it: the real server (uvicorn, a subprocess, or a thread for Slack) on
127.0.0.1 ports 8700–8749 over a copy of the demo warehouse; the JSON API with tokens, answers streamed as
server-sent events, approvals with role checks, the CLI as its client, Slack's signed events, a stopped turn, and
20 concurrent sessions plus two CLI loops with no error."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agent.context import Context
from tests.conftest import ROOT, run_cli
from tests.ui.test_gradio_app import free_port_in
from ui.server.sse import parse

ROLES = "ana:approver,ben:analyst,vic:viewer"
TOKENS = {"ana": "ana-tok-" + "a" * 24, "ben": "ben-tok-" + "b" * 24, "vic": "vic-tok-" + "v" * 24}
FAST = ["How did our channels perform last month?", "Did the spring email test work?",
        "What are customers complaining about in reviews?", "Which campaigns had the best ROAS last month?",
        "How should we split next month's budget across channels?", "Any anomalies in revenue recently?"]


def port_in_range() -> int:
    return free_port_in(range(8700, 8750))


def auth(user: str) -> dict:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def server_env(**extra) -> dict:
    return {**os.environ, "NORTHSTAR_ROLES": ROLES, "NORTHSTAR_API_TOKENS": ",".join(f"{u}:{t}" for u, t in
                                                                                      TOKENS.items()),
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost",
            "NORTHSTAR_LOG_LEVEL": "warning", **extra}


class Server:
    def __init__(self, url: str, home: Path, proc: subprocess.Popen, log: Path):
        self.url, self.home, self.proc, self.log = url, home, proc, log

    def client(self, user: str, timeout: float = 300) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=auth(user), timeout=timeout, trust_env=False)

    def cli_env(self, user: str = "ana") -> dict:
        return {"NORTHSTAR_SERVER": self.url, "NORTHSTAR_API_TOKEN": TOKENS[user]}


@pytest.fixture(scope="module")
def server(demo_home, tmp_path_factory):
    """`northstar serve` in a subprocess over a private copy of the demo home; stopped with SIGTERM at the end."""
    home = tmp_path_factory.mktemp("served") / "home"
    shutil.copytree(demo_home, home)
    port = port_in_range()
    log = home.parent / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "northstar"), "--home", str(home), "serve",
                                 "--port", str(port)], cwd=ROOT, env=server_env(), stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 150
    while True:
        if proc.poll() is not None:
            pytest.fail(f"northstar serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"northstar serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    info = json.loads((home / "server.json").read_text())
    assert info["url"] == url and info["pid"] == proc.pid and (home / "server.json").stat().st_mode & 0o077 == 0
    yield Server(url, home, proc, log)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("northstar serve did not stop on SIGTERM within 60 s")
    assert not (home / "server.json").exists(), "the server file must go when the server stops"
    text = log.read_text()
    assert "Could not set lock" not in text and "Traceback" not in text, text[-3000:]


def ask_stream(client: httpx.Client, question: str, thread_id: str | None = None, on_event=None) -> list[dict]:
    events = []
    with client.stream("POST", "/api/v1/ask/stream", json={"question": question, "thread_id": thread_id}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for event in parse(r.iter_lines()):
            events.append(event)
            if on_event:
                on_event(event)
    return events


def test_api_needs_a_known_token_and_acts_only_as_its_user(server):
    bare = httpx.get(server.url + "/api/v1/threads", trust_env=False)
    assert bare.status_code == 401 and "No API token" in bare.json()["detail"]
    assert bare.headers["www-authenticate"] == "Bearer"
    wrong = httpx.get(server.url + "/api/v1/threads", headers={"Authorization": "Bearer nope-" + "x" * 30},
                      trust_env=False)
    assert wrong.status_code == 401 and "not known" in wrong.json()["detail"]
    basic = httpx.get(server.url + "/api/v1/threads", headers={"Authorization": "Basic YW5hOnB3"}, trust_env=False)
    assert basic.status_code == 401 and "Bearer" in basic.json()["detail"]
    with server.client("ben") as ben:
        assert ben.get("/api/v1/whoami").json() == {"user": "ben", "role": "analyst", "may_act_as": False}
        other = ben.get("/api/v1/approvals", params={"user": "ana"})
        assert other.status_code == 403 and "cannot act as ana" in other.json()["detail"]
    docs = httpx.get(server.url + "/openapi.json", trust_env=False).json()
    assert {"/api/v1/ask", "/api/v1/ask/stream", "/api/v1/approvals/{request_id}", "/api/v1/load"} <= set(docs["paths"])
    assert httpx.get(server.url + "/docs", trust_env=False).status_code == 200
    assert "Northstar" in httpx.get(server.url + "/", trust_env=False).text  # the web UI at /


def test_the_mounted_web_ui_answers_with_the_servers_agent(server):
    from tests.ui.test_gradio_app import client_for

    client = client_for(server.url + "/")
    assert "/ask" in json.dumps(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    with server.client("ana") as ana:  # a web turn lands in the server's one checkpointer, seen by the API
        before = {t["thread_id"] for t in ana.get("/api/v1/threads", params={"limit": 500}).json()}
        out = client.predict("How did our channels perform last month?", [], "ana", api_name="/ask")
        assert "ROAS" in json.dumps(out, default=str)
        after = {t["thread_id"] for t in ana.get("/api/v1/threads", params={"limit": 500}).json()}
        assert len(after - before) == 1


def test_streamed_answer_matches_the_in_process_answer(server, demo_copy):
    from agent.runner import Northstar

    question = "How did our channels perform last month?"
    with server.client("ana") as ana:
        events = ask_stream(ana, question)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "accepted" and kinds[-1] == "result" and "error" not in kinds
    assert kinds.index("tool_start") < kinds.index("tool_end") < kinds.index("result")
    assert next(e for e in events if e["event"] == "answer")["text"] == events[-1]["result"]["answer"]
    served = events[-1]["result"]
    local = Northstar(Context(home=demo_copy))
    try:
        here = local.ask(question, user="ana")
    finally:
        local.close()
    assert served["answer"] == here["answer"] and "ROAS" in served["answer"]
    assert [(c["name"], c["args"]) for c in served["tool_calls"]] == [(c["name"], c["args"]) for c in
                                                                      here["tool_calls"]]
    with server.client("ana") as ana:  # the plain variant: the same answer, JSON in one piece
        plain = ana.post("/api/v1/ask", json={"question": question}).json()
        assert plain["answer"] == served["answer"]
        assert ana.get(f"/api/v1/threads/{served['thread_id']}").json()["history"][0]["content"] == question
        odd = ask_stream(ana, "Wie lief «search» 📈 last month? ünïcödé\u200b", thread_id="t-ünï code")
        assert odd[-1]["event"] == "result" and odd[-1]["result"]["thread_id"] == "t-ünï code"
        assert ana.get("/api/v1/threads/t-ünï code").json()["history"][0]["content"].startswith("Wie lief «search» 📈")
    with server.client("ben") as ben:  # threads are private
        assert ben.get(f"/api/v1/threads/{served['thread_id']}").status_code == 403
        assert ben.get("/api/v1/threads/t-nosuchthing").status_code == 404


def test_approvals_through_the_api_check_roles(server):
    with server.client("ben") as ben, server.client("ana") as ana, server.client("vic") as vic:
        drafted = ben.post("/api/v1/ask", json={
            "question": "Create an audience called 'Server Winback' from the high-risk churners"}).json()
        draft = drafted["pending_approval"]
        assert draft["action"] == "create_audience", drafted["answer"]
        tid, rid = drafted["thread_id"], draft["id"]
        # the conversation goes on while the draft waits in the inbox
        more = ben.post("/api/v1/ask", json={"question": "How did our channels perform last month?",
                                             "thread_id": tid}).json()
        assert "ROAS" in more["answer"] and more["thread_id"] == tid
        assert rid in {row["id"] for row in ben.get("/api/v1/approvals").json()}
        assert rid not in {row["id"] for row in vic.get("/api/v1/approvals").json()}
        listed = {row["id"]: row for row in ana.get("/api/v1/approvals").json()}
        assert listed[rid]["action_request"]["action"] == "create_audience"  # LangGraph's HITL shape
        refused = ben.post(f"/api/v1/approvals/{rid}", json={"decision": "approve"})
        assert refused.status_code == 403 and "analyst" in refused.json()["detail"]
        assert vic.post(f"/api/v1/approvals/{rid}", json={"decision": "approve"}).status_code == 403
        assert ana.post(f"/api/v1/approvals/{rid}", json={"decision": "maybe"}).status_code == 422
        done = ana.post(f"/api/v1/approvals/{rid}", json={"decision": "approve"})
        assert done.status_code == 200, done.text
        assert "Server Winback" in done.json()["outcome"]
        assert rid not in {row["id"] for row in ana.get("/api/v1/approvals").json()}
        again = ana.post(f"/api/v1/approvals/{rid}", json={"decision": "approve"})
        assert again.status_code == 409 and "Nothing is waiting" in again.json()["detail"]
        history = ben.get(f"/api/v1/threads/{tid}").json()["history"]  # the outcome is posted in ben's thread
        assert "Server Winback" in history[-1]["content"]


def test_cli_is_a_client_of_the_running_server(server, demo_copy, tmp_path):
    question = "Which campaigns had the best ROAS last month?"
    out = json.loads(run_cli("ask", question, "--json", home=tmp_path / "elsewhere", env=server.cli_env(),
                             check=True).stdout)
    assert set(out) >= {"thread_id", "provider", "answer", "tool_calls", "pending_approval", "blocked", "grounded",
                        "fallback"}
    with server.client("ana") as ana:  # the server answered it, as ana
        assert out["thread_id"] in {t["thread_id"] for t in ana.get("/api/v1/threads").json()}
    # found from the home's server.json (its own token: the local user); in-process the file would be locked
    rows = json.loads(run_cli("approvals", "--json", home=server.home, check=True).stdout)
    assert isinstance(rows, list)
    as_ben = json.loads(run_cli("ask", question, "--json", home=server.home, env={"NORTHSTAR_USER": "ben"},
                                check=True).stdout)  # the home's token acts as NORTHSTAR_USER, like in-process
    with server.client("ben") as ben:
        assert as_ben["thread_id"] in {t["thread_id"] for t in ben.get("/api/v1/threads").json()}
    args = '{"start": "2026-08-01", "end": "2026-08-31"}'
    served = run_cli("tool", "campaign_report", "--args", args, "--json", home=server.home, check=True).stdout
    local = run_cli("tool", "campaign_report", "--args", args, "--json", home=demo_copy, check=True).stdout
    assert served == local  # the same output in both modes
    bad = run_cli("tool", "campaign_report", "--args", "{nope", home=server.home)
    assert bad.returncode == 2 and "--args is not valid JSON" in bad.stderr
    csv = tmp_path / "goals.csv"
    csv.write_text("channel,goal\nsearch,1200\nemail,300\nsöcial,5\n", encoding="utf-8")
    loaded = json.loads(run_cli("load", "channel_goals", str(csv), "--json", home=server.home, check=True).stdout)
    assert loaded["rows_after"] == 3 and loaded["file"] == str(csv)
    viewer = run_cli("load", "channel_goals", str(csv), home=tmp_path / "x", env=server.cli_env("vic"))
    assert viewer.returncode == 3 and "viewer" in viewer.stderr
    tables = json.loads(run_cli("tables", "--json", home=server.home, check=True).stdout)
    assert {"table": "channel_goals", "kind": "user", "rows": 3} in tables
    posing = run_cli("ask", question, "--user", "ana", home=tmp_path / "x", env=server.cli_env("ben"))
    assert posing.returncode == 3 and "cannot act as ana" in posing.stderr
    wrong = run_cli("approvals", home=tmp_path / "x", env={**server.cli_env(), "NORTHSTAR_API_TOKEN": "x" * 30})
    assert wrong.returncode == 3 and "not known to the server" in wrong.stderr
    chat = run_cli("chat", home=tmp_path / "x", env=server.cli_env("ben"),
                   input="How did our channels perform last month?\nAnd which campaigns had the best ROAS?\n\n")
    assert chat.returncode == 0 and f"server {server.url}" in chat.stdout and chat.stdout.count("ROAS") >= 2
    gone = run_cli("approvals", home=tmp_path / "x", env={"NORTHSTAR_SERVER": f"http://127.0.0.1:{port_in_range()}"})
    assert gone.returncode == 1 and "is not answering" in gone.stderr and "northstar serve" in gone.stderr


def test_serve_refuses_a_second_server_and_bad_tokens(server, tmp_path):
    second = run_cli("serve", "--port", str(port_in_range()), home=server.home)
    assert second.returncode == 1 and "already runs" in second.stderr and server.url in second.stderr
    weak = run_cli("serve", "--port", str(port_in_range()), home=tmp_path / "h", env={"NORTHSTAR_API_TOKENS": "ana:pw"})
    assert weak.returncode == 2 and "shorter than 16" in weak.stderr and not (tmp_path / "h" / "server.json").exists()
    with server.client("ana") as ana:
        huge = ana.post("/api/v1/ask", json={"question": "x" * 9000})
        assert huge.status_code == 422 and "8000" in huge.text


def test_a_stale_server_file_is_ignored(demo_copy):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (demo_copy / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:8749", "pid": int(dead.stdout),
                                                       "host": socket.gethostname(), "token": "x"}))
    out = json.loads(run_cli("ask", "How did our channels perform last month?", "--json", home=demo_copy,
                             check=True).stdout)
    assert "ROAS" in out["answer"]  # answered in-process


def test_a_stopped_turn_leaves_its_thread_answering(server):
    seen: dict = {}
    with server.client("ana") as ana:
        def stop_at_first_tool(event):  # the stop arrives while score_churn runs: the turn ends mid-graph
            seen.setdefault("thread", event.get("thread_id"))
            if event["event"] == "tool_start" and "stopped" not in seen:
                seen["stopped"] = ana.post(f"/api/v1/threads/{seen['thread']}/cancel").json()["cancelled"]

        first = ask_stream(ana, "Which customers are likely to churn?", on_event=stop_at_first_tool)
        assert seen["stopped"] is True
        assert first[-1]["event"] == "result" and first[-1]["result"]["stopped"] is True, first[-1]
        assert "Stopped" in first[-1]["result"]["answer"]
        second = ask_stream(ana, "How did our channels perform last month?", thread_id=seen["thread"])
        assert second[-1]["event"] == "result", second[-1]
        assert "ROAS" in second[-1]["result"]["answer"] and second[-1]["result"]["thread_id"] == seen["thread"]


@contextmanager
def inproc_server(home: Path, environ: dict, roles: dict, slack_client=None):
    """The server's app in a uvicorn thread of this process (for a fake Slack client or a patched agent)."""
    import uvicorn

    from ui.server.app import create_app

    app = create_app(Context(home=home, roles=roles), web=False, environ=environ, slack_client=slack_client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port_in_range(), log_level="warning"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        runner.join(timeout=30)


def test_a_turn_that_crashes_mid_graph_says_so_and_its_thread_answers_next(demo_copy, monkeypatch):
    import agent.nodes

    real, crashes = agent.nodes.sanitize_answer, []

    def crash_once(*args, **kwargs):  # the last step of the turn fails once, after the tools ran
        if not crashes:
            crashes.append(1)
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(agent.nodes, "sanitize_answer", crash_once)
    env = {"NORTHSTAR_API_TOKENS": f"ana:{TOKENS['ana']}"}
    with inproc_server(demo_copy, env, {"local": "approver", "ana": "approver"}) as url, \
            httpx.Client(base_url=url, headers=auth("ana"), timeout=300, trust_env=False) as ana:
        failed = ask_stream(ana, "How did our channels perform last month?", thread_id="t-crashy")
        assert failed[-1]["event"] == "error" and failed[-1]["status"] == 500, failed[-1]
        assert "RuntimeError: disk on fire" in failed[-1]["message"] and "ready for the next" in failed[-1]["message"]
        plain = ana.post("/api/v1/ask", json={"question": "Which campaigns had the best ROAS last month?",
                                              "thread_id": "t-crashy"})
        assert plain.status_code == 200 and "ROAS" in plain.json()["answer"], plain.text
        history = ana.get("/api/v1/threads/t-crashy").json()["history"]
        assert any("failed" in m["content"] for m in history if m["role"] == "assistant")


def test_slack_events_are_served_on_the_same_port_and_checked(demo_copy):
    from slack_sdk import WebClient

    from tests.ui.test_slack import SECRET, FakeSlack, mention, post

    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SECRET,
           "NORTHSTAR_API_TOKENS": f"ana:{TOKENS['ana']}"}
    with FakeSlack() as fake, inproc_server(demo_copy, env, {"local": "approver", "UANA": "approver"},
                                            WebClient(token="xoxb-test", base_url=fake.url + "/api/")) as url:
        forged = post(url + "/slack/events", json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}),
                      "application/json", secret="not-the-secret")
        assert forged.status_code == 401
        ok = mention(url + "/slack/events", "UANA", "How did our channels perform last month?", "1750000000.000100")
        assert ok.status_code == 200
        reply = fake.wait("chat.update", lambda c: "ROAS" in json.dumps(c.get("blocks")))
        assert reply["channel"] == "C0MARKETING"
        with httpx.Client(base_url=url, headers=auth("ana"), trust_env=False) as ana:  # the API beside it
            threads = ana.get("/api/v1/threads").json()
            assert ana.get("/api/v1/whoami").json()["user"] == "ana" and isinstance(threads, list)
    assert not (demo_copy / "server.json").exists()
    import duckdb  # the file is free again once the server stopped (one instance, released at the end)

    duckdb.connect(str(demo_copy / "warehouse.duckdb")).close()


def test_twenty_sessions_and_two_cli_loops_see_no_error(server, tmp_path):
    """Bounded load: 20 API sessions (two questions per thread) and 2 CLI loops through the server for 30 s."""
    stop_at = time.monotonic() + 30
    errors: list[str] = []
    turns: dict[str, int] = {}
    users = ["ana", "ben", "vic"]

    def session(i: int) -> None:
        rng = random.Random(i)
        with server.client(users[i % 3], timeout=600) as client:
            while time.monotonic() < stop_at:
                thread = None
                for question in rng.sample(FAST, 2):
                    try:
                        events = ask_stream(client, question, thread)
                    except Exception as exc:  # noqa: BLE001 - every failure is counted
                        errors.append(f"session {i}: {type(exc).__name__}: {exc}")
                        return
                    last = events[-1]
                    if last["event"] != "result" or not last["result"].get("answer"):
                        errors.append(f"session {i}: {last}")
                        return
                    thread = last["result"]["thread_id"]
                    turns[f"s{i}"] = turns.get(f"s{i}", 0) + 1

    def cli_loop(i: int) -> None:
        while time.monotonic() < stop_at:
            proc = run_cli("ask", FAST[i], "--json", home=tmp_path / f"cli{i}", env=server.cli_env("ben"))
            if proc.returncode != 0 or not json.loads(proc.stdout or "{}").get("answer"):
                errors.append(f"cli {i}: exit {proc.returncode}: {proc.stderr[-500:]}")
                return
            turns[f"c{i}"] = turns.get(f"c{i}", 0) + 1

    workers = [threading.Thread(target=session, args=(i,)) for i in range(20)]
    workers += [threading.Thread(target=cli_loop, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=900)
    assert not any(w.is_alive() for w in workers), "a session hung"
    assert errors == []
    assert len([k for k in turns if k.startswith("s")]) == 20 and turns.get("c0") and turns.get("c1"), turns


# ---- one DuckDB instance per process (tools.warehouse.connect), what the server stands on --------------------

def _file_is_free(path: Path) -> bool:
    """Whether another process can open the file for writing now."""
    code = f"import duckdb; duckdb.connect({str(path)!r}).close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0


def test_connections_share_one_instance_and_release_the_file(tmp_path):
    import gc

    from tools.warehouse import connect

    path = tmp_path / "w.duckdb"
    a = connect(path)
    b = connect(path, read_only=True)  # DuckDB alone refuses a second configuration of an open file
    a.execute("CREATE TABLE t (k INTEGER, n INTEGER)")
    a.execute("INSERT INTO t VALUES (1, 0)")
    assert b.execute("SELECT n FROM t").fetchone() == (0,)
    with connect(path) as c:  # the context manager gives its share back
        c.register("frame", __import__("pandas").DataFrame({"x": [1, 2]}))
        assert c.execute("SELECT sum(x) FROM frame").fetchone() == (3,)
    a.close()
    a.close()  # twice is harmless
    assert not _file_is_free(path)  # b still holds it
    del b
    gc.collect()  # a forgotten connection is released when collected
    assert _file_is_free(path)


def test_a_writer_waits_for_read_only_users_then_reopens(tmp_path):
    from tools.warehouse import connect

    path = tmp_path / "w.duckdb"
    connect(path).close()
    reader = connect(path, read_only=True)
    assert reader.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
                          ).fetchone() == (True,)
    got = {}
    writer = threading.Thread(target=lambda: got.setdefault("con", connect(path)))
    writer.start()
    time.sleep(0.5)
    assert "con" not in got  # waiting for the reader
    reader.close()
    writer.join(timeout=30)
    con = got["con"]
    con.execute("CREATE TABLE ok AS SELECT 1 AS x")
    con.close()


def test_writes_from_many_threads_go_through_one_writer_path(tmp_path):
    """Eight threads increment one row in explicit transactions: without the writer path DuckDB would refuse
    most of them (a write-write conflict); with it, every increment lands."""
    from tools.warehouse import connect, transaction

    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        con.execute("CREATE TABLE counter (k INTEGER PRIMARY KEY, n INTEGER)")
        con.execute("INSERT INTO counter VALUES (1, 0)")
    errors = []

    def bump() -> None:
        con = connect(path)
        try:
            for _ in range(25):
                with transaction(con):
                    n = con.execute("SELECT n FROM counter WHERE k = 1").fetchone()[0]
                    con.execute("UPDATE counter SET n = ? WHERE k = 1", [n + 1])
                con.execute("INSERT INTO counter VALUES (?, 0)", [random.randint(10, 10**9)])  # auto-commit
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            con.close()

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with connect(path, read_only=True) as con:
        assert con.execute("SELECT n FROM counter WHERE k = 1").fetchone() == (200,)
        assert con.execute("SELECT count(*) FROM counter").fetchone() == (201,)
