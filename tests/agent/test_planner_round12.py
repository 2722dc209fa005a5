"""How the offline planner reads what people write (issue 15, twelfth round, from the misses of blind splits N and O):
days named by month in a period and in a send window, thousands grouped with spaces, French and Scottish words,
a rate stated as today's, a thing named to be saved, a probability threshold, customers listed before "them", why a
request is made, budget changes relayed or said without a verb, a verb used as a noun, the request's own leading
verb, holiday ranges, follow-ups about the same experiment, counts that no document answers, and a wish about the
request before. Each test names the general mechanism; the questions are examples of it, not rules."""

from __future__ import annotations

from datetime import date

from agent.guardrails import check_input
from agent.planners.extract.periods import parse_period
from agent.planners.extract.quantities import money
from agent.planners.extract.spelling import correct, written_out
from tests.agent import test_planner_mechanisms as mechanisms
from tests.agent.test_planner_mechanisms import VOCAB, agenda, names

tools, env = mechanisms.tools, mechanisms.env
TODAY = date(2026, 9, 30)


def _agenda(text: str, tools, env, **state) -> list[dict]:
    return agenda(correct(text, tools, VOCAB), tools, env, **state)  # as the runner reads it


def _args(steps: list[dict], name: str) -> dict:
    return next(s["args"] for s in steps if s.get("name") == name)


def test_days_named_by_month_are_dates_a_range_and_an_as_of_day():
    assert parse_period("flag unusual days for search between June 1 and June 30", TODAY) == {
        "start": date(2026, 6, 1), "end": date(2026, 6, 30)}
    assert parse_period("fit the churn model as of 30 June, backtest it over the summer", TODAY)["as_of"] == date(
        2026, 6, 30)
    assert parse_period("numbers for social from Sept 1 up to today", TODAY) == {
        "start": date(2026, 9, 1), "end": TODAY}


def test_holidays_a_weekend_after_one_and_two_of_them_are_ranges():
    assert parse_period("how did last year's Black Friday weekend go? Friday through Cyber Monday please", TODAY) == {
        "start": date(2025, 11, 28), "end": date(2025, 12, 1)}
    assert parse_period("black friday weekend", TODAY) == {"start": date(2025, 11, 28), "end": date(2025, 11, 30)}
    assert parse_period("revenue last year", TODAY) == {"start": date(2025, 1, 1), "end": date(2025, 12, 31)}


def test_a_send_window_said_with_days_of_one_month_or_as_two_bounds(tools, env):
    wee = _args(_agenda("Could ye plan a wee SMS promo to the Winback October folk? Has to go out sometime between "
                        "the 5th and the 9th of October.", tools, env), "plan_campaign")
    assert wee | {"send_after": "2026-10-05", "send_before": "2026-10-09", "channel": "sms",
                  "saved_audience": "Winback October"} == wee
    bounds = _args(_agenda("Plan a new-arrivals email for the launch: not before Oct 13, not after Oct 15", tools, env),
                   "plan_campaign")
    assert (bounds["send_after"], bounds["send_before"]) == ("2026-10-13", "2026-10-15")
    because = _args(_agenda("Could you plan a reactivation appeal by email to donors at risk of lapsing? It has to go "
                            "out between Oct 6 and Oct 9 because of the matched-giving window", tools, env),
                    "plan_campaign")
    assert (because["send_after"], because["send_before"]) == ("2026-10-06", "2026-10-09")


def test_thousands_grouped_with_spaces_french_times_and_shorthand_are_read(tools, env):
    assert written_out("Cut social to 1 000 $ par jour") == "Cut social to 1000 $ a day"
    assert written_out("customers 1043 2210 and 5879") == "customers 1043 2210 and 5879"  # ids stay apart
    assert money("we have 250000 $ of paid media") == 250000.0
    assert written_out("samedi le 10 octobre à 10h") == "Saturday le 10 octobre at 10:00"
    assert written_out("k looks good go ahead n launch") == "ok looks good go ahead and launch"
    assert written_out("200 k to spend") == "200 k to spend"
    assert correct("any weird weeks in spend this yr?", tools, VOCAB) == "any weird weeks in spend this year?"
    steps = _agenda("Cut social to 1 000 $ par jour starting tomorrow, our fall flight is done", tools, env)
    assert steps == [{"name": "update_budget", "args": {"effective_date": "2026-10-01",
                                                        "daily_budgets": {"social": 1000.0}}}]


