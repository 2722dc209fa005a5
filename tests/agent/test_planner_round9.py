"""How the offline planner reads what people write (issue 15, ninth round, from the misses of blind split K): dictated
"e mail" and "ten a m", figures the report gives said as a clause of their own, verbs that name attribution and
anomaly detection with words between, "not the channel, each campaign", "we take … and we give them", a holdout
that is no percentage inside the quoted message, "our 500 highest", several rates per send, and a customer number
said in words. Each test names the general mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

import pytest

from agent.guardrails import check_input
from agent.planners.extract.instructions import budget_changes, mood
from agent.planners.extract.spelling import correct, written_out
from agent.planners.extract.sql import compose_sql
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import CURRENT, VOCAB, agenda, names

tools, env = mechanisms.tools, mechanisms.env


def test_dictated_email_and_clock_times_are_written_out():
    assert written_out("send an e mail on friday at ten a m") == "send an email on friday at 10am"
    assert written_out("the e-mail channel at 9 p.m.") == "the email channel at 9pm"
    assert written_out("I am at home at one") == "I am at home at one"


def test_figures_the_report_gives_said_alone_are_part_of_the_report(tools, env):
    text = correct("How did the e-mail chanel perform last month? Spend vs revenue, and did CTR hold up?", tools, VOCAB)
    steps = agenda(text, tools, env)
    assert names(steps) == ["campaign_report"] and steps[0]["args"]["channels"] == ["email"]


@pytest.mark.parametrize("text, tool, arg", [
    ("Which campaigns help more the customers to buy? Not the channel, each single campaign please.",
     "attribute_conversions", ("level", "campaign")),
    ("Flag any days in the last six months where our cost per acquisition went haywire.", "detect_anomalies",
     ("metric", "cpa")),
])
def test_verbs_with_words_between_name_attribution_and_anomaly_detection(text, tool, arg, tools, env):
    steps = agenda(text, tools, env)
    assert names(steps) == [tool] and steps[0]["args"][arg[0]] == arg[1]


def test_we_take_and_we_give_them_is_a_budget_move():
    text = "Please we take 700 euro per week from display and we give them to search, from tomorrow."
    assert mood(text) == "instruction"
    assert budget_changes(text, list(CURRENT), CURRENT) == {"display": 400.0, "search": 1100.0}
    assert mood("we spent too much on display last month") == "question"


def test_a_percentage_inside_the_quoted_message_is_not_the_holdout(tools, env):
    steps = agenda("Please program an SMS to the audience Winback October for Monday 5 October at 18:00, the text is "
                   "'Your 10% code is waiting'. Keep 20 percent apart for measure.", tools, env)
    assert steps[0]["args"]["holdout_pct"] == 0.2 and steps[0]["args"]["send_at"] == "2026-10-05T18:00:00"


def test_our_500_highest_is_the_top_n(tools, env):
    steps = agenda("Save our 500 highest predicted-lifetime-value customers as an audience called 'Top500 CLV' so "
                   "finance can track them.", tools, env)
    assert names(steps) == ["predict_clv", "create_audience"]
    assert steps[1]["args"] | {"name": "Top500 CLV", "source": "clv", "top_n": 500} == steps[1]["args"]


def test_several_rates_per_send_are_one_select_and_send_by_send_is_no_instruction():
    sql = compose_sql("What open rate, click rate and unsubscribe rate did each newsletter get, send by send?")
    assert sql.startswith("SELECT campaign_id AS campaign_id, round(100 * avg(CASE WHEN opened")
    assert "AS pct_clicked" in sql and "AS pct_unsubscribed, count(*) AS n FROM email_sends GROUP BY 1" in sql
    assert mood("What open rate did each newsletter get, send by send?") == "question"


def test_a_customer_number_said_in_words_is_one_person():
    verdict = check_input("what is the home address and phone number of customer twelve thirty four")
    assert verdict is not None and verdict.rule == "personal_details"
    assert check_input("what do customers one year in buy?") is None
