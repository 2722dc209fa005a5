"""Answers in Slack's own markup: Slack's mrkdwn has no tables, so a GitHub table becomes an aligned code block
(numbers right-aligned, too-wide tables keep their first columns and name the others, long ones are counted),
cut so no section passes Slack's 3000 characters and no message its 50 blocks; headings, emphasis, links,
bullets and quotes rewritten. End to end: a question answered with a table through signed Slack requests."""

from __future__ import annotations

import json
import re

from tests.ui.test_slack import CHANNEL, mention, slack  # noqa: F401 - slack is the fixture
from ui import slack_blocks as B

TABLE = """Customers by country:

| country | customers | share | note |
| --- | ---: | --- | --- |
| Germany | 12,345 | 24.7 % | a \\| pipe |
| 日本 | 345 | 0.7 % | **big** `code` |
| France | — | 1.5 % | <b>&co</b> |

That is all."""


def code_blocks(text: str) -> list[list[str]]:
    return [block.strip("\n").split("\n") for block in re.findall(r"```\n(.*?)```", text, flags=re.S)]


def test_a_table_becomes_an_aligned_code_block():
    text = B.mrkdwn(TABLE)
    assert "|" not in text.replace("a | pipe", ""), text  # no raw pipes, the escaped one kept as a character
    [table] = code_blocks(text)
    header, rule, *rows = table
    assert header.split() == ["country", "customers", "share", "note"] and set(rule) <= {"─", " "}
    assert rows[0].startswith("Germany") and "12,345" in rows[0]
    # numbers end in one column (right-aligned), text starts in one (left-aligned); 日本 is two columns wide each
    ends = {B.width(row[: row.index(num) + len(num)]) for row, num in zip(rows, ["12,345", "345", "—"], strict=True)}
    assert len(ends) == 1, rows
    starts = {B.width(row[: row.index(note)]) for row, note in zip(rows, ["a | pipe", "big code", "&lt;b&gt;"],
                                                                  strict=True)}
    assert len(starts) == 1, rows
    assert "**" not in text and "`code`" not in text, "Markdown inside a code block would show as is"
    assert "&lt;b&gt;&amp;co&lt;/b&gt;" in text, "Slack's reserved characters escaped inside the block too"
    assert text.startswith("Customers by country:") and text.rstrip().endswith("That is all.")


def test_a_wide_table_keeps_its_first_columns_and_a_long_one_is_counted():
    cols = ["campaign name"] + [f"metric_{i}" for i in range(12)]
    rows = [[f"Spring launch {r} " + "x" * 40] + [f"{r * i:,}" for i in range(12)] for r in range(130)]
    md = "\n".join(["| " + " | ".join(c) + " |" for c in [cols, ["---"] * len(cols), *rows]])
    text = B.mrkdwn(md)
    [table] = code_blocks(text)
    assert max(B.width(line) for line in table) <= B.TABLE_WIDTH
    shown = table[0].split("  ")
    assert shown[0].strip() == "campaign name" and 1 < len([c for c in shown if c.strip()]) < len(cols)
    left = len(cols) - len([c for c in shown if c.strip()])
    assert f"_{left} more columns too wide for Slack: " in text and "metric_11" in text.split("```")[-1]
    assert table[2].startswith("Spring launch 0 xxx") and table[2].split("  ")[0].endswith("…")
    assert table[-1] == f"… {130 - B.TABLE_ROWS} more rows" and len(table) == 2 + B.TABLE_ROWS + 1


