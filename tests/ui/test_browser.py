"""The web UI in a real browser: Debian's headless Chromium driven by Playwright for Python.

The page loads, a typed question gets an answer and a chart, and an approver's click on Approve executes the
action (a row in the outbox). A drafted action does not lock the conversation: the analyst keeps chatting while an
approver, in a session of their own, approves it, and the outcome appears in the analyst's thread. A streamed
answer shows before it is complete, a message typed meanwhile is queued visibly, Stop ends the turn and the queued
message runs. Screenshots go to the test's folder and, as the current ones, to docs/img/. Servers listen on ports
8750-8799.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ui.test_gradio_app import ROOT, gradio_server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
DOCS_IMG = ROOT / "docs" / "img"


def ensure_chromium() -> Path:
    """Install Debian's chromium when missing; skip with a notice if apt cannot, but fail under CI=true."""
    if CHROMIUM.exists():
        return CHROMIUM
    problem = "apt-get is not available"
    if shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if proc.returncode != 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=300, env=env)
            proc = subprocess.run(install, capture_output=True, text=True, timeout=600, env=env)
        if CHROMIUM.exists():
            return CHROMIUM
        problem = f"apt-get install chromium failed: {(proc.stderr or proc.stdout)[-500:]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"headless Chromium is required in CI and could not be installed ({problem})")
    pytest.skip(f"NOTICE: browser test skipped, {CHROMIUM} is missing and {problem}")


def outbox_rows(warehouse: Path) -> list[tuple]:
    """The outbox, read without holding the warehouse (the server opens it per request)."""
    import duckdb

    for _ in range(40):
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException:  # the server is writing right now
            time.sleep(0.25)
            continue
        try:
            return con.execute("SELECT action, payload, approved_by FROM outbox").fetchall()
        finally:
            con.close()
    raise AssertionError("could not read the outbox")


def choose_user(page, option: str) -> None:
    page.locator("#ns-user input").click()
    page.get_by_role("option", name=option).click()


def test_browser_ask_chart_and_approve(demo_copy, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.agent.conftest import seed_churn_run

    executable = ensure_chromium()
    seed_churn_run(demo_copy)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    with gradio_server(demo_copy, env={"NORTHSTAR_USER": "vic"}) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), args=ARGS, headless=True)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 980})
            page.set_default_timeout(90_000)
            expect.set_options(timeout=90_000)
            page.goto(url)
            question = page.locator("#ns-question textarea")
            expect(question).to_be_visible()
            expect(page.get_by_text("How did our channels perform last month?").first).to_be_visible()
            page.screenshot(path=shots / "empty.png")

            # a typed question: streamed steps, then the answer, the evidence and the chart
            question.fill("How did our channels perform last month?")
            page.locator("#ns-ask").click()
            expect(page.locator("#ns-chart .vega-embed")).to_be_visible()
            answer = page.locator("#ns-chat").get_by_text(re.compile(r"campaign report.*ROAS \d")).first
            expect(answer).to_be_visible()
            evidence = page.locator("#ns-chat").get_by_text("Evidence · 1 tool call")
            expect(evidence).to_be_visible()
            evidence.click()  # collapsible: the tool call, its arguments and its result summary
            page.locator("#ns-chat").get_by_text("✓ campaign_report").click()
            expect(page.locator("#ns-chat").get_by_text("group_by=channel")).to_be_visible()
            expect(page.locator("#ns-table")).to_contain_text("search")
            expect(page.locator("#ns-badge")).to_contain_text("offline planner")
            time.sleep(1.0)  # let the chart finish its transition
            page.screenshot(path=shots / "chat.png")
            shutil.copy(shots / "chat.png", DOCS_IMG / "chat.png")

            # an analyst drafts an action in a new thread; it waits for an approver
            choose_user(page, "ben (analyst)")
            page.locator("#ns-new").click()
            expect(page.locator("#ns-chat").get_by_text("Evidence · 1 tool call")).to_have_count(0)
            question.fill("Save the high risk churners as an audience called 'Browser Rescue'")
            page.locator("#ns-ask").click()
            expect(page.locator("#ns-chat").get_by_text("Waiting for approval").first).to_be_visible()
            page.get_by_role("tab", name="Approvals").click()
            page.locator("#ns-pending label").filter(has_text="Browser Rescue").first.click()
            expect(page.locator("#ns-card")).to_contain_text("Requested by ben")
            expect(page.locator("#ns-approve")).to_be_disabled()  # ben is an analyst

            # an approver approves
            choose_user(page, "ana (approver)")
            expect(page.locator("#ns-approve")).to_be_enabled()
            time.sleep(0.6)  # let the buttons' transition finish before the screenshot
            page.screenshot(path=shots / "approvals.png")
            shutil.copy(shots / "approvals.png", DOCS_IMG / "approvals.png")
            assert outbox_rows(demo_copy / "warehouse.duckdb") == []
            page.locator("#ns-approve").click()
            expect(page.locator("#ns-decision")).to_contain_text("Approved by ana")
            page.screenshot(path=shots / "approved.png")
        except Exception:
            if page is not None:
                page.screenshot(path=shots / "failure.png")
                print(f"failure screenshot: {shots / 'failure.png'}")
            raise
        finally:
            browser.close()
    rows = outbox_rows(demo_copy / "warehouse.duckdb")
    assert len(rows) == 1, rows
    action, payload, approved_by = rows[0]
    assert action == "create_audience" and "Browser Rescue" in payload and approved_by == "ana", rows


