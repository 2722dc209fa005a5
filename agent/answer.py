"""The answer written from tool results (no model): the finding and the next step first, then the key numbers.

A marketer reads the chat; the evidence panel keeps every tool's full summary. So each result becomes: a bold
finding, a recommended next step, the summary's sentences without model terms (BG/NBD, Gamma-Gamma, R², MAPE,
SRM, AUC, p-values and confidence intervals stay in the evidence), the lists a person wants to see in the chat
itself (content variants, query rows, knowledge passages with their sources) and the caveats. Every figure is
taken from the result (metrics, rows or its summary), so the grounding guard finds each one.

Used by the offline planner for its answers, by the grounding guard when a draft must be replaced, and by the
runner when a turn ends in an approval request. Summaries carry text from the data (campaign names, review
phrases, table values), so the answer is written safe (agent/sanitize.py): no remote image, no clickable link,
instructions in the data quoted and said to be data. guard_output checks every answer again with the allow-list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from agent.sanitize import sanitize_answer

MODEL_TERMS = re.compile(r"BG/NBD|Gamma-Gamma|log-likelihood|R²|\bR2\b|\bMAPE\b|holdout error|\bSRM\b|p-value|"
                         r"\bAUC\b|silhouette|Gaussian mixture|\bcompound\b|robust z|\bBrier\b|\bHolm\b|\bCI\b|"
                         r"α =|\balpha [\d.]|P\(alive\)|\bp = \d|Markov|Shapley|removal effect|\bscore \d", re.I)
"""Words a marketer does not need in the chat: sentences holding them stay in the evidence panel only."""
REWORDS: list[tuple[re.Pattern, str]] = [(re.compile(p, re.I), r) for p, r in [
    (r"\s*\((?:Gaussian mixture|robust z|\|robust z\||mean compound|removal effect|score \d)[^()]*\)", ""),
    (r";\s*\d+(?:\.\d+)?% CI [^;)]*", ""),                          # "(+1.14 pp, +28.4%; 95.0% CI … pp; …)"
    (r"\(p = [\d.]+(?: after Holm)?,\s*", "("),                   # "(p = 0.041, significant)"
    (r"\bp = [\d.]+(?: after Holm)?:\s*", ""),                      # "p = 0.022: significant"
    (r"\bmean [+-]?[\d.]+,\s*", ""),                                # sentiment's "(mean +0.234, 31.9 % negative"
    (r"\bMarkov \(order \d\) credits\b", "Data-driven attribution credits"),
    (r"\bShapley, which compares (.+?), gives\b", r"Comparing \1 gives"),
    (r"\bShapley gives\b", "Comparing journeys with and without each channel gives"),
    (r"\s*\(see metrics\.dropped\)", " (listed below)"),
    (r",?\s*(?:with\s+)?\(?\d+% power,? (?:at )?α = [\d.]+\)?(?: \(Bonferroni over arms\))?", ""),
    (r"\s*\(see the fixed column\)", ""),
]]
SAME_BEST = re.compile(r"Best (\w[\w ]*): (.+?) \(([^()]+)\); weakest: \2 \(\3\)\.?")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“(])")
TABLE_ROWS = 10
CELL = 60


# ---- numbers as the tools write them ----------------------------------------------------------------------
def num(x) -> str:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if float(x).is_integer() and abs(x) >= 1:
        return f"{int(x):,}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}" if abs(x) >= 1 else f"{x:.3g}"


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


# ---- the summary without model terms ------------------------------------------------------------------------
def plain_sentences(text: str) -> list[str]:
    """The summary's sentences a marketer reads: reworded where a model term is only an aside, dropped where
    the sentence is about the model, and "best X: A; weakest: A" dropped when A is the only entity."""
    for pattern, repl in REWORDS:
        text = pattern.sub(repl, text)
    text = SAME_BEST.sub("", text)
    return [s.strip() for s in SENTENCE.split(text.strip()) if s.strip() and not MODEL_TERMS.search(s)]


def plain_text(text: str) -> str:
    return " ".join(plain_sentences(text))


# ---- findings and next steps, one reader per tool -----------------------------------------------------------
Lead = tuple[str | None, str | None]


def _campaigns(res: dict) -> Lead:
    m, summary = res.get("metrics") or {}, res.get("summary") or ""
    best = re.search(r"Best ROAS: (.+?) \(([^()]+)\); weakest: (.+?) \(([^()]+)\)", summary)
    if best and best.group(1) != best.group(3):
        return (f"{best.group(1)} had the best return on ad spend (ROAS {best.group(2)}); {best.group(3)} the "
                f"weakest ({best.group(4)}).",
                f"consider moving budget from {best.group(3)} toward {best.group(1)}; ask how next month's budget "
                "should move to size the shift.")
    change = (m.get("change_vs_previous") or {}).get("roas")
    if isinstance(m.get("roas"), int | float) and isinstance(change, int | float):
        return (f"ROAS was {m['roas']:.2f} on spend of {num(m.get('spend', 0))}, {change * 100:+.1f}% versus "
                "the previous period.",
                "compare it with the other channels, or ask where the budget should move.")
    return None, None


def _segments(res: dict) -> Lead:
    rows = [r for r in res.get("data") or [] if isinstance(r.get("revenue_share"), int | float)]
    if not rows:
        return None, None
    top = max(rows, key=lambda r: r["revenue_share"])
    name = top.get("segment_name") or top.get("segment_id")
    return (f"The most valuable segment is {name}: {pct(top['revenue_share'])} of revenue from {pct(top['share'])} "
            "of customers.",
            f"protect {name} first; save any segment as an audience to target it (ask to save it).")


def _churn(res: dict) -> Lead:
    m = res.get("metrics") or {}
    if "high_risk" not in m:
        return None, None
    at_risk = f"; the value at risk among them is {num(m['value_at_risk_high'])}" if m.get("value_at_risk_high") \
        else ""  # (their trailing-year revenue × churn probability: not the revenue they hold, as the result says)
    return (f"{num(m['high_risk'])} customers are at high risk of leaving{at_risk}.",
            "save the high-risk customers as a win-back audience and start the win-back sequence.")


def _leads(res: dict) -> Lead:
    m = res.get("metrics") or {}
    hot = (m.get("bands") or {}).get("hot")
    if hot is None or "open_leads" not in m:
        return None, None
    return (f"{num(hot)} of {num(m['open_leads'])} open leads are hot.",
            "have sales call the hot leads first, highest probability first (the rows are in that order).")


def _clv(res: dict) -> Lead:
    m = res.get("metrics") or {}
    if "top_decile_share" not in m:
        return None, None
    if m.get("among_customers"):  # asked about a population ("which of those are worth the most?")
        return (f"Those {num(m['among_customers'])} customers hold {pct(m['among_share_of_clv'])} of predicted value "
                f"({num(m['among_clv_total'])} over the next {num(m.get('horizon_days', 365))} days); the most "
                "valuable are listed first.",
                "target the most valuable of them first (a win-back offer is worth most where value is highest).")
    return (f"The top 10 % of customers hold {pct(m['top_decile_share'])} of predicted value "
            f"({num(m.get('clv_total', 0))} over the next {num(m.get('horizon_days', 365))} days).",
            "look after the top decile (loyalty or VIP treatment) before spending to acquire look-alikes.")


def _attribution(res: dict) -> Lead:
    rows = [r for r in res.get("data") or [] if r.get("model") == "markov" and isinstance(r.get("share"), float)]
    if not rows:
        return None, None
    top = max(rows, key=lambda r: r["share"])
    name = top.get("channel") or top.get("campaign_id") or top.get("campaign")  # by channel, or by campaign
    if not name:
        return None, None
    return (f"{name} earns the largest share of credit for conversions ({pct(top['share'])}).",
            f"test {name}'s real effect with a holdout experiment before moving budget on this.")


def _experiment(res: dict) -> Lead:
    m = res.get("metrics") or {}
    control, metric = m.get("control", "control"), m.get("primary_metric", "the primary metric")
    if m.get("srm"):
        return ("The split of participants between arms is off, so this test's result cannot be trusted.",
                "check how participants were assigned before reading the result.")
    if m.get("verdict") == "winner" and m.get("winner"):
        return (f"{m['winner']} beats {control} on {metric}.",
                f"roll out {m['winner']}, and keep a small holdout to confirm the lift holds.")
    if m.get("verdict"):
        mde = re.search(r"detect lifts of about ([+-]?[\d.]+ pp)", res.get("summary") or "")
        could = f"this test could only detect lifts of about {mde.group(1)}, so " if mde else ""
        return (f"No arm beats {control} on {metric}: the differences are within noise.",
                f"do not call a winner; {could}run the test longer or try a bolder change.")
    return None, None


def _plan(res: dict) -> Lead:
    m = res.get("metrics") or {}
    if isinstance(m.get("mde"), int | float):
        return (f"With {num(m.get('sample_size_control', 0))} participants per arm, the smallest lift you can "
                f"reliably detect is {m['mde'] * 100:+.2f} pp.",
                "if you expect a smaller effect, plan for more participants or a bolder change.")
    if "total_sample_size" not in m or "sample_size_per_arm" not in m:
        return None, None
    weeks = f", about {num(m['duration_weeks'])} weeks at your daily traffic" if m.get("duration_weeks") else ""
    return (f"You need {num(m['total_sample_size'])} participants in total ({num(m['sample_size_per_arm'])} per "
            f"arm){weeks}.", "check that you can reach that many participants in a reasonable time before launching.")


def _budget(res: dict) -> Lead:
    m = res.get("metrics") or {}
    up = [r["channel"] for r in res.get("data") or [] if (r.get("change") or 0) > 0]
    if not up or not isinstance(m.get("predicted_gain"), int | float):
        return None, None
    return (f"Move budget toward {', '.join(up)}: predicted revenue {m['predicted_gain']:+,.0f} in total versus the "
            "current split.", "ask to apply the recommended split; an approver sees it before anything changes.")


def _anomalies(res: dict) -> Lead:
    m = res.get("metrics") or {}
    n = m.get("anomalies")
    if n is None:
        return None, None
    if not n:
        return "Nothing unusual: every day was within its expected range.", None
    return (f"{num(n)} unusual {'day' if n == 1 else 'days'} found.",
            "check tracking, budgets and campaign changes on those dates before acting.")


def _sentiment(res: dict) -> Lead:
    m = re.search(r"Worst aspect: (\w[\w ]*) \((?:mean [^,]+, )?([\d.]+ %) negative", res.get("summary") or "")
    if not m:
        return None, None
    return (f"Customers complain most about {m.group(1)} ({m.group(2)} of those mentions are negative).",
            f"fix what goes wrong with {m.group(1)} first; the negative phrases below say what people meet.")


def _content(res: dict) -> Lead:
    m, rows = res.get("metrics") or {}, res.get("data") or []
    if not rows:
        return None, None
    channel = str(m.get("channel", "")).replace("_", " ")
    return (f"{len(rows)} compliant {channel} variants, strongest first.",
            "A/B test the top two on a slice of the audience before the full send.")


def _knowledge(res: dict) -> Lead:
    n = len(res.get("data") or [])
    return (f"{n} passage{'s' if n != 1 else ''} from the knowledge base, best match first." if n else None,
            None)


def _query(res: dict) -> Lead:
    m = res.get("metrics") or {}
    rows = m.get("rows", len(res.get("data") or []))
    tables = ", ".join(m.get("tables") or []) or "the warehouse"
    return f"{num(rows)} {'row' if rows == 1 else 'rows'} from {tables}.", None


LEADS: dict[str, Callable[[dict], Lead]] = {
    "campaign_report": _campaigns, "segment_customers": _segments, "score_churn": _churn, "score_leads": _leads,
    "predict_clv": _clv, "attribute_conversions": _attribution, "analyze_experiment": _experiment,
    "plan_experiment": _plan, "allocate_budget": _budget, "detect_anomalies": _anomalies,
    "analyze_sentiment": _sentiment, "generate_content_variants": _content, "search_knowledge": _knowledge,
    "query_data": _query}
REPEATS = {"campaign_report": re.compile(r"^Best \w+:"), "analyze_experiment": re.compile(r"^Verdict:"),
           "detect_anomalies": re.compile(r"^Check tracking")}
"""Summary sentences the finding or the next step already says."""
OWN_SUMMARY = {"search_knowledge", "query_data", "generate_content_variants"}
"""Tools whose list says it all: their summary (scores, row × column counts, timing) stays in the evidence."""


# ---- lists shown in the chat itself -------------------------------------------------------------------------
def cell(value) -> str:
    """A table cell: numbers with thousands separators and at most 4 decimals, text on one line, bounded."""
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    else:
        text = num(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(
            "" if value is None else value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def markdown_table(rows: list[dict], limit: int = TABLE_ROWS) -> str:
    """The first `limit` rows as a Markdown table (the panel and the CSV hold them all)."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows[:limit]]
    more = f"\n\n_First {limit} of {len(rows)} rows; all of them are in the Result panel._" if len(rows) > limit \
        else ""
    return "\n".join(lines) + more


