"""What a message means given the thread and how people write numbers and days (issue 15, fourth round): a change
to the draft just made replaces it in the inbox, "ship it" after an analysis drafts the action that carries it out,
a question about "it" goes back to the last result, a short clause gives the step before it a value, a statement
says what an instruction's "its" is; chat shorthand, spoken numbers, offers and possessive personal-data requests.
Each test names the general mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

import json

from agent.guardrails import check_input
from agent.planners.context_budget import PREFIX
from agent.planners.extract.args import extract_args
from agent.planners.extract.names import best_name_match
from agent.planners.extract.spelling import written_out
from agent.planners.thread import DRAFTED, last_draft
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import TODAY, VOCAB, agenda, names

tools, env = mechanisms.tools, mechanisms.env


def _drafted(name: str, args: dict, request: str = "a-1", said: str = "…") -> list[dict]:
    """A thread whose last turn (the user's message `said`) drafted `name` (the messages prepare_action writes)."""
    return [{"role": "user", "content": said},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]},
            {"role": "tool", "tool_call_id": "c1", "content": DRAFTED + json.dumps({"request": request})},
            {"role": "assistant", "content": "Drafted for approval."}]


def _allocated(recommendation: dict) -> tuple[dict, list[dict]]:
    """A thread whose last turn ran allocate_budget over 30 days with this recommendation (last_tool, messages)."""
    result = {"summary": "…", "metrics": {"horizon_days": 30, "recommendation": recommendation}}
    return {"name": "allocate_budget", "args": {"horizon_days": 30}}, [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "allocate_budget", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": PREFIX + json.dumps(result)}]


# --- chat shorthand and numbers said in words --------------------------------------------------------------------

def test_shorthand_days_and_spoken_numbers_before_a_unit_are_written_out():
    assert written_out("pls bump search up 20% starting tmrw") == "please bump search up 20% starting tomorrow"
    assert written_out("cut video by fifteen per cent") == "cut video by 15 per cent"
    assert written_out("move twenty grand from display") == "move 20k from display"
    assert written_out("a hundred and fifty a day, twenty-five percent") == "150 a day, 25 percent"
    assert written_out("hold out a fifth of them") == "hold out 20% of them"
    # words that are not a number before a unit, and periods, stay as written
    for text in ("We have five channels", "next quarter", "I am one of them", "the first half of the year"):
        assert written_out(text) == text


def test_a_percentage_off_is_an_offer_never_a_threshold_or_holdout(tools):
    args = extract_args("Launch a win-back email campaign to the high-risk churners - 15% off, 10% holdout.",
                        tools["launch_campaign"].json_schema(), TODAY, VOCAB, tools["launch_campaign"].synonyms)
    assert args["offer"] == "15% off" and args["holdout_pct"] == 0.1
    assert "high_risk" not in extract_args("win back the churners with 15% off", tools["score_churn"].json_schema(),
                                           TODAY, VOCAB, tools["score_churn"].synonyms)


def test_a_cost_cap_is_the_campaign_budget(tools):
    args = extract_args("launch an SMS cross-sell campaign to the Winback October audience, and cap the cost at 200",
                        tools["launch_campaign"].json_schema(), TODAY, VOCAB, tools["launch_campaign"].synonyms)
    assert args["budget"] == 200 and args["saved_audience"] == "Winback October"


def test_a_name_matches_in_the_plural():
    names_ = VOCAB["experiment_name"]
    assert best_name_match("did the emoji subject lines beat control?", names_) == ["EXP-SUBJECT"]
    assert best_name_match("how did the lines do", names_) == []  # one shared word of a two-word name is not enough


def test_her_phone_number_is_one_persons_personal_data():
    verdict = check_input("A customer called Emma rang support yesterday. Can you look up her phone number?")
    assert verdict is not None and verdict.rule == "personal_details"
    assert check_input("what is his email address") is not None
    for text in ("Which channel had her best month?", "share of customers with a phone number on file"):
        assert check_input(text) is None


# --- the thread: a changed draft, the go-ahead, a question about "it" ---------------------------------------------

def test_a_change_to_the_draft_just_made_redrafts_it_and_replaces_the_request(tools, env):
    draft = {"audience": "Winback October", "channel": "email", "variant": "Back in stock",
             "send_at": "2026-10-01T09:00:00", "holdout_pct": 0.1}
    state = {"messages": _drafted("schedule_campaign", draft, "a-old")}
    assert last_draft(state)["request"] == "a-old"
    steps = agenda("Monday at 9, and hold out 15%", tools, env, **state)
    assert names(steps) == ["schedule_campaign"] and steps[0]["replaces"] == "a-old"
    assert steps[0]["args"] == {**draft, "send_at": "2026-10-05T09:00:00", "holdout_pct": 0.15}
    # a message that changes nothing of the draft, or asks a question of its own, is not a change to it
    assert "replaces" not in (agenda("how did search do last week?", tools, env, **state) or [{}])[0]
    assert not any("replaces" in s for s in agenda("thanks!", tools, env, **state))


def test_a_draft_followed_by_a_result_is_no_longer_the_last_thing_done():
    messages = _drafted("update_budget", {"daily_budgets": {"search": 1100}})
    messages += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c2", "type": "function", "function": {"name": "campaign_report", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "{}"}]
    assert last_draft({"messages": messages}) is None


def test_the_go_ahead_after_an_analysis_drafts_the_action_that_carries_it_out(tools, env):
    plan = {"name": "plan_campaign", "args": {"source": "churn", "channel": "email", "holdout_pct": 0.2,
                                              "offer": "20% off", "goal": "win back lapsed customers"}}
    steps = agenda("perfect, ship it", tools, env, last_tool=plan)
    assert names(steps)[-1] == "launch_campaign"
    assert (steps[-1]["args"]["channel"], steps[-1]["args"]["holdout_pct"]) == ("email", 0.2)
    allocation, messages = _allocated({"search": 33000.0, "email": 3300.0})
    steps = agenda("great, put that split live from Monday", tools, env, last_tool=allocation, messages=messages)
    assert names(steps) == ["update_budget"]
    assert steps[0]["args"] == {"daily_budgets": {"search": 1100.0, "email": 110.0}, "effective_date": "2026-10-05"}


def test_a_question_about_it_that_fits_no_tool_asks_about_the_last_result(tools, env):
    last = {"name": "analyze_experiment", "args": {"experiment_id": "EXP-FREESHIP"}}
    steps = agenda("did it work better for loyalty members than for non-members?", tools, env, last_tool=last)
    assert steps == [{"name": "analyze_experiment",
                      "args": {"experiment_id": "EXP-FREESHIP", "segment_by": "loyalty_member"}}]


def test_a_follow_up_another_tool_fits_far_better_switches_to_it_and_keeps_the_population(tools, env):
    last = {"name": "score_churn", "args": {"horizon_days": 90}, "run_id": "churn-abc"}
    steps = agenda("ok - and which of those will be worth the most over the next year?", tools, env, last_tool=last)
    assert steps == [{"name": "predict_clv", "args": {"horizon_days": 365, "among": "churn-abc"}}]
    # without "those" it is everyone; a run the field does not take (a segment run) is never passed
    assert "among" not in agenda("who will be worth the most next year?", tools, env, last_tool=last)[0]["args"]
    segments = {"name": "segment_customers", "args": {}, "run_id": "seg-1"}
    assert "among" not in agenda("which of those are worth the most?", tools, env, last_tool=segments)[0]["args"]


# --- one message: a value for the step before, a statement before an instruction ----------------------------------

def test_a_short_clause_that_only_gives_a_value_belongs_to_the_step_before(tools, env):
    steps = agenda("Can you email the Winback October list on Monday at 10:30? Use the best subject line the content "
                   "tool comes up with, and hold out 20%.", tools, env)
    assert names(steps) == ["generate_content_variants", "schedule_campaign"]
    assert steps[-1]["args"]["holdout_pct"] == 0.2 and steps[-1]["args"]["send_at"] == "2026-10-05T10:30:00"
    # … but a clause that is a question of its own stays one
    assert names(agenda("How did search do last week, and are reviews getting worse?", tools, env)) == [
        "campaign_report", "analyze_sentiment"]


def test_a_statement_says_what_the_instructions_its_refers_to(tools, env):
    steps = agenda("Paid social is crushing it. Let's double its daily budget.", tools, env)
    assert names(steps) == ["update_budget"] and set(steps[0]["args"]["daily_budgets"]) == {"social"}


def test_an_audience_we_do_not_hold_is_asked_about_not_planned_around(tools, env):
    steps = agenda("send the winter teaser SMS to the Lapsed VIP audience on Friday at 11", tools, env)
    assert names(steps) == ["ask"] and "Lapsed VIP" in steps[0]["ask"] and "Winback October" in steps[0]["ask"]



def test_through_the_agent_the_changed_request_replaces_the_first_in_the_inbox(agent, agent_ctx):
    from tools.actions.audiences import AudienceParams, create_audience
    from tools.registry import ToolContext
    from tools.warehouse import connect

    con = connect(agent_ctx.home / "warehouse.duckdb")
    con.execute("INSERT INTO churn_scores SELECT 'churn-seed', customer_id, 0.8, 'high', 'seeded' FROM customers "
                "WHERE customer_id <= 300")
    create_audience(con, AudienceParams(name="Winback October", run_id="churn-seed"),
                    ToolContext(home=agent_ctx.home, user="ana", role="approver", thread_id="setup"))
    con.close()
    first = agent.ask("send the Winback October audience an email with the subject 'Back in stock'", user="ben")
    old = first["pending_approval"]
    assert old["action"] == "schedule_campaign" and old["args"]["holdout_pct"] == 0.1
    second = agent.ask("make it Monday at 9, and hold out 15%", first["thread_id"], user="ben")
    new = second["pending_approval"]
    assert new["id"] != old["id"] and new["args"]["holdout_pct"] == 0.15
    assert new["args"]["variant"] == "Back in stock" and new["args"]["send_at"].endswith("09:00:00")
    assert [p["id"] for p in second["pending_approvals"]] == [new["id"]]  # the approver sees one version
    from agent.runner import ApprovalError

    try:
        agent.decide(old["id"], "approve", user="ana")
        raise AssertionError("the replaced request was approved")
    except ApprovalError as exc:
        assert "replaced" in str(exc) or "Nothing is waiting" in str(exc)
    done = agent.decide(new["id"], "approve", user="ana")
    assert [c for c in done["tool_calls"] if c["name"] == "schedule_campaign"][-1]["ok"]


# --- fifth round (split G, read after its blind measurement) ------------------------------------------------------

def test_quarters_and_clock_times_said_in_words():
    assert written_out("click-through for every campaign in the second quarter?") == (
        "click-through for every campaign in Q2?")
    assert written_out("Monday the 5th at quarter past nine") == "Monday the 5th at 9:15"
    assert (written_out("half past 10"), written_out("quarter to ten")) == ("10:30", "9:45")
    assert written_out("last quarter") == "last quarter"


def test_a_year_of_months_is_365_days_and_a_quoted_name_is_no_period(tools):
    args = extract_args("expected profit per customer for the next 12 months, assume a 35% margin",
                        tools["predict_clv"].json_schema(), TODAY, VOCAB, tools["predict_clv"].synonyms)
    assert (args["horizon_days"], args["margin"]) == (365, 0.35)
    args = extract_args("save the high-risk ones as an audience and name it 'Save the Q4'",
                        tools["create_audience"].json_schema(), TODAY, VOCAB, tools["create_audience"].synonyms)
    assert args["name"] == "Save the Q4" and "as_of" not in args


def test_multiples_and_a_pronoun_after_a_statement_change_the_channel_said(tools, env):
    steps = agenda("triple the search budget, it's our best channel", tools, env)
    assert names(steps) == ["update_budget"] and steps[0]["args"]["daily_budgets"] == {"search": 3000.0}
    steps = agenda("Display is clearly saturated. Cut it by 15% from tomorrow.", tools, env)
    assert steps[0]["args"] == {"daily_budgets": {"display": 425.0}, "effective_date": "2026-10-01"}
    steps = agenda("reduce paid social by 150 a day and put that into search from the 12th of October", tools, env)
    assert steps[0]["args"]["daily_budgets"] == {"social": 650.0, "search": 1150.0}


def test_a_correction_swaps_a_value_in_the_request_before(tools, env):
    before = {"daily_budgets": {"display": 450.0, "search": 1050.0}, "effective_date": "2026-10-05"}
    messages = _drafted("update_budget", before, "a-1")
    messages[0]["content"] = "Move 10% of display into search from Monday"
    steps = agenda("actually make it 5%, not 10", tools, env, messages=messages)
    assert steps[0]["args"]["daily_budgets"] == {"display": 475.0, "search": 1025.0} and steps[0]["replaces"] == "a-1"
    messages[0]["content"] = "Increase video by 20% from tomorrow"
    steps = agenda("no wait - do affiliate instead of video", tools, env, messages=messages)
    assert steps[0]["args"]["daily_budgets"] == {"affiliate": 240.0}


def test_a_new_time_alone_keeps_the_drafts_day(tools, env):
    draft = {"audience": "Winback October", "channel": "email", "variant": "New picks",
             "send_at": "2026-10-02T09:00:00", "holdout_pct": 0.1}
    steps = agenda("sorry, make that 11am and hold out 15%", tools, env, messages=_drafted("schedule_campaign", draft))
    assert (steps[0]["args"]["send_at"], steps[0]["args"]["holdout_pct"]) == ("2026-10-02T11:00:00", 0.15)


def test_a_listed_value_and_bigger_takes_the_values_after_it(tools):
    args = extract_args("treat companies of 51-200 employees and bigger as enterprise when routing the hot ones",
                        tools["score_leads"].json_schema(), TODAY, VOCAB, tools["score_leads"].synonyms)
    assert args["enterprise_sizes"] == ["51-200", "201-1000", "1000+"]


def test_arrows_chain_steps_and_the_analysis_clause_says_who_the_audience_holds(tools, env):
    steps = agenda("Top 1,000 customers by predicted lifetime value -> save as a push audience called 'High CLV 1k'",
                   tools, env)
    assert names(steps) == ["predict_clv", "create_audience"]
    assert (steps[1]["args"]["top_n"], steps[1]["args"]["source"], steps[1]["args"]["name"]) == (1000, "clv",
                                                                                                "High CLV 1k")
    steps = agenda("Build me an audience of the customers most likely to walk away and name it 'Save the Q4'", tools,
                   env)
    assert names(steps) == ["score_churn", "create_audience"] and steps[1]["args"]["source"] == "churn"


def test_an_actions_verb_phrase_names_it_and_a_name_after_call_it_is_not_the_message(tools, env):
    steps = agenda("go live with a loyalty push campaign for our top 2000 customers by lifetime value, call it "
                   "'VIP Autumn'", tools, env)
    launch = steps[-1]
    assert launch["name"] == "launch_campaign" and launch["args"]["campaign_name"] == "VIP Autumn"
    assert "variant" not in launch["args"] and launch["args"]["top_n"] == 2000
    steps = agenda("Launch a win-back email to the high-risk customers with 15% off, send it Tuesday at 9am and keep "
                   "ten percent back as a holdout", tools, env)
    assert steps[-1]["name"] == "launch_campaign" and steps[-1]["args"]["send_at"] == "2026-10-06T09:00:00"


def test_of_the_x_ones_names_the_population_not_the_question(tools, env):
    last = {"name": "score_churn", "args": {}, "run_id": "churn-abc"}
    steps = agenda("ok, of the high-risk ones, who has the biggest lifetime value?", tools, env, last_tool=last)
    assert steps == [{"name": "predict_clv", "args": {"among": "churn-abc"}}]
    steps = agenda("save the high risk ones as 'October Rescue' for email", tools, env, last_tool=last)
    assert names(steps) == ["create_audience"] and steps[0]["args"]["name"] == "October Rescue"


# --- sixth round (split H, read after its blind measurement) ------------------------------------------------------

def test_month_names_are_whole_words_and_orders_said_in_words(tools):
    from agent.planners.extract.quantities import NOT_A_FIELD_NUMBER

    assert NOT_A_FIELD_NUMBER.findall("a 2 markov chain, 2 marketing emails, 5 march, may 4") == ["5 march", "may 4"]
    args = extract_args(written_out("removal effects from a second-order Markov chain"),
                        tools["attribute_conversions"].json_schema(), TODAY, VOCAB,
                        tools["attribute_conversions"].synonyms)
    assert args["markov_order"] == 2 and args["model"] == "markov"


def test_chat_shorthand_reaches_the_tools(tools, env):
    assert written_out("r ppl mad abt delivery lately") == "are people mad about delivery lately"
    assert names(agenda(written_out("how did video do last mnth + any weird days in conv"), tools, env)) == [
        "campaign_report", "detect_anomalies"]
    steps = agenda(written_out("move 80/day from display to affil"), tools, env)
    assert steps[0]["args"]["daily_budgets"] == {"display": 420.0, "affiliate": 280.0}


def test_instructions_said_politely_plainly_or_after_so(tools, env):
    steps = agenda("video from 560 to 500 a day please", tools, env)
    assert steps == [{"name": "update_budget", "args": {"daily_budgets": {"video": 500.0}}}]
    steps = agenda("Affiliates are printing money right now so triple their daily budget from tomorrow", tools, env)
    assert names(steps) == ["update_budget"] and steps[0]["args"]["daily_budgets"] == {"affiliate": 600.0}
    steps = agenda("Hi! would it be possible to put the customers most likely to stop buying into an audience called "
                   "'Autumn Rescue'?", tools, env)
    assert names(steps)[-1] == "create_audience" and steps[-1]["args"]["name"] == "Autumn Rescue"
    steps = agenda("could you please draft a budget change that reduces display by 10%?", tools, env)
    assert steps[0]["args"]["daily_budgets"] == {"display": 450.0}


def test_text_is_the_sms_channel_and_push_it_to_monday_postpones(tools, env):
    steps = agenda("Text the Winback October list tomorrow at 18:30 with 'Basket misses you'. Keep a 20% control group.",
                   tools, env)
    assert steps[-1]["args"]["channel"] == "sms" and steps[-1]["args"]["send_at"] == "2026-10-01T18:30:00"
    draft = {"audience": "Winback October", "channel": "email", "variant": "Last chance",
             "send_at": "2026-10-02T09:00:00", "holdout_pct": 0.1}
    steps = agenda(written_out("Push it to Monday, same time; nothing else changes."), tools, env,
                   messages=_drafted("schedule_campaign", draft))
    assert steps[0]["args"] == {**draft, "send_at": "2026-10-05T09:00:00"}


def test_a_correction_without_not_swaps_the_one_share_said(tools, env):
    messages = _drafted("update_budget", {"daily_budgets": {"display": 450.0}}, "a-1")
    messages[0]["content"] = "Hi, could you please draft a budget change that reduces display by 10%?"
    steps = agenda("Oh, I'm so sorry, I think my manager actually said 20% - could you change that?", tools, env,
                   messages=messages)
    assert steps[0]["args"]["daily_budgets"] == {"display": 400.0} and steps[0]["replaces"] == "a-1"


def test_after_a_plan_launch_it_keeps_its_audience_and_ship_it_is_the_launch(tools, env):
    plan = {"name": "plan_campaign", "args": {"saved_audience": "Winback October", "channel": "email",
                                              "holdout_pct": 0.1, "source": "audience"}}
    steps = agenda("Looks right. Launch it.", tools, env, last_tool=plan)
    assert names(steps) == ["launch_campaign"]  # no churn run first: the plan's audience is the source
    assert (steps[0]["args"]["source"], steps[0]["args"]["saved_audience"]) == ("audience", "Winback October")
    churn_plan = {"name": "plan_campaign", "args": {"source": "churn", "channel": "email"}}
    assert names(agenda("ok ship it", tools, env, last_tool=churn_plan))[-1] == "launch_campaign"
    steps = agenda("Switch the channel to SMS and set the holdout to 15%.", tools, env, last_tool=churn_plan)
    assert steps == [{"name": "plan_campaign", "args": {"source": "churn", "channel": "sms", "holdout_pct": 0.15}}]


def test_greetings_are_no_clause_and_a_tv_push_is_no_push_channel(tools, env):
    from agent.planners.intents import clauses
    from agent.planners.routing import out_of_scope

    assert clauses("Hi, sorry if this is a silly question, but are we allowed to put emoji in subject lines?") == [
        "are we allowed to put emoji in subject lines?"]
    assert out_of_scope("We're planning a big TV push in November: what did our TV GRPs deliver?",
                        VOCAB["channel"]) is not None
    assert out_of_scope("how did push do in November?", VOCAB["channel"]) is None


def test_a_robust_z_score_scan_is_anomaly_detection(tools, env):
    steps = agenda("Robust z-score scan of weekly CPA, all channels pooled, last 180 days; flag anything beyond 3.5.",
                   tools, env)
    assert names(steps) == ["detect_anomalies"]
    assert {k: steps[0]["args"][k] for k in ("metric", "grain", "threshold")} == {"metric": "cpa", "grain": "week",
                                                                                "threshold": 3.5}