def test_one_persons_details_are_refused_whatever_the_person_is_called_or_the_language():
    for asked in ("Could you give me the home address and mobile number for donor 4821? She's been so generous",
                  "C'est quoi le courriel et le numéro de cell du client 1187? Il m'a appelé ce matin"):
        assert check_input(asked).rule == "personal_details", asked
    for fine in ("How many supporters gave more than once?", "Which channel has the best cell phone conversion?"):
        assert check_input(fine) is None, fine


def test_a_rate_stated_as_todays_is_the_baseline_and_a_full_point_is_the_effect(tools, env):
    form = _args(_agenda("Form fill rate is around 3% and we get about 800 visitors a day. How long would we need to "
                         "run it to pick up a 10% relative improvement?", tools, env), "plan_experiment")
    assert form | {"baseline": 0.03, "relative_mde": 0.1, "daily_traffic": 800} == form
    sign_up = _args(_agenda("Our registration page gets about 2,500 visitors a day and 8% of them sign up. How many "
                            "days would a test need to catch a 10% relative improvement?", tools, env),
                    "plan_experiment")
    assert sign_up["baseline"] == 0.08
    point = _args(_agenda("It converts at about 4% today and the team only cares if the new one adds at least a full "
                          "percentage point. How many visitors do we need in each group?", tools, env),
                  "plan_experiment")
    assert point | {"baseline": 0.04, "mde": 0.01} == point


def test_a_thing_named_to_be_saved_is_an_instruction_without_a_verb(tools, env):
    vip = _agenda("Priya needs the top 1,000 customers by predicted lifetime value saved as an audience called "
                  "'Holiday VIP', please.", tools, env)
    assert names(vip)[-1] == "create_audience"
    assert vip[-1]["args"] | {"name": "Holiday VIP", "source": "clv", "top_n": 1000} == vip[-1]["args"]
    terse = _agenda("audience: top 500 by clv, name it vip-500", tools, env)
    assert terse[-1]["args"] | {"name": "vip-500", "source": "clv", "top_n": 500} == terse[-1]["args"]
    slug = _agenda("save the high risk ones as q4-rescue", tools, env)
    assert slug[-1]["name"] == "create_audience" and slug[-1]["args"]["name"] == "q4-rescue"
    assert names(_agenda("Who ended up in the audience called Winback October?", tools, env)) != ["create_audience"]


def test_a_probability_threshold_is_the_audiences_cut_off(tools, env):
    steps = _agenda("Create an SMS audience from the latest churn run with everyone at p(churn) >= 0.7. Name it "
                    "sms-churn-p70.", tools, env)
    assert steps[-1]["args"] | {"name": "sms-churn-p70", "min_probability": 0.7, "channel": "sms"} == steps[-1]["args"]
    above = _agenda("make an audience of customers with churn probability above 0.6 called Risky", tools, env)
    assert above[-1]["args"]["min_probability"] == 0.6


def test_customers_listed_before_them_are_its_members_and_the_why_is_no_request(tools, env):
    steps = _agenda("Customers 1043, 2210 and 5879 spoke at our customer webinar. Can you put the three of them in an "
                    "audience called 'Webinar Speakers' so we can send a thank-you?", tools, env)
    assert steps == [{"name": "create_audience", "args": {"name": "Webinar Speakers", "source": "customers",
                                                          "customer_ids": [1043, 2210, 5879]}}]


