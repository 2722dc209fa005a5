"""How a turn looks in Slack: Block Kit for the answer, key metrics, details, approvals; the chart as a PNG.

Pure functions over the agent's result dict (agent/runner.py); ui/slack_bot.py posts what they build.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from ui.present import answer_text, key_metrics, main_call, ms_text, preview_rows, styled_spec

APPROVE, REJECT = "northstar_approve", "northstar_reject"
WHERE = "an approver can use the buttons below."
SECTION_LIMIT = 2900  # Slack allows 3000 characters per section text
MAX_BLOCKS = 50  # Slack allows 50 blocks per message
TEXT_BUDGET = 12_000  # Slack refuses a message whose blocks hold much more text (msg_blocks_too_long)
FENCE = "```"


def escape(text: str) -> str:
    """The three characters Slack reserves for links and mentions, as entities (code blocks included)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(markdown: str) -> str:
    """Markdown → Slack mrkdwn. Slack has no tables: a GitHub table becomes an aligned code block
    (table_mrkdwn below). Code stays code; elsewhere headings, bold, italics, strike, links, images, bullets,
    quotes and rules are rewritten in Slack's own markup."""
    out = []
    for kind, lines in segments(markdown or ""):
        if kind == "code":
            out.append(escape("\n".join(lines)))
        elif kind == "table":
            out.append(table_mrkdwn(lines))
        else:
            out.append(_inline("\n".join(lines)))
    return "\n".join(out)


def _inline(markdown: str) -> str:
    kept: list[str] = []  # code spans and links, untouched by the rewriting of emphasis

    def keep(text: str) -> str:
        kept.append(text)
        return f"\x00{len(kept) - 1}\x00"

    text = escape(markdown)
    text = re.sub(r"`[^`\n]+`", lambda m: keep(m.group()), text)
    text = re.sub(r"!?\[([^\]]*)\]\((https?://[^)\s]+)\)",
                  lambda m: keep(f"<{m[2]}|{m[1]}>" if m[1].strip() else f"<{m[2]}>"), text)
    text = re.sub(r"&lt;(https?://[^\s]+?)&gt;", lambda m: keep(f"<{m[1]}>"), text)
    text = re.sub(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$", "──────────", text, flags=re.M)  # a rule
    text = re.sub(r"^( *)[-*+] +", lambda m: m[1] + ("◦ " if len(m[1]) >= 2 else "• "), text, flags=re.M)
    text = re.sub(r"(?<![\w*])(\*\*|__)(?=\S)(.+?)(?<=\S)\1(?![\w*])", "\x01\\2\x01", text)  # bold, for now
    text = re.sub(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])", r"_\1_", text)  # italics
    text = re.sub(r"~~(?=\S)(.+?)(?<=\S)~~", r"~\1~", text)
    text = re.sub(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", lambda m: "\x01" + m[1].replace("\x01", "").strip("*_ ")
                  + "\x01", text, flags=re.M)
    text = re.sub(r"^&gt; ?", "> ", text, flags=re.M)  # a quote
    text = text.replace("\x01", "*")
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m[1])], text)


