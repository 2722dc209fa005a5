"""How the offline planner reads what people write (issue 15, thirteenth round, from the misses of blind split P):
a rate said as "5% of them subscribe", the captions of a social post, "we'll text them, not email", customer
numbers listed after a colon and a name that stops where the sentence goes on, a holdout said as "keep 20% back",
a request that starts with the action's own verb, "get X planned", "by 9 October at the latest", the neutral point of
a rating scale, and a reply to a clarifying question that fills the tool that asked. Each test names the general
mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

from agent.planners.extract.names import quoted_name
from agent.planners.extract.spelling import correct
from agent.planners.offline import OfflinePlanner
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import VOCAB, agenda, names

tools, env = mechanisms.tools, mechanisms.env


def _agenda(text: str, tools, env, **state) -> list[dict]:
    return agenda(correct(text, tools, VOCAB), tools, env, **state)  # as the runner reads it


def test_a_share_of_them_doing_the_thing_is_the_baseline(tools, env):
    steps = _agenda("we get ~3000 visitors a day on the box builder page and about 5% of them subscribe. if i test a "
                    "new version, how long until i'd know whether it adds half a percentage point?", tools, env)
    assert steps[0]["args"] | {"baseline": 0.05, "mde": 0.005, "daily_traffic": 3000} == steps[0]["args"]


def test_channels_said_the_writers_way(tools, env):
    captions = _agenda("need 5 insta captions for the autumn drop, playful vibe pls", tools, env)
    assert captions[0]["args"] | {"channel": "social", "tone": "playful", "n": 5} == captions[0]["args"]
    wobbly = _agenda("make a list from the churn scores of the medium-risk subscribers, call it Wobbly Subs - we'll "
                     "text them, not email", tools, env)
    assert wobbly[-1]["args"] | {"name": "Wobbly Subs", "channel": "sms", "risk_band": "medium"} == wobbly[-1]["args"]


def test_ids_after_a_colon_and_a_name_that_stops_where_the_sentence_goes_on(tools, env):
    assert quoted_name("Can you put them in a list called Shop regulars so we can email them?") == "Shop regulars"
    assert quoted_name("save the champions as an sms audience called champs sms") == "champs sms"
    steps = _agenda("I've got the customer numbers of three regulars from the till: 1012, 2044 and 3188. Can you put "
                    "them in a list called Shop regulars so we can email them?", tools, env)
    assert steps == [{"name": "create_audience", "args": {"name": "Shop regulars", "channel": "email",
                                                          "customer_ids": [1012, 2044, 3188], "source": "customers"}}]


def test_a_holdout_said_around_its_share_belongs_to_the_send(tools, env):
    steps = _agenda("send Winback October the subject line 'Your box misses you' on Monday at 8am, and keep 20% back "
                    "so we can tell if it worked", tools, env)
    assert steps == [{"name": "schedule_campaign", "args": {
        "audience": "Winback October", "variant": "Your box misses you", "send_at": "2026-10-05T08:00:00",
        "holdout_pct": 0.2}}]


def test_the_request_starts_with_the_actions_own_verb_or_says_it_done(tools, env):
    launch = _agenda("Please go ahead and launch the email to win back customers who haven't bought in a while, "
                     "whatever the system recommends is fine by me.", tools, env)
    assert names(launch)[-1] == "launch_campaign" and launch[-1]["args"]["channel"] == "email"
    assert "launch_campaign" not in names(_agenda("launch a test of the new checkout", tools, env))
    planned = _agenda("get a churn-prevention push campaign planned for the medium-risk group, going out by 9 "
                      "October at the latest", tools, env)
    assert names(planned) == ["plan_campaign"] and planned[0]["args"] | {
        "source": "churn", "risk_band": "medium", "channel": "push", "send_before": "2026-10-09"} == planned[0]["args"]
    assert "send_after" not in planned[0]["args"]  # "by 9 October at the latest" is the last day only
    assert names(_agenda("we get about 4k visitors a day. how long would a test need to run to pick up +0.5pp on a "
                         "5% baseline?", tools, env)) == ["plan_experiment"]  # "we get …" is a fact, not an order


def test_the_neutral_point_of_a_rating_scale(tools, env):
    scale = _agenda("validate the VADER scores against the star ratings (1-5 scale)", tools, env)
    assert scale[0]["args"]["rating_neutral"] == 3
    said = _agenda("validate against the star ratings (1-5 stars, so 4 is neutral)", tools, env)
    assert said[0]["args"]["rating_neutral"] == 4


def test_a_reply_to_a_clarifying_question_fills_the_tool_that_asked(tools, env):
    first = "Can you send the autumn sale email to our regulars?"
    ask = agenda(first, tools, env)[0]["ask"]
    reply = "Oh sorry, use the Winback October list. Thursday at 9 in the morning, subject 'The autumn sale is on'"
    thread = [{"role": "user", "content": first}, {"role": "assistant", "content": ask},
              {"role": "user", "content": reply}]
    steps = OfflinePlanner().make_agenda({"question": reply, "messages": thread}, tools, env)
    assert steps[-1]["name"] == "schedule_campaign" and steps[-1]["args"] | {
        "audience": "Winback October", "variant": "The autumn sale is on",
        "send_at": "2026-10-01T09:00:00"} == steps[-1]["args"]