PORTS = iter(range(8751, 8800))


def login(browser, url: str, user: str, password: str):
    """A browser context signed in as `user` (the login form's POST, as the page would send it)."""
    context = browser.new_context(viewport={"width": 1440, "height": 980})
    response = context.request.post(url + "login", form={"username": user, "password": password})
    assert response.ok, response.text()
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.goto(url)
    return page


def ask(page, question: str) -> None:
    box = page.locator("#ns-question textarea")
    box.fill(question)
    box.press("Enter")


@contextmanager
def two_users(demo_copy: Path, tmp_path: Path):
    """A served UI with logins for ben (analyst) and ana (approver) over a warehouse with a churn run: yields
    `sign_in(user)` (a page signed in as that user) and the screenshots folder; on a failure every page signed in
    is screenshotted."""
    from playwright.sync_api import expect, sync_playwright

    from tests.agent.conftest import seed_churn_run

    executable = ensure_chromium()
    seed_churn_run(demo_copy)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    env = {"NORTHSTAR_UI_LOGINS": "ben:pw-ben,ana:pw-ana"}
    with gradio_server(demo_copy, env=env, port=next(PORTS)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), args=ARGS, headless=True)
        pages: dict = {}
        expect.set_options(timeout=120_000)
        try:
            yield (lambda user: pages.setdefault(user, login(browser, url, user, f"pw-{user}"))), shots
        except Exception:
            for name, page in pages.items():
                page.screenshot(path=shots / f"failure-{name}.png")
            print(f"failure screenshots: {shots}")
            raise
        finally:
            browser.close()


def test_browser_keep_chatting_while_another_user_approves(demo_copy, tmp_path):
    from playwright.sync_api import expect

    with two_users(demo_copy, tmp_path) as (sign_in, shots):
        ben = sign_in("ben")
        ask(ben, "Save the high risk churners as an audience called 'Browser Rescue'")
        chat = ben.locator("#ns-chat")
        expect(chat.get_by_text("Waiting for approval").first).to_be_visible()
        # the conversation goes on: a real answer in the same thread, not "waiting for a decision"
        ask(ben, "How did our channels perform last month?")
        expect(chat.get_by_text(re.compile(r"ROAS \d")).first).to_be_visible()
        expect(chat).not_to_contain_text("waiting for a decision")
        assert outbox_rows(demo_copy / "warehouse.duckdb") == []

        ana = sign_in("ana")  # another user, another session
        ana.get_by_role("tab", name="Approvals").click()
        ana.locator("#ns-pending label").filter(has_text="Browser Rescue").first.click()
        expect(ana.locator("#ns-card")).to_contain_text("Requested by **ben**".replace("**", ""))
        expect(ana.locator("#ns-approve")).to_be_enabled()
        time.sleep(0.6)
        ana.screenshot(path=shots / "approvals.png")
        shutil.copy(shots / "approvals.png", DOCS_IMG / "approvals.png")
        ana.locator("#ns-approve").click()
        expect(ana.locator("#ns-decision")).to_contain_text("Approved by ana")

        # the outcome is posted into ben's thread, where ben sees it without asking
        expect(chat.get_by_text(re.compile(r"Approved by ana .*Created audience 'Browser Rescue'"))).to_be_visible()
        time.sleep(0.5)
        ben.screenshot(path=shots / "outcome.png")
        shutil.copy(shots / "outcome.png", DOCS_IMG / "inbox-outcome.png")
    rows = outbox_rows(demo_copy / "warehouse.duckdb")
    assert len(rows) == 1 and "Browser Rescue" in rows[0][1] and rows[0][2] == "ana", rows


