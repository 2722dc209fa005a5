"""How a turn looks in Slack: Block Kit for the answer, key metrics, details, approvals; the chart as a PNG.

Pure functions over the agent's result dict (agent/runner.py); ui/slack_bot.py posts what they build.
"""

from __future__ import annotations

import re
from datetime import datetime

from ui.present import answer_text, key_metrics, main_call, ms_text, preview_rows, styled_spec

APPROVE, REJECT = "northstar_approve", "northstar_reject"
WHERE = "an approver can use the buttons below."
SECTION_LIMIT = 2900  # Slack allows 3000 characters per section text


def mrkdwn(markdown: str) -> str:
    """Markdown → Slack mrkdwn: escapes, bold, links, headings, bullets."""
    text = markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    text = re.sub(r"__(.+?)__", r"_\1_", text)
    text = re.sub(r"^#{1,6}\s*(.+)$", r"*\1*", text, flags=re.M)
    return re.sub(r"^(\s*)[-*] ", r"\1• ", text, flags=re.M)


def plain(markdown: str, limit: int = 300) -> str:
    """Notification text (no markup), cut to `limit`."""
    text = re.sub(r"[*_`#]", "", markdown or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sections(text: str) -> list[dict]:
    chunks, rest = [], text
    while rest:
        cut = len(rest) if len(rest) <= SECTION_LIMIT else (rest.rfind("\n", 0, SECTION_LIMIT) + 1 or SECTION_LIMIT)
        chunks.append(rest[:cut])
        rest = rest[cut:]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks if c.strip()]


def details(out: dict) -> dict:
    """The small print: who answered, which tools ran and how long, grounding, thread."""
    calls = out.get("tool_calls") or []
    parts = [f"*{out.get('provider') or 'offline planner'}*"]
    if out.get("fallback"):
        parts.append(f"fell back to the offline planner ({plain(out['fallback'], 120)})")
    if calls:
        parts.append(", ".join(f"{'✓' if c.get('ok') else '✗'} `{c['name']}` {ms_text(c.get('ms'))}".strip()
                               for c in calls))
    if out.get("grounded"):
        parts.append("every number traced to a tool result")
    if out.get("blocked"):
        parts.append("blocked by a guardrail")
    parts.append(f"thread `{out['thread_id']}`")
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": "Details: " + " · ".join(parts)}]}


def answer_blocks(out: dict, prefix: str = "") -> list[dict]:
    """Summary (the answer), key metrics, the approval request if any, and a details context."""
    blocks = sections(prefix + mrkdwn(answer_text(out, WHERE)))
    call = main_call(out)
    metrics = key_metrics(call.get("result") if call else None, limit=8)
    if metrics:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in metrics]})
    waiting = [d for d in out.get("drafts") or [] if d.get("status", "pending") == "pending"]
    for request in waiting or ([out["pending_approval"]] if out.get("pending_approval") else []):
        blocks += approval_blocks(request, request.get("id") or out["thread_id"])
    blocks.append(details(out))
    return blocks


def outcome_blocks(out: dict, prefix: str = "") -> list[dict]:
    """A decision's outcome (posted in the Slack thread the draft came from): who decided, what ran."""
    blocks = sections(prefix + mrkdwn(out.get("outcome") or answer_text(out, WHERE)))
    call = main_call(out)
    metrics = key_metrics(call.get("result") if call else None, limit=8)
    if metrics:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in metrics]})
    return blocks


def approval_blocks(pending: dict, request_id: str) -> list[dict]:
    """A draft waiting in the inbox, with Approve / Reject buttons that carry its request id."""
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in preview_rows(pending)][:10]
    head = {"type": "section", "text": {"type": "mrkdwn", "text": (
        f":double_vertical_bar: *Waiting for approval* · `{pending['action']}` · risk *{pending['risk']}*\n"
        f"{mrkdwn(pending['description'])}")}}
    blocks = [{"type": "divider"}, head]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    confirm = {"title": {"type": "plain_text", "text": "Run this action?"},
               "text": {"type": "mrkdwn", "text": plain(pending["description"], 280)},
               "confirm": {"type": "plain_text", "text": "Approve"}, "deny": {"type": "plain_text", "text": "Cancel"}}
    blocks.append({"type": "actions", "block_id": "northstar_approval", "elements": [
        {"type": "button", "action_id": APPROVE, "style": "primary", "value": request_id, "confirm": confirm,
         "text": {"type": "plain_text", "text": "Approve"}},
        {"type": "button", "action_id": REJECT, "style": "danger", "value": request_id,
         "text": {"type": "plain_text", "text": "Reject"}}]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"Only approvers can decide · requested by {who(pending.get('requested_by'))} · "
        "edits: the web UI's Approvals tab or `northstar approve --edit`")}]})
    return blocks


def decided_blocks(original: list[dict], decision: str, user: str) -> list[dict]:
    """The approval message after a decision: buttons replaced by who decided and when."""
    verb = {"approve": ":white_check_mark: Approved", "reject": ":no_entry_sign: Rejected"}[decision]
    kept = [b for b in original or [] if b.get("type") != "actions" and b.get("block_id") != "northstar_approval"]
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    return kept + [{"type": "context", "elements": [{"type": "mrkdwn", "text": f"{verb} by <@{user}> · {stamp}"}]}]


def working_blocks(status: str) -> list[dict]:
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": f":hourglass_flowing_sand: {status} …"}]}]


def who(user: str | None) -> str:
    return f"<@{user}>" if user and re.fullmatch(r"[UW][A-Z0-9]{2,}", user) else (user or "unknown")


def chart_png(out: dict) -> tuple[bytes, str] | None:
    """The main result's chart as a PNG (vl-convert, offline) and its title; None when there is no chart."""
    call = main_call(out)
    spec = ((call or {}).get("result") or {}).get("chart")
    if not spec:
        return None
    import vl_convert

    try:
        png = vl_convert.vegalite_to_png(styled_spec(spec, width=640, height=320), scale=2)
    except Exception:  # a chart that cannot be drawn leaves the text answer intact
        return None
    title = spec.get("title")
    title = title.get("text") if isinstance(title, dict) else title
    return png, str(title or call["name"])


HELP = ("*Northstar* answers marketing questions with your warehouse's numbers.\n"
        "• Mention me or DM me: _How did our channels perform last month?_ — reply in the thread to follow up.\n"
        "• `/northstar <question>` asks in this channel · `/northstar pending` lists actions waiting for approval.\n"
        "• Actions (audiences, sends, budget changes) run only after an approver clicks *Approve*.")