def plain(markdown: str, limit: int = 300) -> str:
    """Notification text (no markup; a table's rows as "a · b"), cut to `limit`."""
    lines = [" · ".join(cells(ln)) if ln.lstrip().startswith("|") else ln
             for ln in (markdown or "").splitlines() if not RULE.match(ln)]
    text = re.sub(r"[*_`#]", "", "\n".join(lines)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sections(text: str, limit: int = SECTION_LIMIT) -> list[dict]:
    """mrkdwn as section blocks of at most `limit` characters, cut between lines. A code block cut in two is
    closed and reopened (a table's header and rule repeated), so each part renders on its own."""
    chunks: list[str] = []
    lines: list[str] = []
    fence, size = False, 0

    def flush() -> None:
        nonlocal lines, size
        reopen: list[str] = []
        if fence:  # the open block's opening fence is in this part (a reopened part starts with one)
            opener = max(i for i, ln in enumerate(lines) if ln.lstrip().startswith(FENCE))
            body = lines[opener + 1:]
            head = body[:2] if len(body) >= 2 and body[1].strip() and not body[1].strip(" ─") else []
            reopen = [FENCE, *head]
            lines = lines[:opener] if len(body) <= len(head) else [*lines, FENCE]
        if any(ln.strip() for ln in lines):
            chunks.append("\n".join(lines))
        lines, size = reopen, sum(len(ln) + 1 for ln in reopen)

    longest = limit - 400  # room for a reopened block's fences and header
    for line in text.split("\n"):
        while len(line) > longest:  # a line longer than a section: cut at a space
            cut = line.rfind(" ", longest // 2, longest) + 1 or longest
            flush()
            lines, size = [*lines, line[:cut]], size + cut + 1
            line = line[cut:]
        if size + len(line) + (len(FENCE) + 1 if fence else 0) >= limit:
            flush()
        lines.append(line)
        size += len(line) + 1
        if line.lstrip().startswith(FENCE):
            fence = not fence
    fence = False
    flush()
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks]


# ---- tables: Slack's mrkdwn has none, so a GitHub table becomes an aligned code block ----------------------
TABLE_WIDTH = 72  # characters a code block shows on a laptop before wrapping a line
CELL_WIDTH = 28  # a longer cell is cut with "…"
TABLE_ROWS = 40  # rows shown; the rest are counted
RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
NUMBER = re.compile(r"^[-+−]?[$€£]?\(?\d[\d,]*(\.\d+)?\)?\s*(%|[kKMB]|x|pp)?$|^[—–-]$")


def segments(markdown: str) -> list[tuple[str, list[str]]]:
    """The text cut into ("code" | "table" | "text", lines): a table is a header row, its rule, and the rows
    after it; anything inside a code fence is code."""
    out: list[tuple[str, list[str]]] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(FENCE):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith(FENCE)), len(lines) - 1)
            out.append(("code", lines[i:end + 1]))
            i = end + 1
        elif "|" in line and i + 1 < len(lines) and RULE.match(lines[i + 1]) \
                and len(cells(line)) == len(cells(lines[i + 1])):  # GitHub's rule: as many cells as the header
            end = i + 2
            while end < len(lines) and "|" in lines[end] and lines[end].strip():
                end += 1
            out.append(("table", lines[i:end]))
            i = end
        else:
            if not out or out[-1][0] != "text":
                out.append(("text", []))
            out[-1][1].append(line)
            i += 1
    return out


def cells(row: str) -> list[str]:
    """A table row's cells, unescaped (\\| is a pipe), without the Markdown a code block would show as is."""
    row = row.strip()
    parts = re.split(r"(?<!\\)\|", row[1:] if row.startswith("|") else row)
    if parts and not parts[-1].strip() and row.endswith("|"):
        parts = parts[:-1]
    out = []
    for part in parts:
        text = re.sub(r"\[([^\]]*)\]\([^)\s]*\)", r"\1", part.replace("\\|", "|"))
        out.append(re.sub(r"(\*\*|__|`|~~)", "", text).strip())
    return out


