"""How the offline planner reads what people write (issue 15, tenth round, from the misses of blind split L): a
forwarded request, a promo code that is no shouting, a correction that never edits the message to send, a quote
that is content and not a name, "same thing but …", "… Launch it." after a plan in the same message, a group
nobody can resolve, a send with its exact words and time, and counts and caps said with more words. Each test
names the general mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

from agent.planners.clarify import unknown_audience
from agent.planners.extract.spelling import correct, written_out
from agent.planners.thread import corrected
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import VOCAB, agenda, names
from tests.agent.test_planner_threads import _drafted
from tools.compliance import check, completed

tools, env = mechanisms.tools, mechanisms.env


def test_a_forwarded_request_is_read_as_the_request_itself():
    assert written_out("FW: budget -- 'Please move a tenth of social's daily budget over to search, effective "
                       "tomorrow.'") == "budget: Please move 10% of social's daily budget over to search, effective tomorrow."
    said = written_out("FW: numbers for Thursday's deck --- 'could you get me the CTR for paid social only, for Q2?'")
    assert said == "numbers for Thursday's deck: could you get me the CTR for paid social only, for Q2?"
    assert written_out("send 'Hello there friend' to Winback October") == "send 'Hello there friend' to Winback October"


def test_a_forwarded_question_keeps_its_period(tools, env):
    text = correct("FW: attribution q from finance -- 'Can someone show me how first-touch credit splits across "
                   "individual campaigns (not channels) for Q3?'", tools, VOCAB)
    steps = agenda(text, tools, env)
    assert steps[0]["name"] == "attribute_conversions"
    assert steps[0]["args"] | {"model": "first_touch", "level": "campaign", "start": "2026-07-01"} == steps[0]["args"]


def test_a_promo_code_is_no_shouting_and_an_offer_gets_its_terms():
    assert not [v for v in check("10% off all week with code BACK10", "sms") if v.rule.startswith("spam:caps")]
    assert [v for v in check("HUGE SALE this week", "sms") if v.rule.startswith("spam:caps")]
    assert completed("Hi from the shop! 10% off all week with code BACK10", "sms") == (
        "Fieldhouse: Hi from the shop! 10% off all week with code BACK10. T&Cs apply. Reply STOP to opt out")


def test_a_correction_changes_the_time_said_before_never_the_message_to_send():
    state = {"messages": [{"role": "user", "content": "text the Winback October people tomorrow at 10am: 'we miss "
                                                      "you! 10% off with code HELLO10'"}]}
    assert corrected("actually make it 9am, not 10", state) == (
        "text the Winback October people tomorrow at 9am: 'we miss you! 10% off with code HELLO10'")
    assert corrected("make it 5%, not 10", {"messages": [{"role": "user", "content": "send 'Hi' on Monday, hold out "
                                                                                    "10%"}]}) == (
        "send 'Hi' on Monday, hold out 5%")


def test_a_send_with_its_exact_words_and_time_is_the_send_not_a_campaign_launch(tools, env):
    steps = agenda("text the Winback October people tomorrow at 6pm: 'Hi from the shop! 10% off all week with code "
                   "BACK10'. no holdout needed", tools, env)
    assert names(steps) == ["schedule_campaign"]
    assert steps[0]["args"] | {"channel": "sms", "send_at": "2026-10-01T18:00:00", "holdout_pct": 0.0,
                               "audience": "Winback October"} == steps[0]["args"]


def test_same_thing_but_is_a_follow_up(tools, env):
    last = {"name": "campaign_report", "args": {"start": "2026-08-01", "end": "2026-08-31", "group_by": "channel"}}
    assert agenda("same thing but only social and video", tools, env, last_tool=last) == [
        {"name": "campaign_report", "args": {**last["args"], "channels": ["social", "video"]}}]


def test_launch_it_after_a_plan_in_the_same_message_carries_the_plan_out(tools, env):
    steps = agenda("Fire off a push campaign to the Winback October audience with a 25% holdout. Launch it.", tools,
                   env)
    assert names(steps) == ["plan_campaign", "launch_campaign"]
    assert steps[1]["args"] | {"source": "audience", "saved_audience": "Winback October", "channel": "push",
                               "holdout_pct": 0.25} == steps[1]["args"]


def test_a_group_nobody_can_resolve_gets_one_question(tools, env):
    assert unknown_audience("email my newsletter crowd tomorrow morning", VOCAB) == "newsletter crowd"
    for known in ("text the Winback October people at 6pm", "email my at-risk people on monday", "email the list"):
        assert unknown_audience(known, VOCAB) is None
    steps = agenda("email my newsletter crowd tomorrow morning with 'new stock just landed!'", tools, env)
    assert len(steps) == 1 and "Which audience" in steps[0]["ask"]


def test_counts_caps_and_channels_said_with_more_words(tools, env):
    assert agenda("Write 5 premium-sounding email subject lines for the autumn launch.", tools, env)[0]["args"][
        "n"] == 5
    steps = agenda("Let's go live with the new arrivals email to our top customers by lifetime value, cost capped "
                   "at 50.", tools, env)
    assert steps[-1]["name"] == "launch_campaign" and steps[-1]["args"]["budget"] == 50
    plan = agenda("what would it look like if I texted my at-risk customers a 10% code? what would it cost me?",
                  tools, env)
    assert names(plan) == ["plan_campaign"] and plan[0]["args"]["channel"] == "sms"


def test_a_drafted_send_is_changed_not_redrafted_from_scratch(tools, env):
    draft = {"audience": "Winback October", "channel": "sms", "variant": "we miss you! 10% off with code HELLO10",
             "send_at": "2026-10-01T10:00:00", "holdout_pct": 0.1}
    messages = _drafted("schedule_campaign", draft, said="text the Winback October people tomorrow at 10am: 'we "
                                                         "miss you! 10% off with code HELLO10'")
    steps = agenda("actually make it 9am, not 10", tools, env, messages=messages)
    assert steps[0]["args"]["send_at"] == "2026-10-01T09:00:00" and steps[0]["args"]["variant"] == draft["variant"]


def test_a_segment_name_inside_another_word_does_not_resolve_a_group():
    vocab = {**VOCAB, "segment": ["New", "Lost", "Champions"]}  # after an RFM run: "new" is in "newsletter"
    assert unknown_audience("email my newsletter crowd tomorrow morning", vocab) == "newsletter crowd"
    assert unknown_audience("email the champions crowd tomorrow", vocab) is None
