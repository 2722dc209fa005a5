"""How a turn looks in the web UI: chat messages with collapsible evidence, the chart, the table, badges.

Pure functions over the agent's result dict (see agent/runner.py); ui/gradio_app.py wires them to Gradio.
"""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path

from ui.present import (
    answer_text,
    args_text,
    key_metrics,
    label,
    main_call,
    ms_text,
    preview_rows,
    styled_spec,
    thread_title,
)

WHERE = "open the **Approvals** tab (approvers only)."
CSV_DIR = Path(tempfile.gettempdir()) / "northstar-ui"


# ---- chat ----------------------------------------------------------------------------------------------
def user_message(text: str) -> dict:
    return {"role": "user", "content": text}


def evidence_parent(gid: str, n_calls: int, status: str, seconds: float | None = None, log: str = "") -> dict:
    title = f"Evidence · {n_calls} tool call{'s' if n_calls != 1 else ''}" if n_calls else "Working"
    meta = {"title": title, "id": gid, "status": status}
    if seconds is not None:
        meta["duration"] = round(seconds, 2)
    if log:
        meta["log"] = log
    return {"role": "assistant", "content": "", "metadata": meta}


def step_message(gid: str, idx: int, name: str, args: dict | None, *, ok: bool | None = None,
                 ms: float | None = None, summary: str | None = None, error: str | None = None,
                 warnings: list | None = None) -> dict:
    """One tool call: running (ok is None), finished or failed; args and result summary as the body."""
    mark = "◷" if ok is None else ("✓" if ok else "✗")
    body = [f"**Arguments:** `{args_text(args)}`"]
    if summary:
        body.append(summary)
    if error:
        body.append(f"**Error:** {error}")
    body += [f"⚠ {w}" for w in warnings or []]
    meta = {"title": f"{mark} {name}", "id": f"{gid}-{idx}", "parent_id": gid,
            "status": "pending" if ok is None else "done"}
    if ms is not None:
        meta["log"] = ms_text(ms)
    return {"role": "assistant", "content": "\n\n".join(body), "metadata": meta}


def evidence_messages(gid: str, out: dict, seconds: float | None = None) -> list[dict]:
    calls = out.get("tool_calls") or []
    if not calls:
        return []
    msgs = [evidence_parent(gid, len(calls), "done", seconds)]
    for i, c in enumerate(calls):
        res = c.get("result") or {}
        msgs.append(step_message(gid, i, c["name"], c.get("args"), ok=bool(c.get("ok")), ms=c.get("ms"),
                                 summary=res.get("summary"), error=c.get("error"), warnings=res.get("warnings")))
    return msgs


def answer_messages(out: dict, gid: str, seconds: float | None = None, prefix: str = "") -> list[dict]:
    """Evidence (collapsed) then the answer, plus a note when an action waits for approval."""
    text = prefix + answer_text(out, WHERE)
    if out.get("blocked"):
        text = f"⚠ **Blocked by a guardrail** ({out['blocked'].get('rule', 'policy')}).\n\n{text}"
    msgs = evidence_messages(gid, out, seconds) + [{"role": "assistant", "content": text}]
    pending = out.get("pending_approval")
    if pending:
        msgs.append({"role": "assistant", "content": (
            f"◆ **Waiting for approval** · `{pending['action']}` · risk **{pending['risk']}** · requested by "
            f"{pending.get('requested_by') or 'unknown'}\n\n{preview_list(pending)}")})
    return msgs


def history_messages(history: list[dict], last: dict | None, thread_id: str) -> list[dict]:
    """A stored thread: its questions and answers, with the evidence of the latest turn restored."""
    msgs = [{"role": m["role"], "content": m["content"]} for m in history]
    if last is None:
        return msgs
    gid = f"{thread_id}-last"
    if msgs and msgs[-1]["role"] == "assistant":
        msgs = msgs[:-1]
    return msgs + answer_messages(last, gid)


# ---- results: chart, table, metrics --------------------------------------------------------------------
def result_choices(out: dict | None) -> list[tuple[str, int]]:
    calls = (out or {}).get("tool_calls") or []
    return [(f"{c['name']} · {len((c.get('result') or {}).get('data') or [])} rows", i)
            for i, c in enumerate(calls) if c.get("ok") and c.get("result")]


def default_choice(out: dict | None) -> int | None:
    call = main_call(out or {})
    calls = (out or {}).get("tool_calls") or []
    return next((i for i, c in enumerate(calls) if c is call), None)


def chart_of(call: dict | None):
    """An Altair chart from the result's Vega-Lite spec, fitted to the panel's width (None when there is none or
    it does not parse)."""
    spec = ((call or {}).get("result") or {}).get("chart")
    if not spec:
        return None
    import altair as alt

    try:  # from_dict tries every top-level kind (layer, concat, facet …)
        return alt.Chart.from_dict(styled_spec(spec, width="container"))
    except Exception:  # a spec Altair cannot read is shown as data only
        return None


def table_of(call: dict | None):
    import pandas as pd

    rows = ((call or {}).get("result") or {}).get("data") or []
    df = pd.DataFrame(rows)
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, dict | list)).any():
            df[col] = df[col].map(str)
    return df