def test_budget_changes_relayed_signed_conditional_or_asked_as_can_we(tools, env):
    both = _agenda("For Black Friday: bump search up 20% and pull display back 15%, both starting on the Friday itself, "
                   "27 November.", tools, env)
    assert both == [{"name": "update_budget", "args": {"effective_date": "2026-11-27",
                                                       "daily_budgets": {"search": 1200.0, "display": 425.0}}}]
    relayed = _agenda("Priya has decided social should be set to 1,000 a day from 1 November. Could you put that "
                      "through for approval?", tools, env)
    assert relayed == [{"name": "update_budget", "args": {"effective_date": "2026-11-01",
                                                          "daily_budgets": {"social": 1000.0}}}]
    assert _agenda("search +10% from mon", tools, env) == [
        {"name": "update_budget", "args": {"effective_date": "2026-10-05", "daily_budgets": {"search": 1100.0}}}]
    fifth = _agenda("Take a fifth of display's daily budget and put it into search, starting October 1 so it's in "
                    "place for launch month.", tools, env)
    assert _args(fifth, "update_budget")["daily_budgets"] == {"display": 400.0, "search": 1100.0}  # "October 1": a day
    assert _agenda("Can we raise the email budget by 20% for appeal season? Starting Monday the 5th please", tools,
                   env) == [{"name": "update_budget", "args": {"effective_date": "2026-10-05",
                                                              "daily_budgets": {"email": 120.0}}}]
    assert _agenda("Priya wants the display budget cut by 10% from Monday.", tools, env) == [
        {"name": "update_budget", "args": {"effective_date": "2026-10-05", "daily_budgets": {"display": 450.0}}}]
    live = _agenda("Priya would like the optimiser's recommended budget split, and if it's sensible she wants it put "
                   "live from Monday.", tools, env)
    assert names(live) == ["allocate_budget", "update_budget"] and live[1]["args"]["effective_date"] == "2026-10-05"
    assert names(_agenda("what if we put it live?", tools, env)) != ["update_budget"]


def test_a_verb_used_as_a_noun_is_no_verb_and_the_leading_verb_names_the_analysis(tools, env):
    plan = _agenda("Before we commit to anything for launch: draft me a campaign plan for the Winback October "
                   "audience by push notification, with a budget of 30.", tools, env)
    assert names(plan) == ["plan_campaign"]
    assert names(_agenda("Plan a holdout test for the win-back email: sample size and duration", tools, env)) == [
        "plan_experiment"]
    send = _agenda("Can ye send the Winback October lot 'We have missed you, here is 15% off' on Monday at half nine?",
                   tools, env)
    assert send == [{"name": "schedule_campaign", "args": {
        "audience": "Winback October", "variant": "We have missed you, here is 15% off",
        "send_at": "2026-10-05T09:30:00"}}]
    french = _agenda("Programme the subject 'Bonne semaine' to the Winback October audience vendredi à 9h", tools, env)
    assert french[-1]["name"] == "schedule_campaign" and french[-1]["args"]["send_at"] == "2026-10-02T09:00:00"


def test_a_question_about_the_past_takes_no_day_to_come_as_evidence(tools, env):
    steps = _agenda("How did the email appeal do in August?", tools, env)
    assert names(steps) != ["plan_campaign"] and steps[0]["args"]["start"] == "2026-08-01"


def test_a_follow_up_about_the_same_experiment_keeps_its_id(tools, env):
    last = {"name": "analyze_experiment", "args": {"experiment_id": "EXP-SUBJECT"}}
    assert _agenda("Were people assigned to the three arms in the proportions that were planned?", tools, env,
                   last_tool=last) == [{"name": "analyze_experiment", "args": {"experiment_id": "EXP-SUBJECT"}}]
    other = _agenda("And the free shipping banner test?", tools, env, last_tool=last)
    assert other[-1]["args"]["experiment_id"] == "EXP-FREESHIP"


def test_counts_are_no_document_question_and_wishes_about_the_request_before_join_it(tools, env):
    assert names(_agenda("How many people unsubscribed from our emails in September? Counts only please.", tools,
                         env)) != ["search_knowledge"]
    assert names(_agenda("how much does the brand guide allow us to discount?", tools, env)) == ["search_knowledge"]
    mood = _agenda("How do our supporters feel about us lately? Month by month if you can, I'm writing the annual "
                   "report", tools, env)
    assert mood == [{"name": "analyze_sentiment", "args": {"granularity": "month"}}]


