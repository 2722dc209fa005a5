"""The approvals panel's decision buttons follow the selection: off until a pending request is selected (with a
hint saying so), on while it is, off again once it is decided here or elsewhere. The handler still refuses a
decision without a request (the API and a stale page reach it). The browser test reuses test_browser's
two_users(); its screenshots (1440 and 420 px wide) go to the test's folder, never to docs/img/."""

from __future__ import annotations

import re
import time

from agent.context import Context
from tests.ui.test_browser import ask, two_users
from tests.ui.test_gradio_app import ROLES

HINT = "Select a request to approve or reject"
BUTTONS = ("#ns-approve", "#ns-edit", "#ns-reject")


def test_decision_buttons_and_the_refusal_without_a_request(demo_copy):
    """The handlers behind the panel: who may press what, and decide() without a request changes nothing."""
    from ui.gradio_handlers import Handlers

    roles = dict(item.split(":") for item in ROLES.split(","))
    h = Handlers(Context(home=demo_copy, roles=roles))
    try:
        states = {(user, rid): h.decision_buttons(user, rid) for user in ("ana", "ben") for rid in (None, "a-1")}
        for (user, rid), (approve, edit, reject, hint) in states.items():
            on = user == "ana" and rid is not None
            assert approve["interactive"] is edit["interactive"] is reject["interactive"] is on, (user, rid)
            assert (HINT in hint) is (user == "ana" and rid is None), (user, rid, hint)
        assert "ben is an analyst: only an approver can decide" in states[("ben", "a-1")][3]
        for rid in (None, ""):
            refused = h.approve(rid, "", [], None, "ana", None)
            assert refused[0].startswith("✗ No request is selected"), refused[0]
            assert all(isinstance(o, dict) and o.get("__type__") == "update" and len(o) == 1 for o in refused[1:])
        *_, card, args = h.selection_changed("ana", "a-1")  # a click: show_pending fills the preview
        assert card == args == {"__type__": "update"}
        *_, card, args = h.selection_changed("ana", None)  # none left: the last one's preview goes too
        assert "Select a request" in card and args == ""
        role_chip, *buttons = h.whoami("ana", None)
        assert "ana" in role_chip and buttons[0]["interactive"] is False and HINT in buttons[3]
    finally:
        h.ns.close()


def test_browser_decision_buttons_follow_the_selection(demo_copy, tmp_path):
    from playwright.sync_api import expect

    def buttons(page, enabled: bool) -> None:
        for sel in BUTTONS:
            (expect(page.locator(sel)).to_be_enabled if enabled else expect(page.locator(sel)).to_be_disabled)()
        hint = expect(page.locator("#ns-who"))
        hint.not_to_contain_text(HINT) if enabled else hint.to_contain_text(HINT)

    def shots_at_both_widths(page, name: str) -> None:
        time.sleep(0.6)  # the buttons' transition
        page.screenshot(path=shots / f"{name}-1440.png", full_page=True)
        page.set_viewport_size({"width": 420, "height": 980})
        time.sleep(0.6)
        page.screenshot(path=shots / f"{name}-420.png", full_page=True)
        page.set_viewport_size({"width": 1440, "height": 980})

    with two_users(demo_copy, tmp_path) as (sign_in, shots):
        ben = sign_in("ben")
        chat = ben.locator("#ns-chat")
        for name in ("Buttons One", "Buttons Two"):  # one thread each: a second draft in a thread replaces the first
            ben.locator("#ns-new").click()
            expect(chat.get_by_text("Waiting for approval")).to_have_count(0)
            ask(ben, f"Save the high risk churners as an audience called '{name}'")
            expect(chat.get_by_text("Waiting for approval").first).to_be_visible()

        ana = sign_in("ana")
        ana.get_by_role("tab", name="Approvals").click()
        pending = ana.locator("#ns-pending label")
        expect(pending.filter(has_text="Buttons Two")).to_have_count(1)
        buttons(ana, enabled=False)  # nothing selected yet
        shots_at_both_widths(ana, "nothing-selected")

        pending.filter(has_text="Buttons One").click()
        expect(ana.locator("#ns-card")).to_contain_text("Buttons One")
        buttons(ana, enabled=True)
        time.sleep(7)  # two periodic refreshes: they keep the selection, and the buttons with it
        expect(ana.locator("#ns-pending input:checked")).to_have_count(1)
        expect(pending.filter(has_text="Buttons One").locator("input")).to_be_checked()
        buttons(ana, enabled=True)
        shots_at_both_widths(ana, "selected")

        # decided elsewhere (another page of ana's): the next refresh takes it from the list, the buttons go off
        other = ana.context.new_page()
        other.set_default_timeout(90_000)
        other.goto(ana.url)
        other.get_by_role("tab", name="Approvals").click()
        other.locator("#ns-pending label").filter(has_text="Buttons One").click()
        expect(other.locator("#ns-approve")).to_be_enabled()
        other.locator("#ns-approve").click()
        expect(other.locator("#ns-decision")).to_contain_text("Approved by ana")
        buttons(other, enabled=False)  # decided here: off at once
        expect(pending.filter(has_text="Buttons One")).to_have_count(0)  # the first page's refresh
        buttons(ana, enabled=False)
        expect(ana.locator("#ns-pending input:checked")).to_have_count(0)
        expect(ana.locator("#ns-card")).not_to_contain_text("Buttons One")  # its preview went with it

        # decided on this page: off again, the list emptied
        pending.filter(has_text="Buttons Two").click()
        buttons(ana, enabled=True)
        ana.locator("#ns-reject").click()
        expect(ana.locator("#ns-decision")).to_contain_text(re.compile(r"Rejected by ana"))
        buttons(ana, enabled=False)
        expect(pending).to_have_count(0)
        expect(ana.locator("#ns-card")).not_to_contain_text("Buttons Two")
        shots_at_both_widths(ana, "decided")
