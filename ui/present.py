"""What both the web UI and the Slack bot show for a turn: key metrics, the main result, the approval note.

Pure functions over the dict that `agent.runner.Northstar.ask` returns; no Gradio, no Slack here.
"""

from __future__ import annotations

import re
from typing import Any

ACRONYMS = {"roas", "cpa", "ctr", "cvr", "auc", "clv", "rfm", "ci", "id", "mde", "srm", "roi", "r2"}
PERCENT_NAME = re.compile(r"(^|_)(ctr|cvr|rate|share|pct|percent)($|_)")
CLI_HINT = re.compile(r"It needs an approver's decision:.*$", re.S)
NODE_LABELS = {"guard_input": "checking the request", "plan": "planning", "run_tools": "running tools",
               "prepare_action": "drafting the action", "approve": "waiting for approval",
               "run_action": "running the approved action", "guard_output": "checking every number"}


def label(key: str) -> str:
    """`roas` → ROAS, `value_at_risk` → Value at risk."""
    words = key.replace("-", "_").split("_")
    out = [w.upper() if w.lower() in ACRONYMS else w for w in words if w]
    text = " ".join(out)
    return text[:1].upper() + text[1:]


def fmt(value: Any, key: str = "") -> str:
    """A number as a marketer reads it: 43,804 · 2.02 · 1.31 % · 0.0454; text unchanged."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        if PERCENT_NAME.search(key.lower()) and abs(value) <= 1.5:
            return f"{value * 100:.2f} %"
        if value.is_integer() and abs(value) >= 1:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    return str(value)


def key_metrics(result: dict | None, limit: int = 6) -> list[tuple[str, str]]:
    """The metrics the tool declared as key (business outcomes, in its order), labelled and formatted."""
    metrics = (result or {}).get("metrics") or {}
    keys = [k for k in (result or {}).get("key_metrics") or [] if k in metrics]
    if not metrics.get("candidates_checked"):  # no drafts were supplied: "checked 0 / passed 0" says nothing
        keys = [k for k in keys if not k.startswith("candidates_")]
    return [(label(k), fmt(metrics[k], k)) for k in keys[:limit]]


def ok_calls(out: dict) -> list[dict]:
    return [c for c in out.get("tool_calls") or [] if c.get("ok") and c.get("result")]


def main_call(out: dict) -> dict | None:
    """The tool call whose result best represents the answer: the last one with a chart, else with rows."""
    calls = ok_calls(out)
    for want in ("chart", "data", "summary"):
        for call in reversed(calls):
            if call["result"].get(want):
                return call
    return None


def answer_text(out: dict, where: str) -> str:
    """The answer, with the CLI's approval hint replaced by where this interface takes the decision."""
    answer = out.get("answer") or ""
    if out.get("pending_approval"):
        answer = CLI_HINT.sub(f"It needs an approver's decision: {where}", answer)
    return answer.strip() or "_(no answer)_"


def provider_note(out: dict | None, default: str) -> tuple[str, str | None]:
    """(who answered, fallback reason or None)."""
    if not out:
        return default, None
    return out.get("provider") or default, out.get("fallback")


def args_text(args: dict | None) -> str:
    items = [f"{k}={v}" for k, v in (args or {}).items() if v not in (None, [], {}, "")]
    return ", ".join(items) or "defaults"


def ms_text(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def preview_rows(pending: dict) -> list[tuple[str, str]]:
    """The preview of a pending action as label/value pairs (description and risk shown elsewhere)."""
    preview = pending.get("preview") or {}
    return [(label(k), fmt(v, k)) for k, v in preview.items()
            if k not in ("description", "risk") and not isinstance(v, dict | list)]


PALETTE = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#db2777", "#64748b", "#7c3aed", "#0d9488"]


TITLE_CHARS = 44  # a title line that fits a 380 px panel at the house title size
LEGEND_ROOM = 56  # px added to the height when a legend sits below the plot, so the plot keeps its height
COMPOUND = ("hconcat", "vconcat", "concat", "facet", "repeat")


def wrap_title(title, chars: int = TITLE_CHARS):
    """A long title as several lines (Vega-Lite takes a list), so no renderer cuts it."""
    if not isinstance(title, str) or len(title) <= chars:
        return title
    lines, line = [], ""
    for word in title.split():
        if line and len(line) + 1 + len(word) > chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line]