def _variants(res: dict) -> str:
    lines = []
    for i, r in enumerate(res.get("data") or [], 1):
        rate = f" (predicted open rate {pct(r['predicted_open_rate'])})" if isinstance(
            r.get("predicted_open_rate"), float) else ""
        lines.append(f"{i}. “{r.get('text', '')}”{rate}")
    dropped = (res.get("metrics") or {}).get("dropped") or []
    if dropped:
        lines.append("\nDropped for breaking brand rules:")
        lines += [f"- “{d.get('text', '')}”: {', '.join(d.get('reasons') or [])}" for d in dropped[:5]]
    return "\n".join(lines)


def snippet(text: str, limit: int = 260) -> str:
    """A passage's opening as one line: Markdown tables left out, bullets kept as "•", cut after a sentence or
    a word (never inside a number, so every figure shown is one the passage holds)."""
    text = re.sub(r"```.*?(?:```|\Z)", " ", str(text), flags=re.S)  # code (YAML rules) reads badly on one line
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("|")]
    flat = " ".join(re.sub(r"^\s*[*-]\s+", "• ", ln).strip() for ln in lines if ln.strip())
    if len(flat) <= limit:
        return flat
    head = flat[:limit]
    end = max(head.rfind(". "), head.rfind("! "), head.rfind("? "))
    if end > limit // 2:
        return head[: end + 1]
    words = head.rsplit(" ", 1)[0].split(" ")
    while words and re.search(r"\d", words[-1]):
        words.pop()
    return " ".join(words).rstrip(",;:") + " …"


