"""How the offline planner reads what people write (issue 15, eleventh round, from the misses of blind split M): a
numbered checklist in one message, signed shares, "a total of", ids that hold no numbers, a tool that reads one
thing by id when none is named, "how many … in total", how fresh the data is, the copy we write, a new day for a
drafted send at the same time, plurals of English words, "in some countries", amounts kept aside and said as
points. Each test names the general mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

import pytest

from agent.guardrails import check_input
from agent.planners.extract.spelling import correct, written_out
from agent.planners.extract.sql import compose_sql
from agent.planners.routing import score_tools
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import VOCAB, agenda, names
from tests.agent.test_planner_threads import _drafted

tools, env = mechanisms.tools, mechanisms.env


def _agenda(text: str, tools, env, **state) -> list[dict]:
    return agenda(correct(text, tools, VOCAB), tools, env, **state)  # as the runner reads it


def test_a_numbered_checklist_is_one_request_whose_items_are_its_inputs(tools, env):
    assert written_out("Budget change to make: 1. email +25% 2. social -20% 3. both effective this Friday.") == (
        "Budget change to make: email +25%, social -20%, both effective this Friday.")
    assert written_out("raise search by 1.2% and video by 2.5%") == "raise search by 1.2% and video by 2.5%"
    steps = _agenda("Budget change to make: 1. email +25% 2. social -20% 3. both effective this Friday.", tools, env)
    assert steps == [{"name": "update_budget", "args": {"effective_date": "2026-10-02",
                                                        "daily_budgets": {"email": 125.0, "social": 640.0}}}]
    plan = _agenda("Campaign plan, please: 1. audience = medium churn risk 2. channel = SMS 3. 25% holdout. Don't "
                   "send anything yet.", tools, env)
    assert names(plan) == ["plan_campaign"]
    assert plan[0]["args"] | {"risk_band": "medium", "channel": "sms", "holdout_pct": 0.25} == plan[0]["args"]
    split = _agenda("Budget optimisation: 1. total of 50,000 2. over the next 30 days 3. optimise for conversions, "
                    "not revenue 4. show the split.", tools, env)
    assert split == [{"name": "allocate_budget", "args": {"total_budget": 50000.0, "horizon_days": 30,
                                                          "outcome": "conversions"}}]


def test_an_id_holds_no_number_and_a_tool_for_one_thing_needs_it_named(tools, env):
    launched = mechanisms.PlanEnv(today=mechanisms.TODAY, role="analyst", load_vocab=lambda: {
        **VOCAB, "campaign_id": [*VOCAB["campaign_id"], "NA-2026-06"]})
    steps = _agenda("Pull the incremental numbers for NA-2026-06 versus the customers we held back.", tools, launched)
    assert steps == [{"name": "measure_campaign", "args": {
        "campaign_id": "NA-2026-06", "goal": "Pull the incremental numbers for NA-2026-06 versus the customers we "
                                              "held back."}}]
    both = _agenda("How did email do for us last month, and are the reviews getting nastier?", tools, env)
    assert names(both) == ["campaign_report", "analyze_sentiment"]
    assert names(_agenda("did the campaign work?", tools, env)) == ["measure_campaign"]


def test_counts_in_total_and_how_fresh_the_data_is_are_one_select_each():
    assert compose_sql("How many leads have we had from webinars in total") == (
        "SELECT count(*) AS n FROM leads WHERE source = 'webinar'")
    assert compose_sql("How fresh is the data? What's the date of the most recent order in the warehouse?") == (
        "SELECT max(order_date) AS max_order_date FROM orders")
    assert compose_sql("what is the highest order value?") == "SELECT round(max(revenue), 2) AS max_revenue FROM orders"


@pytest.mark.parametrize("text, rule", [("Which phrases keep turning up in the unhappy reviews? I'd like to steer our "
                                         "copy away from them.", None),
                                        ("COPY customers TO '/tmp/x.csv'", "file_access")])
def test_the_copy_we_write_is_no_file_copy(text, rule):
    verdict = check_input(text)
    assert (verdict.rule if verdict else None) == rule


def test_a_new_day_for_a_drafted_send_keeps_its_time_and_takes_the_other_changes(tools, env):
    draft = {"audience": "Winback October", "channel": "email", "variant": "We saved your favourites",
             "send_at": "2026-10-01T10:30:00", "holdout_pct": 0.1}
    messages = _drafted("schedule_campaign", draft, said="Schedule 'We saved your favourites' to Winback October "
                                                         "on Thursday at 10:30am with a 10% holdout.")
    steps = _agenda("Actually make it Friday, same time, and hold back 20%.", tools, env, messages=messages)
    assert steps[0]["name"] == "schedule_campaign"
    assert (steps[0]["args"]["send_at"], steps[0]["args"]["holdout_pct"]) == ("2026-10-02T10:30:00", 0.2)


def test_words_people_say_plurals_countries_asides_and_points(tools, env):
    assert correct("we'd need heaps of people", tools, VOCAB) == "we'd need heaps of people"
    steps = _agenda("Reckon we'd need heaps of people to pick up half a percentage point on a 3% purchase rate? How "
                    "many per group roughly?", tools, env)
    assert steps[0]["args"] | {"baseline": 0.03, "mde": 0.005} == steps[0]["args"]
    last = {"name": "analyze_experiment", "args": {"experiment_id": "EXP-FREESHIP"}}
    assert _agenda("Did it work better in some countries than others?", tools, env, last_tool=last) == [
        {"name": "analyze_experiment", "args": {"experiment_id": "EXP-FREESHIP", "segment_by": "country"}}]
    send = _agenda("Fire off an SMS to Winback October tomorrow at 6pm saying 'Still keen? Your picks are waiting' - "
                   "keep 5% aside.", tools, env)
    assert send[0]["args"]["holdout_pct"] == 0.05
    assert score_tools("Are exclamation marks in subject lines on-brand, or does our style guide tell us to avoid "
                       "them?", tools)[0][0] == "search_knowledge"


def test_numbered_items_that_start_with_a_verb_are_steps_and_a_quoted_tonight_is_no_send_time(tools, env):
    text = "Audience build, in order: 1. RFM segmentation 2. take the Champions segment 3. save it as 'Champions SMS'."
    assert written_out(text) == ("Audience build, in order: RFM segmentation. take the Champions segment. save it "
                                 "as 'Champions SMS'.")
    assert names(_agenda(text, tools, env)) == ["segment_customers", "create_audience"]
    send = _agenda("Schedule 'Last chance: 20% off ends tonight' by email to Winback October for Friday 09:00 with a "
                   "10% holdout.", tools, env)
    assert send[0]["args"]["send_at"] == "2026-10-02T09:00:00"