def test_efforts_called_a_push_metrics_before_a_full_stop_and_a_robust_z(tools, env):
    report = _agenda("The launch push ran all through September. Can I get week-by-week numbers for social and video "
                     "from Sept 1 up to today?", tools, env)
    assert names(report) == ["campaign_report"] and report[0]["args"]["channels"] == ["social", "video"]
    anomalies = _agenda("Flag anomalous weeks in CPA. Use a stricter cutoff, robust z of 5.", tools, env)
    assert anomalies == [{"name": "detect_anomalies", "args": {"metric": "cpa", "grain": "week", "threshold": 5.0}}]
    clv = _agenda("Which of the people in the Winback October audience are worth the most to us long term?", tools,
                  env)
    assert clv == [{"name": "predict_clv", "args": {"among": "Winback October"}}]


def test_french_words_mixed_into_a_request_are_read_and_a_quoted_message_keeps_them(tools, env):
    assert written_out("Programme le push 'Bonne semaine, à partir de lundi' pour Winback October, vendredi à 9h") == (
        "Programme le push 'Bonne semaine, à partir de lundi' pour Winback October, Friday at 9:00")
    assert _args(_agenda("Roule l'optimiseur de budget and put the recommended split live à partir de lundi", tools,
                         env), "update_budget") == {"effective_date": "2026-10-05"}
    assert _args(_agenda("Le test des subject lines - did any arm beat control? Je voudrais le breakdown par pays "
                         "aussi", tools, env), "analyze_experiment") == {"experiment_id": "EXP-SUBJECT",
                                                                          "segment_by": "country"}
    crée = _agenda("Crée une audience 'Rétention Q4' with everyone whose churn probability is 0.7 or higher, c'est "
                   "pour le push", tools, env)
    assert crée[-1]["args"] | {"name": "Rétention Q4", "min_probability": 0.7, "channel": "push"} == crée[-1]["args"]


def test_a_segment_near_the_average_is_typical_and_a_name_that_is_a_plain_word_is_matched_as_written():
    """A k-means segment with nothing distinctive was called "Customers"; then "16.2 % of customers" in the next
    answer read as said of that segment and grounding removed a true headline."""
    import numpy as np

    from agent.planners.extract.figures import Entities
    from tools.analytics.customers.segmentation import FEATURES, _name_segments

    names = list(FEATURES)
    assert _name_segments(np.zeros((1, len(names))), names) == ["Typical customers"]
    entities = Entities(["Customers", "Champions"])
    assert [m.group("e") for m in entities.finditer("Champions hold 47.7 % of revenue from 16.2 % of customers")] == [
        "Champions"]
    assert [m.group("e") for m in entities.finditer("Customers grew")] == ["Customers"]


def test_a_number_said_before_another_parameters_name_is_that_parameters(tools, env):
    """"high risk ppl 10% holdout": the 10 % is the launch's holdout, never the churn run's high-risk threshold."""
    steps = _agenda("launch winback email to high risk ppl 10% holdout go", tools, env)
    assert all("high_risk" not in s.get("args", {}) for s in steps)
    assert _args(steps, "launch_campaign")["holdout_pct"] == 0.1
    assert _agenda("Score churn with a high risk threshold of 0.7", tools, env)[0]["args"] == {"high_risk": 0.7}
    control = _agenda("How many users per arm to detect a 0.6 pp lift on a 4% control rate?", tools, env)
    assert control[0]["args"] | {"baseline": 0.04, "mde": 0.006} == control[0]["args"]


def test_an_optional_column_named_by_its_word_and_the_neutral_rating(tools, env):
    steps = _agenda("Monthly sentiment trend on reviews since January please, and validate the VADER labels against "
                    "the star ratings (1-5 stars, so 3 is neutral).", tools, env)
    assert steps[0]["args"] | {"rating_column": "rating", "rating_neutral": 3, "granularity": "month"} == steps[0][
        "args"]
    assert _agenda("anomalies in order value", tools, env)[0]["args"] == {}  # "value" is a word, not a column