def styled_spec(spec: dict, width: int | str = 400, height: int = 240) -> dict:
    """The tool's Vega-Lite spec, sized for where it is shown, in a calm house style (the tool's config wins).

    `width="container"` fits the chart to its panel (the web UI); a number is a fixed size (Slack's PNG). Either
    way the whole chart (axes, labels, title, legend) fits the width: autosize `fit` with `contains: padding`.
    Legends sit below the plot, horizontal, so a narrow panel keeps its plot; long titles wrap onto lines."""
    out = {k: v for k, v in spec.items() if k not in ("width", "height", "autosize")}
    if not any(k in spec for k in COMPOUND):
        legend = any(isinstance(e, dict) and e.get("field") for k, e in (spec.get("encoding") or {}).items()
                     if k in ("color", "shape", "size"))
        out["width"], out["height"] = width, height + (LEGEND_ROOM if legend else 0)
        out["autosize"] = {"type": "fit", "contains": "padding", "resize": width == "container"}
    if isinstance(title := spec.get("title"), str):
        out["title"] = {"text": wrap_title(title)}
    out["usermeta"] = {**(spec.get("usermeta") or {}),
                       "embedOptions": {"renderer": "svg", "actions": False}}  # text in the page: readable, testable
    house = {"background": "white", "view": {"stroke": None}, "padding": {"left": 4, "right": 12, "top": 4, "bottom": 4},
             "font": "IBM Plex Sans, Helvetica, Arial, sans-serif",
             "title": {"fontSize": 14, "anchor": "start", "color": "#0f172a", "offset": 10, "limit": 0},
             "axis": {"labelFontSize": 11, "titleFontSize": 12, "labelColor": "#334155", "titleColor": "#334155",
                      "gridColor": "#e2e8f0", "domainColor": "#cbd5e1", "tickColor": "#cbd5e1", "labelLimit": 110},
             "axisX": {"labelAngle": -40, "labelOverlap": True},
             "legend": {"labelFontSize": 11, "titleFontSize": 12, "orient": "bottom", "direction": "horizontal",
                        "columns": 3, "labelLimit": 100, "symbolType": "square"},
             "range": {"category": PALETTE}, "mark": {"color": PALETTE[0]}, "bar": {"color": PALETTE[0]},
             "line": {"color": PALETTE[0], "strokeWidth": 2}, "point": {"color": PALETTE[0]}}
    out["config"] = {**house, **(spec.get("config") or {})}
    return out


# ---- words -----------------------------------------------------------------------------------------------------
STOP = {"a", "an", "the", "our", "we", "us", "i", "me", "my", "you", "your", "please", "can", "could", "would", "is",
        "are", "was", "were", "do", "does", "did", "how", "what", "which", "who", "whom", "why", "when", "where",
        "show", "tell", "give", "of", "for", "to", "in", "on", "at", "by", "and", "or", "it", "be", "should",
        "there", "any", "about", "from", "with", "that", "this", "these", "those", "quick", "just", "really", "have",
        "has", "get", "let", "s", "some", "much", "many", "into", "per"}


def with_article(word: str) -> str:
    """"an analyst", "an approver", "a viewer", "a user", "an hour": by the sound, for the words the UI uses."""
    lower = word.lower()
    vowel = lower[:1] in "aeiou" and not lower.startswith(("uni", "use", "usu", "eu", "one"))
    return f"{'an' if vowel or lower.startswith(('hour', 'honest')) else 'a'} {word}"


TOPICS = {"campaign_report": "Campaigns", "segment_customers": "Segments", "score_churn": "Churn",
          "score_leads": "Leads", "predict_clv": "CLV", "attribute_conversions": "Attribution",
          "analyze_experiment": "Experiment", "plan_experiment": "Test plan", "allocate_budget": "Budget",
          "detect_anomalies": "Anomalies", "analyze_sentiment": "Reviews", "search_knowledge": "Knowledge",
          "generate_content_variants": "Copy", "query_data": "Data", "create_audience": "Audience",
          "update_budget": "Budget change", "schedule_send": "Send"}


def thread_title(question: str, tool: str | None = None, limit: int = 48) -> str:
    """A short thread title from the first question and the tool that answered it ("Campaigns · channels
    perform last month"): the topic first, then the question's own words without filler, cut at a word."""
    words = re.findall(r"[\w%'’-]+", question or "")
    kept = [w for w in words if w.lower().strip("'’") not in STOP] or words
    head = TOPICS.get(tool or "", label(tool) if tool else "")
    text = " ".join(kept)
    title = f"{head} · {text}" if head and text else (head or text or "New thread")
    if len(title) > limit:
        cut = title[: limit - 1]
        title = (cut.rsplit(" ", 1)[0] if " " in cut[len(head) + 3:] else cut).rstrip(" ·") + "…"
    return title[:1].upper() + title[1:]