def _passages(res: dict) -> str:
    items = []
    for r in res.get("data") or []:
        where = " › ".join(dict.fromkeys(str(r[k]) for k in ("title", "section") if r.get(k)))
        text = snippet(r.get("text", ""))
        text = text or "(a table or code block: see the Result panel)"
        items.append(f"- **{where or r.get('document', 'passage')}**: {text} _(source: {r.get('document', '?')})_")
    return "\n".join(items)


def _rows(res: dict) -> str:
    return markdown_table(res.get("data") or [])


LISTS: dict[str, Callable[[dict], str]] = {"generate_content_variants": _variants, "search_knowledge": _passages,
                                           "query_data": _rows}


# ---- the answer -----------------------------------------------------------------------------------------------
def result_block(name: str, res: dict) -> str:
    """One result as a marketer reads it: finding, next step, key numbers, list, caveats."""
    metrics = res.get("metrics") or {}
    try:
        finding, step = LEADS.get(name, lambda r: (None, None))(res)
    except (KeyError, TypeError, ValueError, AttributeError):  # a result shaped unlike its reader expects:
        finding, step = None, None                              # the key numbers still tell it
    if metrics.get("reliable") is False:
        finding = (finding + " " if finding else "") + "These results are not reliable enough to act on."
        step = "do not target anyone on them until the data improves."
    elif isinstance(rec := metrics.get("recommendation"), str) and rec:
        step = rec
    head = []
    if finding:
        first = finding.split(" ", 1)[0]
        head.append(f"**{finding if '_' in first else finding[:1].upper() + finding[1:]}**")
    if step:
        head.append(f"Next step: {step[:1].lower() + step[1:]}" if not step[:2].isupper() else f"Next step: {step}")
    parts = [" ".join(head)] if head else []
    if name not in OWN_SUMMARY or not (res.get("data")):
        repeat = REPEATS.get(name)
        numbers = " ".join(s for s in plain_sentences(res.get("summary") or "") if not (repeat and repeat.search(s)))
        if numbers:
            parts.append(f"_{name.replace('_', ' ')}_ · {numbers}")
    if (listing := LISTS.get(name, lambda r: "")(res)):
        parts.append(listing)
    parts += [f"Caveat: {plain_text(w) or w}" for w in (res.get("warnings") or [])[:3]]
    return "\n\n".join(parts)


def compose_answer(calls: list[dict], state: dict, allowed_hosts: Iterable[str] = ()) -> str:
    """The answer, from templates over this turn's results: finding, next step, key numbers, lists, caveats.
    Links stay clickable only to `allowed_hosts` (none by default: a tool's text never needs one)."""
    parts = []
    for c in calls:
        if not c.get("ok"):
            parts.append(f"**{c['name'].replace('_', ' ')}** could not run: {c.get('error')}")
            continue
        parts.append(result_block(c["name"], c.get("result") or {}))
    decision = state.get("decision")
    if decision and decision.get("type") == "reject":
        parts.append(f"The action was rejected by {decision.get('user')}; nothing was executed.")
    answer = "\n\n".join(p for p in parts if p) if parts else "Nothing to report."
    return sanitize_answer(answer, [c.get("result") for c in calls if c.get("ok")], allowed_hosts)[0]