def test_long_answers_fit_slacks_limits_and_each_part_renders_alone():
    """Tables and text beyond one section: every part under 3000 characters with its code fences balanced and the
    table's header repeated; an answer beyond 50 blocks keeps the buttons and details and says what is left out."""
    rows = "\n".join(f"| {'name ' * 6}{i} | {i * 1000:,} | {i}.5 % |" for i in range(100))
    table = "| name | spend | ctr |\n|---|---:|---:|\n" + rows
    text = B.mrkdwn("\n\n".join([table.replace("name |", f"name{k} |", 1) for k in range(4)]))
    parts = [b["text"]["text"] for b in B.sections(text)]
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= 3000 and part.count("```") % 2 == 0, part[-200:]
        for block in code_blocks(part):
            assert block[0].split()[0].startswith("name") and set(block[1]) <= {"─", " "}, block[:2]
    out = {"answer": "\n\n".join(["word " * 500] * 40), "thread_id": "t-1", "provider": "offline planner",
           "tool_calls": [], "pending_approval": {"action": "create_audience", "risk": "low", "description": "d",
                                                  "preview": {}, "id": "a-1"}}
    blocks = B.answer_blocks(out)
    assert len(blocks) <= B.MAX_BLOCKS
    assert blocks[-1]["type"] == "context" and "Details" in blocks[-1]["elements"][0]["text"]
    assert any(b["type"] == "actions" for b in blocks), "the approval buttons are never cut"
    assert sum(len(b["text"]["text"]) for b in blocks if b["type"] == "section" and "text" in b) <= B.TEXT_BUDGET + 200
    assert "the answer goes on" in json.dumps(blocks)


def test_markdown_becomes_slack_mrkdwn():
    md = ("## **Budget** plan ##\n\nSpend *more* on **search** and __email__, not ~~tv~~; see "
          "[the playbook](https://wiki.example.com/a_b?x=1&y=2) or <https://example.com/x>.\n"
          "![chart](https://example.com/c.png)\n- first\n  - nested with `a**b**` code\n* second\n"
          "> a quote with 2 < 3\n\n---\n\n```\n| code | stays |\n|---|---|\n**as is**\n```\n1. numbered")
    text = B.mrkdwn(md)
    lines = text.split("\n")
    assert lines[0] == "*Budget plan*" and lines[1] == "", "a heading in bold, its blank line kept"
    assert "_more_ on *search* and *email*, not ~tv~" in text
    assert "<https://wiki.example.com/a_b?x=1&amp;y=2|the playbook>" in text and "<https://example.com/x>" in text
    assert "<https://example.com/c.png|chart>" in text and "!<" not in text
    assert "• first" in lines and "  ◦ nested with `a**b**` code" in lines and "• second" in lines
    assert "> a quote with 2 &lt; 3" in lines and "──────────" in lines
    assert "```\n| code | stays |\n|---|---|\n**as is**\n```" in text, "code is left as it is"
    assert lines[-1] == "1. numbered"
    assert B.plain(TABLE).count("·") == 12 and "|" not in B.plain(TABLE).replace("a | pipe", "")


def test_a_table_answer_in_slack_is_a_code_block_not_pipes(slack):  # noqa: F811 - the fixture
    fake, _app, url = slack
    root = "1750000009.000100"
    assert mention(url, "UANA", "How many customers per country?", root, event_id="EvT").status_code == 200
    placeholder = fake.wait("chat.postMessage", thread_ts=root, channel=CHANNEL)
    answer = fake.wait("chat.update", lambda c: "Details" in json.dumps(c.get("blocks")), ts=placeholder["ts"])
    texts = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section" and "text" in b]
    shown = "\n".join(texts)
    assert "```" in shown, shown
    assert not [ln for ln in shown.split("\n") if ln.lstrip().startswith("|")], shown
    [table] = code_blocks(shown)
    assert "country" in table[0] and set(table[1]) <= {"─", " "} and len(table) >= 3, table
    counts = [re.search(r"\d[\d,]*$", row) for row in table[2:] if not row.startswith("…")]
    assert all(counts) and len({B.width(row) for row in table[2:] if not row.startswith("…")}) == 1, table
    assert all(len(t) <= 3000 for t in texts) and len(answer["blocks"]) <= 50
    assert "|" not in answer["text"].replace("\\|", ""), "the notification text has no pipes either"