def width(text: str) -> int:
    """Columns a monospace font gives `text`: wide (CJK, most emoji) count two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def clip(text: str, room: int) -> str:
    if width(text) <= room:
        return text
    text = text[: room * 2]  # a long cell is cut in one step, then to the width (wide characters count two)
    while text and width(text) > room - 1:
        text = text[:-1]
    return text + "…"


def table_mrkdwn(lines: list[str]) -> str:
    """A GitHub table as a code block: columns aligned, numbers right-aligned, at most TABLE_WIDTH wide (the
    first columns kept, the others named below) and TABLE_ROWS long (the rest counted)."""
    header, rule, hidden = cells(lines[0]), cells(lines[1]), max(len(lines) - 2 - TABLE_ROWS, 0)
    n = len(header)
    body = [(cells(ln) + [""] * n)[:n] for ln in lines[2:2 + TABLE_ROWS]]  # padded and cut as GitHub does
    header = [clip(h, CELL_WIDTH) for h in header]
    body = [[clip(c, CELL_WIDTH) for c in row] for row in body]
    right = []
    for j in range(n):
        marks = rule[j] if j < len(rule) else ""
        filled = [row[j] for row in body if row[j]]
        right.append(marks.endswith(":") and not marks.startswith(":")
                     or not marks.endswith(":") and bool(filled) and all(NUMBER.match(c) for c in filled))
    widths = [max(width(c) for c in [header[j], *(row[j] for row in body)]) for j in range(n)]
    keep, used = 0, -2
    while keep < n and used + 2 + widths[keep] <= TABLE_WIDTH:
        used += 2 + widths[keep]
        keep += 1
    keep = max(keep, 1)
    widths[0] = min(widths[0], TABLE_WIDTH)

    def line(row: list[str]) -> str:
        padded = []
        for j in range(keep):
            text = clip(row[j], widths[j])
            pad = " " * (widths[j] - width(text))
            padded.append(pad + text if right[j] else text + pad)
        return "  ".join(padded).rstrip()

    out = [line(header), "  ".join("─" * w for w in widths[:keep]), *map(line, body)]
    if hidden:
        out.append(f"… {hidden} more row{'s' if hidden != 1 else ''}")
    text = FENCE + "\n" + escape("\n".join(out)) + "\n" + FENCE
    if keep < n:
        left = ", ".join(h or f"column {j + 1}" for j, h in enumerate(header) if j >= keep)
        text += f"\n_{n - keep} more column{'s' if n - keep != 1 else ''} too wide for Slack: {escape(left)}._"
    return text


def text_blocks(mrkdwn_text: str, room: int) -> list[dict]:
    """The answer's sections, at most `room` blocks and TEXT_BUDGET characters; what does not fit is said."""
    blocks, used = [], 0
    for block in sections(mrkdwn_text):
        used += len(block["text"]["text"])
        blocks.append(block)
    if len(blocks) <= room and used <= TEXT_BUDGET:
        return blocks
    kept, used = [], 0
    for block in blocks[: max(room - 1, 0)]:  # the last place is for the note
        used += len(block["text"]["text"])
        if used > TEXT_BUDGET and kept:
            break
        kept.append(block)
    more = len(blocks) - len(kept)
    return kept + [{"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"… the answer goes on ({more} more part{'s' if more != 1 else ''}, too long for one Slack message): "
        "the web UI or `northstar ask` shows all of it.")}]}]


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
    blocks = []
    call = main_call(out)
    metrics = key_metrics(call.get("result") if call else None, limit=8)
    if metrics:
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in metrics]})
    waiting = [d for d in out.get("drafts") or [] if d.get("status", "pending") == "pending"]
    for request in waiting or ([out["pending_approval"]] if out.get("pending_approval") else []):
        blocks += approval_blocks(request, request.get("id") or out["thread_id"])
    blocks = blocks[: MAX_BLOCKS - 2] + [details(out)]  # the buttons and details first: the answer takes the rest
    return text_blocks(prefix + mrkdwn(answer_text(out, WHERE)), MAX_BLOCKS - len(blocks)) + blocks


def outcome_blocks(out: dict, prefix: str = "") -> list[dict]:
    """A decision's outcome (posted in the Slack thread the draft came from): who decided, what ran."""
    call = main_call(out)
    metrics = key_metrics(call.get("result") if call else None, limit=8)
    fields = [{"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in metrics]}]
    text = prefix + mrkdwn(out.get("outcome") or answer_text(out, WHERE))
    return text_blocks(text, MAX_BLOCKS - 1) + (fields if metrics else [])


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
