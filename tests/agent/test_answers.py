"""Answers a marketer reads: the finding and the next step first, lists in the chat, no model terms, no slips.

Real tool results from the session's demo warehouse (the tools' own functions on a read-only copy), written into
answers by agent/answer.py and checked by the grounding guard like any offline answer; plus small hand-built
results for the wording rules (one channel, a/an, thread titles).
"""

from __future__ import annotations

import re

import pytest

from agent.answer import MODEL_TERMS, compose_answer, markdown_table, plain_sentences
from agent.grounding import Evidence, check_answer
from tools import ToolContext
from tools.registry import get_tool
from ui.present import thread_title, with_article

LEAKS = re.compile(r"BG/NBD|Gamma-Gamma|\balpha\b|R²|\bMAPE\b|\bSRM\b|p-value|\bp = |\bAUC\b|\bCI\b|log-likelihood|"
                   r"metrics\.\w+|Holm", re.I)


def run(con, tmp_path, name: str, **args) -> dict:
    """One tool on the demo warehouse, as the graph records it: {name, args, ok, result}."""
    spec = get_tool(name)
    ctx = ToolContext(home=tmp_path, user="ana", role="approver", thread_id="t-answers")
    result = spec.run(con, args, ctx).model_dump(mode="json")
    return {"name": name, "args": args, "ok": True, "result": result}


NAMES: list[str] = []


def grounded(answer: str, calls: list[dict]) -> bool:
    """The grounding guard's verdict, with the warehouse's names as the runtime gives them (agent/vocab.py)."""
    ev = Evidence(results=[(0, c["result"]) for c in calls], questions=["q"], turn=0, names=NAMES)
    verdict = check_answer(answer, ev)
    assert verdict.grounded, verdict.removed
    return verdict.grounded


@pytest.fixture
def rw(demo_rw):
    if not NAMES:
        NAMES.extend(r[0] for r in demo_rw.execute("SELECT DISTINCT channel FROM ad_spend UNION ALL "
                                                   "SELECT experiment_id FROM experiments").fetchall())
    return demo_rw


# ---- one channel: no "best … weakest …" of the same channel ------------------------------------------------------
def test_a_single_channel_never_reads_best_and_weakest(rw, tmp_path):
    call = run(rw, tmp_path, "campaign_report", start="2026-07-01", end="2026-09-30", channels=["social"])
    assert len(call["result"]["data"]) == 1
    answer = compose_answer([call], {})
    assert "weakest" not in answer.lower() and "best roas" not in answer.lower(), answer
    assert answer.startswith("**ROAS was") and "Next step:" in answer
    assert grounded(answer, [call]), answer


def test_several_channels_lead_with_best_and_weakest_and_a_next_step(rw, tmp_path):
    call = run(rw, tmp_path, "campaign_report", start="2026-08-01", end="2026-08-31", group_by="channel")
    answer = compose_answer([call], {})
    first = answer.split("\n\n")[0]
    assert re.match(r"\*\*\w+ had the best return on ad spend \(ROAS [\d.]+\); \w+ the weakest", first), first
    assert "Next step:" in first
    assert answer.count("Best ROAS") == 0  # said once, in the finding, not again in the numbers
    assert grounded(answer, [call]), answer


def test_same_best_and_weakest_sentence_is_dropped_from_any_summary():
    text = "Spend 10. Best ROAS: email (15.88); weakest: email (15.88). Done."
    assert plain_sentences(text) == ["Spend 10.", "Done."]
    assert plain_sentences("Best ROAS: email (15.88); weakest: display (0.75).") != []


# ---- a / an ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("word", "said"), [("analyst", "an analyst"), ("approver", "an approver"),
                                            ("viewer", "a viewer"), ("editor", "an editor"), ("user", "a user"),
                                            ("hour", "an hour"), ("marketer", "a marketer")])
def test_article(word, said):
    assert with_article(word) == said


# ---- lists in the chat ---------------------------------------------------------------------------------------------
def test_every_subject_line_is_in_the_chat(rw, tmp_path):
    call = run(rw, tmp_path, "generate_content_variants", channel="email_subject", goal="win back lapsed customers",
               offer="15% off", n=3, candidates=["GUARANTEED savings!!! Open now", "We miss you: 15% off"])
    answer = compose_answer([call], {})
    texts = [r["text"] for r in call["result"]["data"]]
    assert len(texts) == 3 and all(f"“{t}”" in answer for t in texts), answer
    assert [ln[:3] for ln in answer.splitlines() if re.match(r"\d\. ", ln)] == ["1. ", "2. ", "3. "]
    assert "metrics.dropped" not in answer and "AUC" not in answer
    if call["result"]["metrics"]["dropped"]:
        assert "Dropped for breaking brand rules" in answer and "GUARANTEED" in answer
    assert grounded(answer, [call]), answer


