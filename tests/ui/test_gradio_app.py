"""The web UI as its users reach it: the real server (ui.gradio_app.launch) in a subprocess on a free
127.0.0.1 port, driven through gradio_client. `gradio_server` is shared with tests/ui/test_browser.py."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agent.context import Context

ROOT = Path(__file__).resolve().parents[2]
ROLES = "ana:approver,ben:analyst,vic:viewer"
SERVER = """
import sys
from pathlib import Path
from agent.context import Context
from ui.gradio_app import launch
launch(Context.from_env(home=Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_in(ports: range) -> int:
    """A free port in a test's own range (tests that run beside others keep out of each other's ports)."""
    import random

    for port in random.sample(list(ports), len(ports)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {ports.start}–{ports.stop - 1}")


@contextlib.contextmanager
def gradio_server(home: Path, env: dict | None = None, start_timeout: float = 150.0, port: int | None = None):
    """Start `launch(ctx, host, port)` for `home`; yield its URL; stop it (and only it) afterwards."""
    port = port or free_port()
    log = home / f"ui-{port}.log"
    full_env = {**os.environ, "NORTHSTAR_ROLES": ROLES, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                "NO_PROXY": "127.0.0.1,localhost", **(env or {})}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(home), str(port)], cwd=ROOT, env=full_env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the UI server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "gradio_api/info", timeout=2).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the UI server did not start within {start_timeout:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def client_for(url: str, **kw):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, **kw)


def text_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def value_of(output):
    """An output's value, whether it came back plain or as a gr.update(...)."""
    if isinstance(output, dict) and output.get("__type__") == "update":
        return output.get("value")
    return output


def answers(chat: list[dict]) -> list[str]:
    """The visible assistant answers (evidence entries carry a title in their metadata)."""
    return [text_of(m) for m in chat if m["role"] == "assistant" and not (m.get("metadata") or {}).get("title")]


def test_ui_through_gradio_client(demo_copy, tmp_path):
    """Ask (answer with numbers, evidence, chart, table, CSV), load data, decide by role, restart with login."""
    from gradio_client import handle_file

    from tests.agent.conftest import seed_churn_run

    seed_churn_run(demo_copy)
    with gradio_server(demo_copy) as url:
        client = client_for(url)
        out = client.predict("How did our channels perform last month?", [], "ana", api_name="/ask")
        chat, _msg, badge, _pick, metrics, chart, table, csv, threads, _pending, queued = map(value_of, out)
        assert not queued, "nothing was queued"
        answer = answers(chat)[-1]
        assert re.search(r"\d[\d,.]*", answer) and "ROAS" in answer, answer
        evidence = [m for m in chat if "campaign_report" in ((m.get("metadata") or {}).get("title") or "")]
        assert evidence and "Arguments" in text_of(evidence[0]), "each tool call is shown with its arguments"
        assert "offline planner" in badge
        assert "ns-tile" in metrics
        assert chart and chart["type"] == "altair"
        assert "channel" in table["headers"] and len(table["data"]) >= 3
        assert csv["orig_name"].endswith(".csv")
        assert httpx.get(csv["url"], timeout=10).text.startswith("channel,spend"), "the rows download as CSV"
        thread_id = threads
        assert thread_id and thread_id.startswith("t-")

        # the data panel: a file that does not fit is refused with the loader's message, a good one loads
        bad = tmp_path / "orders.csv"
        bad.write_text("order_id,customer_id\n1,not-a-number\n")
        refused = client.predict(handle_file(str(bad)), "orders", "append", "ana", api_name="/load")
        assert "Nothing was loaded" in refused, refused
        good = tmp_path / "store_visits.csv"
        good.write_text("store,visits\nnorth,12\nsouth,30\n")
        loaded = client.predict(handle_file(str(good)), "store_visits", "replace", "ana", api_name="/load")
        assert "Loaded 2 rows into `store_visits`" in loaded, loaded
        viewer = client.predict(handle_file(str(good)), "store_visits", "append", "vic", api_name="/load")
        assert "viewer" in viewer and "Loaded" not in viewer

        # an action waits for an approver: a viewer is refused, an approver's edit runs it
        out = client.predict("Save the high risk churners as an audience called 'UI Winback'", [], "ben",
                             api_name="/ask")
        chat, pending = out[0], out[-2]
        assert any("Waiting for approval" in a for a in answers(chat))
        action_thread = pending["choices"][0][1]  # the draft's request id, as listed in the approvals panel
        assert action_thread.startswith("a-")
        refused = client.predict(action_thread, "", [], "vic", api_name="/approve")
        assert "vic is a viewer" in refused[0]
        done = client.predict(action_thread, '{"name": "UI Winback edited"}', [], "ana", api_name="/edit")
        assert "Approved with edits by ana" in done[0] and "UI Winback edited" in done[0], done[0]

    # a restart (with the login page on this time) finds the thread again
    with gradio_server(demo_copy, env={"NORTHSTAR_UI_LOGINS": "ana:open-sesame"}) as url:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client's error type differs between versions
            client_for(url).predict(thread_id, api_name="/open_thread")
        client = client_for(url, auth=("ana", "open-sesame"))
        listed = client.predict(api_name="/new_thread")[-3]  # what a page load shows: the user's own threads
        assert [value for _label, value in listed["choices"]] == [thread_id], "ben's and the rest are not listed"
        chat = client.predict(thread_id, api_name="/open_thread")[0]
        assert text_of(chat[0]) == "How did our channels perform last month?"
        assert any("ROAS" in a for a in answers(chat))


def test_render_helpers_format_like_a_marketer():
    from ui import gradio_render as R
    from ui.present import fmt, key_metrics, styled_spec

    assert fmt(43803.63) == "43,804" and fmt(2.0223) == "2.02" and fmt(0.01305, "ctr") == "1.31 %"
    metrics = {"start": "2026-08-01", "spend": 10.0, "roas": 2.5, "r2": 0.9, "previous": {}}
    assert key_metrics({"metrics": metrics, "key_metrics": ["spend", "roas"]}) == [("Spend", "10"), ("ROAS", "2.50")]
    assert key_metrics({"metrics": metrics}) == []  # only what the tool declared, never guessed from names
    spec = styled_spec({"mark": "bar", "width": "container", "config": {"bar": {"color": "red"}}})
    assert spec["width"] == 400 and spec["config"]["bar"] == {"color": "red"}
    out = {"answer": "I've drafted **x**. It needs an approver's decision: `northstar approve t-1`.",
           "pending_approval": {"action": "create_audience", "risk": "low", "description": "d", "preview": {}},
           "tool_calls": []}
    text = R.answer_messages(out, "g")[0]["content"]
    assert "northstar approve" not in text and "Approvals" in text


def test_ask_streams_each_step_before_the_answer(demo_copy):
    """The chat handler yields the running tool, then the finished tool with its time, then the answer."""
    import gradio as gr

    from ui.gradio_app import build_app

    app = build_app(Context(home=demo_copy), logins={})
    assert isinstance(app, gr.Blocks)
    try:
        frames = [out[0] for out in app.northstar.ask("How did our channels perform last month?", [], None,
                                                      "local", None)]
    finally:
        app.northstar.ns.close()
    titles = [[(m.get("metadata") or {}).get("title", "") for m in chat] for chat in frames]
    running = next(i for i, t in enumerate(titles) if "◷ campaign_report" in t)
    finished = next(i for i, t in enumerate(titles) if "✓ campaign_report" in t)
    assert running < finished < len(frames) - 1
    step = next(m for m in frames[finished] if (m.get("metadata") or {}).get("title") == "✓ campaign_report")
    assert step["metadata"]["log"].endswith(("ms", " s")), "each finished step shows its time"
    assert "ROAS" in frames[-1][-1]["content"], "the answer comes last"


def test_csv_download_carries_no_formulas(tmp_path, monkeypatch):
    import csv

    from ui import gradio_render as R

    monkeypatch.setattr(R, "CSV_DIR", tmp_path)
    call = {"name": "query_data", "result": {"data": [{"name": "=HYPERLINK(\"http://x\")", "n": 1},
                                                      {"name": "+cmd", "n": 2}, {"name": "plain", "n": 3}]}}
    with open(R.csv_of(call, "t-1"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'+cmd", "plain"]
