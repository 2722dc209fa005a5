"""How the offline planner reads what people actually type (issue 15, third round): slips of the keyboard, counts
and rates by a column, facts stated beside a question, clauses that point back, "+" between two questions, media the
warehouse does not hold, negated choices, definitions, audiences that do not exist, and "apply the recommendation"
after a plan. Each test names the general mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

import json

import pytest

from agent.planners.clarify import unknown_audience
from agent.planners.context_budget import PREFIX
from agent.planners.extract.args import extract_args
from agent.planners.extract.names import enum_choices, negated
from agent.planners.extract.spelling import correct, one_edit
from agent.planners.extract.sql import compose_sql, listed_values
from agent.planners.intents import clauses
from agent.planners.offline import OfflinePlanner
from agent.planners.routing import out_of_scope
from agent.planners.steps import _out_of_range
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import TODAY, VOCAB, agenda, names

tools, env = mechanisms.tools, mechanisms.env  # the same fixtures: the registry, and the planner's fixed vocabulary


# --- slips of the keyboard -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "near"), [("affilate", "affiliate", True), ("serach", "search", True),
                                              ("searhc", "search", True), ("socail", "social", True),
                                              ("search", "search", False), ("display", "video", False),
                                              ("seach", "search", True), ("researched", "search", False)])
def test_one_edit_is_one_letter_missing_added_changed_or_swapped(a, b, near):
    assert one_edit(a, b) is near


def test_a_slip_in_a_known_word_is_mended_and_english_words_are_not(tools):
    assert correct("affilate cpa yesterday?", tools, VOCAB) == "affiliate cpa yesterday?"
    assert correct("CPA on serach in september", tools, VOCAB) == "CPA on search in september"
    # "raise" is one letter from "praise" (a sentiment word) but is English: left alone; so are names and quotes
    for text in ("Raise search by 10 percent", "send 'Serach party' to Winback October", "the Affilate Summit"):
        assert correct(text, tools, VOCAB) == text


# --- counts and rates by a column (query_data) --------------------------------------------------------------------

def test_a_column_description_that_lists_values_gives_filters():
    assert listed_values("open, won or lost.") == ["open", "won", "lost"]
    assert listed_values("Sales channel (web, app, store).") == ["web", "app", "store"]
    assert listed_values("Industry.") == []
    assert "status = 'open'" in compose_sql("how many open leads do we have per industry")
    assert "event_type = 'support_ticket'" in compose_sql("How many support tickets were logged in September?")
    assert "company_size = '1000+'" in compose_sql("how many leads from 1000+ employee companies by industry")


def test_a_rate_by_a_column_is_the_share_of_a_flag_with_its_count_best_first():
    sql = compose_sql("Which newsletter subject lines had the highest open rates? Top 10 is fine.")
    assert sql.startswith("SELECT subject_line AS subject_line, round(100 * avg(CASE WHEN opened")
    assert "count(*) AS n FROM email_sends GROUP BY 1 ORDER BY 2 DESC LIMIT 10" in sql
    assert "ORDER BY 2 ASC" in compose_sql("which subject lines had the lowest click rate?")


def test_a_count_by_a_column_goes_to_query_data_not_to_the_model_its_words_fit(tools, env):
    assert names(agenda("quick one: how many open leads do we have per industry", tools, env)) == ["query_data"]
    assert names(agenda("how many hot leads do we have?", tools, env)) == ["score_leads"]
    assert names(agenda("conversions by channel last month", tools, env)) == ["campaign_report"]


# --- what a message says besides its question -------------------------------------------------------------------

def test_a_stated_fact_is_context_for_the_question_not_a_question(tools, env):
    steps = agenda("we get about 4k visitors a day. how long would a test need to run to pick up +0.5pp on a 5% "
                   "baseline?", tools, env)
    assert names(steps) == ["plan_experiment"]
    assert steps[0]["args"] == {"baseline": 0.05, "mde": 0.005, "daily_traffic": 4000.0}
    steps = agenda("Planning a 3-arm subject line test (control + 2 variants). Baseline open rate is 22% and we "
                   "want to spot +2pp. Sample size?", tools, env)
    assert names(steps) == ["plan_experiment"] and steps[0]["args"]["arms"] == 3


def test_a_clause_that_points_back_continues_the_analysis_before_it(tools, env):
    steps = agenda("whats our CPA on search in september? and how does it compare to august", tools, env)
    assert names(steps) == ["campaign_report"] and steps[0]["args"]["channels"] == ["search"]


def test_plus_and_ampersand_join_two_questions():
    assert len(clauses("what are customers complaining about most + what does the brand guide say about "
                       "complaints?")) == 2
    assert len(clauses("spend & ROAS by channel")) == 1


# --- what the warehouse does not hold ----------------------------------------------------------------------------

def test_media_the_warehouse_has_no_channel_for_are_out_of_scope():
    why = out_of_scope("How many TV GRPs did we buy in Q3?", VOCAB["channel"])
    assert why and "GRP or TV" in why and "search" in why
    assert out_of_scope("compare search with our radio spend", VOCAB["channel"]) is None  # a held channel named
    assert out_of_scope("How many TV GRPs did we buy?", ["tv", "search"]) is None  # a warehouse that holds TV


# --- fields -------------------------------------------------------------------------------------------------------

def test_bounds_include_exclusive_ones():
    prop = {"exclusiveMaximum": 1, "exclusiveMinimum": 0, "type": "number"}
    assert _out_of_range(1000.0, prop) and _out_of_range(1, prop) and not _out_of_range(0.7, prop)


def test_a_distinctive_head_word_names_its_field(tools):
    args = extract_args("Rank customers by expected 2-year profit at a 35% margin, discounting future value at 8% a "
                        "year.", tools["predict_clv"].json_schema(), TODAY, VOCAB, tools["predict_clv"].synonyms)
    assert (args["horizon_days"], args["margin"], args["discount_rate"]) == (730, 0.35, 0.08)


def test_a_negated_choice_is_not_chosen():
    assert negated("forget rfm — cluster on behaviour", "rfm")
    assert not negated("use rfm, not clusters", "rfm")
    syn = {"behavioral": ("behaviour", "cluster"), "rfm": ("rfm",)}
    assert enum_choices("Forget RFM — cluster customers on their actual behaviour", ["rfm", "behavioral"],
                        syn) == ["behavioral"]


def test_a_superlative_names_the_value(tools):
    args = extract_args("draft a campaign plan: SMS promo to our highest-value customers, max spend 2k",
                        tools["plan_campaign"].json_schema(), TODAY, VOCAB, tools["plan_campaign"].synonyms)
    assert args["source"] == "clv" and args["budget"] == 2000.0 and args["channel"] == "sms"


def test_a_window_between_two_days(tools):
    args = extract_args("Plan a cross-sell email to the Champions segment that goes out between Oct 12 and Oct 16.",
                        tools["plan_campaign"].json_schema(), TODAY, VOCAB, tools["plan_campaign"].synonyms)
    assert (args["send_after"], args["send_before"]) == ("2026-10-12", "2026-10-16")


def test_an_effort_called_a_push_is_not_the_push_channel(tools):
    args = extract_args("Which campaigns had the worst ROAS in Q2, before the Q4 push?",
                        tools["campaign_report"].json_schema(), TODAY, VOCAB, tools["campaign_report"].synonyms)
    assert "channels" not in args


def test_a_definition_is_looked_up_not_reported(tools, env):
    assert names(agenda("How exactly do we define ROAS versus CPA internally?", tools, env)) == ["search_knowledge"]
    assert names(agenda("what is our ROAS by channel", tools, env)) == ["campaign_report"]


# --- actions ------------------------------------------------------------------------------------------------------

def test_an_audience_the_warehouse_does_not_hold_is_asked_about_never_replaced(tools, env):
    assert unknown_audience("send the 20% off email to the Gold VIPs audience tomorrow at 10", VOCAB) == "Gold VIPs"
    assert unknown_audience("send it to the Winback October audience", VOCAB) is None
    steps = agenda("send the 20% off email to the Gold VIPs audience tomorrow at 10", tools, env)
    assert names(steps) == ["ask"] and "no audience called 'Gold VIPs'" in steps[0]["ask"]
    assert "Winback October" in steps[0]["ask"]


def test_a_launch_to_people_described_by_risk_launches_a_campaign(tools, env):
    steps = agenda("launch a win-back email to the high-risk customers next Tuesday 9am with a 10% holdout", tools,
                   env)
    assert names(steps) == ["score_churn", "launch_campaign"]
    assert steps[-1]["args"]["holdout_pct"] == 0.1 and steps[-1]["args"]["send_at"] == "2026-10-06T09:00:00"


def test_apply_the_recommendation_after_a_plan_drafts_the_plan(tools, env):
    plan = {"metrics": {"recommendation": {"search": 30000.0, "email": 3000.0}, "horizon_days": 30}}
    messages = [{"role": "user", "content": "how should we rebalance channel budgets for next month?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "function": {"name": "allocate_budget", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": PREFIX + json.dumps(plan)},
                {"role": "assistant", "content": "Move budget toward search."}]
    steps = OfflinePlanner().make_agenda({"question": "ok lets do it, apply the recommendation", "messages": messages,
                                          "last_tool": {"name": "allocate_budget", "args": {}}}, tools, env)
    assert names(steps) == ["update_budget"]
    assert steps[0]["args"]["daily_budgets"] == {"search": 1000.0, "email": 100.0}


def test_an_apostrophe_inside_a_word_opens_no_quote(tools):
    args = extract_args("We don't have a 'Lapsed VIPs' audience yet - please create one from the high churn-risk "
                        "customers (email)", tools["create_audience"].json_schema(), TODAY, VOCAB,
                        tools["create_audience"].synonyms)
    assert args["name"] == "Lapsed VIPs"


def test_no_holdout_is_a_holdout_of_nothing_and_aov_is_an_average(tools):
    args = extract_args("send the push 'Your autumn picks are here' to the Winback October audience on Monday at 9am, "
                        "no holdout", tools["schedule_campaign"].json_schema(), TODAY, VOCAB,
                        tools["schedule_campaign"].synonyms)
    assert args["holdout_pct"] == 0.0
    assert compose_sql("whats our AOV by product category this year").startswith(
        "SELECT category AS category, round(avg(revenue), 2)")


def test_a_plan_asked_for_is_planned_not_launched(tools, env):
    steps = agenda("Can you put together a campaign plan for the Winback October audience? push this time", tools,
                   env)
    assert names(steps) == ["plan_campaign"] and steps[0]["args"]["channel"] == "push"
    assert steps[0]["args"]["saved_audience"] == "Winback October" and steps[0]["args"]["source"] == "audience"
    # … but a request to name what it makes is an action, whatever noun it shares with an analysis
    steps = agenda("Make an SMS audience called 'Champions SMS' from the Champions RFM segment.", tools, env)
    assert names(steps)[-1] == "create_audience" and steps[-1]["args"]["name"] == "Champions SMS"


def test_a_bound_said_after_an_analysis_is_its_constraint_not_an_instruction(tools, env):
    steps = agenda("Optimize the channel mix for conversions rather than revenue, and keep every channel within 10% "
                   "of where it is today.", tools, env)
    assert names(steps) == ["allocate_budget"] and steps[0]["args"]["max_change"] == 0.1


def test_a_reason_given_is_a_clause_of_its_own(tools, env):
    assert clauses("cut display by 20%, it's saturated anyway") == ["cut display by 20%", "it's saturated anyway"]
    assert names(agenda("cut display by 20%, it's saturated anyway", tools, env)) == ["update_budget"]


def test_since_the_start_of_the_year_is_year_to_date(tools):
    args = extract_args("month-by-month spend and revenue since the start of the year", tools["campaign_report"]
                        .json_schema(), TODAY, VOCAB, tools["campaign_report"].synonyms)
    assert (args["start"], args["group_by"]) == ("2026-01-01", "month")


def test_launch_it_after_a_plan_keeps_the_plans_inputs(tools, env):
    last = {"name": "plan_campaign", "args": {"source": "churn", "channel": "sms", "holdout_pct": 0.1,
                                              "goal": "plan a win-back text for the high-risk churners"}}
    steps = OfflinePlanner().make_agenda({"question": "looks good, launch it", "messages": [], "last_tool": last},
                                         tools, env)
    launch = steps[-1]
    assert launch["name"] == "launch_campaign"
    assert (launch["args"]["channel"], launch["args"]["holdout_pct"], launch["args"]["source"]) == ("sms", 0.1, "churn")
    assert "goal" not in launch["args"] or launch["args"]["goal"] != last["args"]["goal"]  # free text stays behind


def test_a_definition_of_a_word_goes_to_the_glossary(tools, env):
    assert names(agenda("How do we define an 'active customer' internally?", tools, env)) == ["search_knowledge"]


def test_a_quoted_name_before_audience_names_what_to_create(tools, env):
    steps = agenda("We haven't got a 'Dormant Big Spenders' audience - please create one from the high churn-risk "
                   "customers (sms), we'll schedule the send later.", tools, env)
    assert names(steps) == ["score_churn", "create_audience"]
    assert steps[-1]["args"]["name"] == "Dormant Big Spenders" and steps[-1]["args"]["channel"] == "sms"