def test_query_rows_are_a_table_in_the_chat(rw, tmp_path):
    sql = "SELECT country, ROUND(AVG(revenue), 2) AS avg_revenue FROM orders JOIN customers USING (customer_id) " \
          "GROUP BY 1 ORDER BY 2 DESC"
    call = run(rw, tmp_path, "query_data", sql=sql)
    answer = compose_answer([call], {})
    rows = call["result"]["data"]
    assert "row(s) ×" not in answer and "| country | avg_revenue |" in answer, answer
    table = [ln for ln in answer.splitlines() if ln.startswith("| ") and "country" not in ln and "---" not in ln]
    assert len(table) == min(len(rows), 10)
    assert table[0] == f"| {rows[0]['country']} | {rows[0]['avg_revenue']:,.2f} |"
    assert grounded(answer, [call]), answer


def test_a_long_result_shows_ten_rows_and_says_where_the_rest_are():
    rows = [{"week": f"W{i}", "orders": i * 1000, "note": "a|b " * 30} for i in range(1, 26)]
    table = markdown_table(rows)
    assert table.count("\n| W") == 10 and "First 10 of 25 rows" in table
    assert "a\\|b" in table and "…" in table  # pipes escaped, long cells cut
    assert "| W3 | 3,000 |" in table


def test_knowledge_passages_are_listed_with_their_sources(rw, tmp_path):
    call = run(rw, tmp_path, "search_knowledge", query="win-back playbook offers")
    answer = compose_answer([call], {})
    hits = call["result"]["data"]
    assert hits and answer.count("_(source: ") == len(hits), answer
    assert all(h["document"] in answer for h in hits) and "(score" not in answer


# ---- no model terms in the chat ------------------------------------------------------------------------------------
def test_clv_answer_leads_with_value_and_holds_no_model_terms(rw, tmp_path):
    call = run(rw, tmp_path, "predict_clv", horizon_days=365)
    assert "BG/NBD" in call["result"]["summary"]  # the evidence keeps them …
    answer = compose_answer([call], {})
    assert not LEAKS.search(answer), LEAKS.search(answer)  # … the chat does not
    assert not MODEL_TERMS.search(answer)
    assert answer.startswith("**The top 10 % of customers hold") and "Next step:" in answer
    assert grounded(answer, [call]), answer


@pytest.mark.parametrize("experiment", ["EXP-FREESHIP", "EXP-SUBJECT"])
def test_experiment_answer_says_the_verdict_without_statistics_jargon(rw, tmp_path, experiment):
    call = run(rw, tmp_path, "analyze_experiment", experiment_id=experiment)
    assert re.search(r"p = |CI", call["result"]["summary"])
    answer = compose_answer([call], {})
    assert not LEAKS.search(answer), (LEAKS.search(answer), answer)
    verdict = call["result"]["metrics"]["verdict"]
    assert answer.startswith("**" + ("No arm beats" if verdict != "winner" else call["result"]["metrics"]["winner"]))
    assert "Next step:" in answer and grounded(answer, [call]), answer


def test_budget_and_churn_answers_keep_fit_statistics_out(rw, tmp_path):
    for name, args in (("allocate_budget", {}), ("score_churn", {})):
        call = run(rw, tmp_path, name, **args)
        answer = compose_answer([call], {})
        assert not LEAKS.search(answer), (name, LEAKS.search(answer), answer)
        assert answer.startswith("**") and grounded(answer, [call]), answer


def test_a_failed_call_and_an_unknown_tool_still_answer():
    failed = {"name": "campaign_report", "ok": False, "error": "no data for 1999"}
    other = {"name": "new_tool", "ok": True, "result": {"summary": "3 things. R² 0.9 on the fit.", "metrics": {}}}
    answer = compose_answer([failed, other], {})
    assert "could not run: no data for 1999" in answer and "3 things." in answer and "R²" not in answer


# ---- thread titles -------------------------------------------------------------------------------------------------
def test_thread_titles_are_short_and_tell_threads_apart():
    a = thread_title("How did our channels perform last month?", "campaign_report")
    b = thread_title("How did search do in September?", "campaign_report")
    c = thread_title("Write 5 subject lines for the win-back campaign with 15% off please", "generate_content_variants")
    assert a == "Campaigns · channels perform last month" and a != b
    assert c.startswith("Copy · Write 5 subject lines") and len(c) <= 48 and c.endswith("…")
    assert thread_title("", None) == "New thread" and thread_title("hi") == "Hi"
    assert len(thread_title("x" * 500, "query_data")) <= 48


def test_tiles_leave_out_candidate_counts_when_no_drafts_were_supplied():
    from ui.present import key_metrics

    result = {"metrics": {"variants": 3, "candidates_checked": 0, "candidates_passed": 0},
              "key_metrics": ["variants", "candidates_checked", "candidates_passed"]}
    assert key_metrics(result) == [("Variants", "3")]
    result["metrics"].update(candidates_checked=4, candidates_passed=2)
    assert [k for k, _ in key_metrics(result)] == ["Variants", "Candidates checked", "Candidates passed"]