def test_browser_streams_queues_and_stops(demo_copy, tmp_path):
    """With a model that streams slowly: the answer shows before it is complete, a second message is queued
    visibly, Stop ends the first turn at once, and the queued message then runs in the same thread."""
    from playwright.sync_api import expect, sync_playwright

    from tests.agent.realistic_openai import RealisticOpenAI, answer, call, calls

    executable = ensure_chromium()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    slow = " ".join(["Spend in September was {{-1.metrics.spend|k}}."] * 60)
    with RealisticOpenAI() as model:
        model.enqueue(calls(call("campaign_report", {"start": "2026-09-01", "end": "2026-09-30"})),
                      answer(slow, delay=0.15),
                      calls(call("campaign_report", {"start": "2026-08-01", "end": "2026-08-31"})),
                      answer("Spend in August was {{-1.metrics.spend|k}}."))
        env = {"NORTHSTAR_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.url,
               "NORTHSTAR_MODEL": "realistic-1", "NORTHSTAR_AS_OF": "2026-09-30", "NORTHSTAR_USER": "ana"}
        with gradio_server(demo_copy, env=env, port=next(PORTS)) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(executable), args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 980})
            page.set_default_timeout(90_000)
            try:
                expect.set_options(timeout=90_000)
                page.goto(url)
                ask(page, "How did September go?")
                chat, stop = page.locator("#ns-chat"), page.locator("#ns-stop")
                expect(chat.get_by_text("Spend in September was").first).to_be_visible()
                first_text = time.monotonic()
                expect(stop).to_be_visible()  # still answering: the text came before the answer was complete
                ask(page, "And in August?")
                expect(page.locator("#ns-queued")).to_contain_text("And in August?")
                page.screenshot(path=shots / "streaming.png")
                shutil.copy(shots / "streaming.png", DOCS_IMG / "streaming.png")
                stop.click()
                expect(chat.get_by_text("Stopped").first).to_be_visible()
                assert time.monotonic() - first_text < 8, "Stop ends the turn long before the 9 s answer would"
                expect(chat.get_by_text(re.compile(r"Spend in August was \S+"))).to_be_visible()
                expect(page.locator("#ns-queued")).not_to_contain_text("August")
                expect(stop).to_be_hidden()
                page.screenshot(path=shots / "stopped.png")
            except Exception:
                page.screenshot(path=shots / "failure.png")
                print(f"failure screenshot: {shots / 'failure.png'}")
                raise
            finally:
                browser.close()
        model.check()


def test_browser_a_changed_request_replaces_the_first_in_the_approvals_list(demo_copy, tmp_path):
    """ben drafts an audience, then renames it in the next message: ana sees one request, the renamed one."""
    from playwright.sync_api import expect

    with two_users(demo_copy, tmp_path) as (sign_in, shots):
        ben = sign_in("ben")
        ask(ben, "Save the high risk churners as an audience called 'Changed Plans'")
        chat = ben.locator("#ns-chat")
        expect(chat.get_by_text("Waiting for approval").first).to_be_visible()
        ask(ben, "actually call it 'Changed Plans Two' instead of 'Changed Plans'")
        expect(chat.get_by_text(re.compile(r"Changed Plans Two")).first).to_be_visible()
        ana = sign_in("ana")
        ana.get_by_role("tab", name="Approvals").click()
        pending = ana.locator("#ns-pending label")
        expect(pending.filter(has_text="Changed Plans Two")).to_have_count(1)
        expect(pending.filter(has_text=re.compile(r"'Changed Plans'"))).to_have_count(0)
        time.sleep(0.6)
        ana.screenshot(path=shots / "approvals-changed.png")