def csv_of(call: dict | None, thread_id: str | None) -> str | None:
    df = table_of(call)
    if df.empty:
        return None
    CSV_DIR.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_-]", "", f"{call['name']}-{thread_id or 'result'}")
    path = CSV_DIR / f"{name}.csv"
    for col in df.select_dtypes(include=["object", "string"]).columns:  # no spreadsheet formulas (OWASP)
        text = df[col].astype("string")
        df[col] = text.where(~text.str.match(r"[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]", na=False), "'" + text)
    df.to_csv(path, index=False)
    return str(path)


def display_table(df):
    """Rounded for reading; the CSV keeps full precision."""
    return df.round(4) if not df.empty else df


def metrics_html(call: dict | None) -> str:
    if call is None:
        return "<div id='ns-empty'>Key numbers, the chart and the rows behind each answer appear here.</div>"
    tiles = key_metrics(call.get("result"))
    if not tiles:
        return ""
    cells = "".join(f"<div class='ns-tile'><div class='ns-tile-v'>{html.escape(v)}</div>"
                    f"<div class='ns-tile-k'>{html.escape(k)}</div></div>" for k, v in tiles)
    return f"<div class='ns-tiles'>{cells}</div>"


# ---- badges and cards ----------------------------------------------------------------------------------
FIT_CSS = """
#ns-chart .altair {align-items: stretch;}
#ns-chart .vega-embed {display: block; width: 100%; min-width: 0;}
#ns-chart .vega-embed svg {display: block; max-width: 100%;}
.ns-badges {min-width: 0;}
.ns-badges .ns-chip {white-space: normal; max-width: 100%; overflow-wrap: anywhere;}
#ns-table, #ns-table .table-wrap {max-width: 100%; overflow-x: auto;}
#ns-chat table {display: block; max-width: 100%; overflow-x: auto; font-size: .9em;}
@media (max-width: 640px) {
  #ns-header {flex-wrap: wrap !important;}
  #ns-header > * {flex: 1 1 100% !important; min-width: 0 !important; max-width: 100%;}
  #ns-badge .ns-badges {justify-content: flex-start;}
}
"""
"""What lets charts fit their panel and badges and tables fit a narrow screen. Gradio's Altair plot centres an
empty inline-block, so a `width: "container"` chart needs its embed stretched. Sent with the badges (always on
the page) until the page's own CSS (ui/gradio_app.py) carries it."""


def badge_html(provider: str, fallback: str | None = None, grounded: bool | None = None,
               blocked: dict | None = None) -> str:
    offline = provider == "offline planner"
    chips = [f"<span class='ns-chip {'ns-offline' if offline else 'ns-model'}' title='who answered'>"
             f"{'⚙ offline planner · deterministic, not an LLM' if offline else '● ' + html.escape(provider)}"
             "</span>"]
    if fallback:
        chips.append(f"<span class='ns-chip ns-warn' title='{html.escape(fallback)}'>↩ fell back to the offline "
                     "planner</span>")
    if grounded:
        chips.append("<span class='ns-chip ns-ok'>✓ every number traced to a tool result</span>")
    elif grounded is False:
        chips.append("<span class='ns-chip ns-warn'>⚠ answer replaced by the tool results</span>")
    if blocked:
        chips.append("<span class='ns-chip ns-warn'>⚠ blocked by a guardrail</span>")
    return f"<style>{FIT_CSS}</style><div class='ns-badges'>" + "".join(chips) + "</div>"


def preview_list(p: dict) -> str:
    return "\n".join(f"- **{k}:** {v}" for k, v in preview_rows(p)) + "\n"


def pending_label(p: dict) -> str:
    name = (p.get("args") or {}).get("name")
    mark = "⚠ interrupted · " if p.get("interrupted") else ""
    return f"{mark}{p['action']}{' · ' + str(name) if name else ''} · risk {p['risk']} · {p['thread_id']}"


def pending_card(p: dict | None) -> str:
    if not p:
        return "_Select a request to see its preview._"
    table = preview_list(p)
    when = str(p.get("requested_at") or "").replace("T", " ")
    return (f"### {label(p['action'])}\n\n{p['description']}\n\n- **Risk:** {p['risk']}\n{table}\n"
            f"Requested by **{p.get('requested_by') or 'unknown'}** {when} in thread `{p['thread_id']}`.")


def decision_note(decision: str, user: str) -> str:
    verb = {"approve": "✓ Approved", "edit": "✏ Approved with edits", "reject": "✗ Rejected"}[decision]
    return f"**{verb} by {user}.** "


def thread_choices(threads: list[dict]) -> list[tuple[str, str]]:
    """Threads as short titles (ui/present.thread_title: the topic of its first tool when the thread says which,
    then the first question's own words) with the time of the last change."""
    return [(("◆ " if t.get("pending") else "") + (thread_title(t["title"], t.get("tool")) if t.get("title")
                                                   else t["thread_id"])
             + f" · {str(t.get('updated_at') or '')[5:16].replace('T', ' ')}", t["thread_id"]) for t in threads]


def role_html(user: str, role: str, sign_out: bool = False) -> str:
    link = " <a class='ns-signout' href='logout'>Sign out</a>" if sign_out else ""
    return f"<span class='ns-chip ns-role ns-{role}'>{html.escape(user)} · {role}</span>{link}"

