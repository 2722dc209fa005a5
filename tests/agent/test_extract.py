"""The offline planner's argument extraction, rule by rule, with a fixed today (Wednesday 2026-09-30).

These pin the behaviour the code has, quirks included (marked "as it reads today"): the evals depend on it.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from agent.planners.extract import (
    best_name_match,
    channel_amounts,
    count_for,
    extract_args,
    mentions,
    money,
    parse_period,
    parse_when,
    percents,
    quoted_name,
    quoted_text,
)
from agent.planners.extract.args import RULES, field_type
from agent.planners.extract.names import enum_choices
from agent.planners.extract.quantities import number_for

TODAY = date(2026, 9, 30)
VOCAB = {
    "channel": ["affiliate", "display", "email", "push", "search", "sms", "social", "video"],
    "experiment_id": ["EXP-FREESHIP", "EXP-SUBJECT"],
    "experiment_name": {"free shipping banner": "EXP-FREESHIP", "subject line style": "EXP-SUBJECT"},
    "segment": ["Champions", "At Risk"],
    "audience": ["VIP Early Access"],
    "user_table": ["journeys"],
}
OPTIONAL_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
OPTIONAL_DATE = {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}


def span(start: str, end: str) -> dict:
    return {"start": date.fromisoformat(start), "end": date.fromisoformat(end)}


# --- periods -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("How did our channels perform last month?", span("2026-08-01", "2026-08-31")),
    ("Spend by channel for Q3", span("2026-07-01", "2026-09-30")),
    ("Q4", span("2025-10-01", "2025-12-31")),  # a quarter not yet over is last year's
    ("q1 2025", span("2025-01-01", "2025-03-31")),
    ("revenue since September", span("2026-09-01", "2026-09-30")),
    ("since the start of March", span("2026-03-01", "2026-09-30")),
    ("between March and May 2026", span("2026-03-01", "2026-05-31")),
    ("from March to May", span("2026-03-01", "2026-05-31")),
    ("June through September", span("2026-06-01", "2026-09-30")),
    ("across September", span("2026-09-01", "2026-09-30")),
    ("over the whole of calendar 2025", span("2025-01-01", "2025-12-31")),
    ("orders on 17 June 2026", span("2026-06-17", "2026-06-17")),
    ("as it looked on 1 June", span("2026-06-01", "2026-06-01")),
    ("over the last six months", span("2026-04-04", "2026-09-30")),  # a month is 30 days here
    ("this summer", span("2026-06-01", "2026-08-31")),
    ("since the beginning of June 2026", span("2026-06-01", "2026-09-30")),
    ("last 14 days", span("2026-09-17", "2026-09-30")),
    ("last quarter", span("2026-04-01", "2026-06-30")),
    ("this quarter", span("2026-07-01", "2026-09-30")),
    ("this month", span("2026-09-01", "2026-09-30")),
    ("last week", span("2026-09-21", "2026-09-27")),
    ("this week", span("2026-09-28", "2026-09-30")),
    ("yesterday", span("2026-09-29", "2026-09-29")),
    ("last year", span("2025-01-01", "2025-12-31")),
    ("ytd", span("2026-01-01", "2026-09-30")),
    ("in July", span("2026-07-01", "2026-07-31")),
    ("in December", span("2025-12-01", "2025-12-31")),  # the latest December up to today
    ("for 2025", span("2025-01-01", "2025-12-31")),
    ("from 2026-01-01 to 2026-03-31", span("2026-01-01", "2026-03-31")),
    ("since 2026-02-01", span("2026-02-01", "2026-09-30")),
    ("on 2026-05-05", span("2026-05-05", "2026-05-05")),
    ("nothing about time here", {}),
])
def test_parse_period_ranges(text, expected):
    assert parse_period(text, TODAY) == expected


@pytest.mark.parametrize("text, expected", [
    ("Who will churn in the next 90 days?", {"horizon_days": 90}),
    ("next 6 weeks", {"horizon_days": 42}),
    ("next quarter", {"horizon_days": 90}),
    ("over the coming year", {"horizon_days": 365}),
    ("as of 2026-06-01", {"as_of": date(2026, 6, 1)}),
    ("as of 2026-06-01 since 2026-01-01", {"as_of": date(2026, 6, 1), **span("2026-01-01", "2026-09-30")}),
])
def test_parse_period_horizon_and_as_of(text, expected):
    assert parse_period(text, TODAY) == expected


def test_parse_period_never_ends_after_today():
    assert parse_period("from 2026-09-01 to 2026-12-31", TODAY) == span("2026-09-01", "2026-09-30")
    assert parse_period("in 2026", TODAY) == span("2026-01-01", "2026-09-30")


@pytest.mark.parametrize("text, expected", [
    ("send it tomorrow at 9", datetime(2026, 10, 1, 9, 0)),
    ("next Monday 10am", datetime(2026, 10, 5, 10, 0)),
    ("on friday at 3pm", datetime(2026, 10, 2, 15, 0)),
    ("wednesday", datetime(2026, 10, 7, 9, 0)),  # today's weekday means next week's
    ("2026-10-05 09:30", datetime(2026, 10, 5, 9, 30)),
    ("next week", datetime(2026, 10, 5, 9, 0)),
    ("schedule it", datetime(2026, 10, 1, 9, 0)),  # an action without a day: tomorrow at 9
    ("how are we doing", None),
])
def test_parse_when(text, expected):
    assert parse_when(text, TODAY) == expected


# --- quantities ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("a budget of 200k", 200_000.0),
    ("$1.5M", 1_500_000.0),
    ("€300 thousand", 300_000.0),
    ("2 million", 2_000_000.0),
    ("$50", 50.0),
    ("over 30 days", None),  # a bare number is no amount
    ("10%", None),
    ("200k customers", None),
])
def test_money(text, expected):
    assert money(text) == expected


def test_percents():
    assert percents("a 10% holdout") == [0.1]
    assert percents("5 percent lift and 2pp") == [0.05, 0.02]
    assert percents("no numbers") == []


@pytest.mark.parametrize("text, expected", [
    ("top 20 customers", 20),
    ("write 5 variants", 5),
    ("give me 7 fresh email variants", 7),
    ("three segments", 3),
    ("ten subject lines", 10),
    ("some variants", None),
])
def test_count_for(text, expected):
    assert count_for(text, ("variants", "segments", "customers", "subject lines")) == expected


def test_channel_amounts():
    assert channel_amounts("set search to 9000 and social to 2k a day", VOCAB["channel"]) == {
        "search": 9000.0, "social": 2000.0}
    assert channel_amounts("$500 per day on email", VOCAB["channel"]) == {"email": 500.0}


@pytest.mark.parametrize("name, kind, prop, text, expected", [
    ("baseline", "number", {}, "baseline conversion rate of 4%", 0.04),
    ("relative_mde", "number", {}, "detect a 10% lift", 0.1),
    ("daily_traffic", "number", {}, "2,000 visitors a day", 2000.0),
    ("sample_size_per_arm", "integer", {}, "20000 users per group", 20000),
    ("alpha", "number", {}, "use alpha of 0.01", 0.01),
    ("total_budget", "number", {}, "split a budget of 200k", 200_000.0),
    ("total_budget", "number", {}, "split $1.5M", 1_500_000.0),
    ("total_budget", "integer", {}, "split $1.5M", 1_500_000),
    ("total_budget", "number", {}, "split 10% more", None),  # an amount field takes no share
    ("holdout_pct", "number", {"maximum": 0.5}, "keep a 10% holdout", 0.1),
    ("holdout_pct", "number", {"maximum": 100}, "holdout of 10%", 10.0),
    ("max_change", "number", {}, "max change of 10%", 0.1),  # no maximum or default: a share is a fraction
    ("max_change", "number", {"maximum": 10, "default": 0.25}, "nothing may change by more than 10%", 0.1),
    ("power", "number", {"default": 0.8}, "at 90% power", 0.9),
    ("arms", "integer", {"default": 2}, "size a three-arm test", 3),
    ("mde", "number", {}, "to pick up a +0.5pp lift", 0.005),
    ("sample_size_per_arm", "integer", {}, "with 20k people in each arm", 20000),
    ("discount_rate", "number", {"maximum": 1, "default": 0.0}, "a 10% annual discount rate", 0.1),
    ("horizon_days", "integer", {"maximum": 3650}, "over a two-year (730 day) horizon", 730),
    ("lookback_days", "integer", {"maximum": 365}, "counting touches in the 14 days before they bought", 14),
    ("n", "integer", {}, "write 5 variants", 5),
    ("top_n", "integer", {}, "top 20 customers", 20),
    ("k", "integer", {}, "three segments", 3),
    ("limit", "integer", {}, "nothing to count", None),
])
def test_number_for_field(name, kind, prop, text, expected):
    assert number_for(name, kind, prop, text) == expected


@pytest.mark.parametrize("name, prop, synonyms, text, expected", [
    ("alpha", {"default": 0.05}, ("significance level",), "at a 1% significance level", 0.01),
    ("hot_threshold", {"default": 0.5}, ("hot",), "what if hot meant 70% or more?", 0.7),
    ("std", {}, ("standard deviation",), "revenue per user is 42 with a standard deviation of 60", 60.0),
])
def test_number_for_a_field_named_by_the_tools_synonyms(name, prop, synonyms, text, expected):
    assert number_for(name, "number", prop, text, synonyms) == expected


def test_numbers_are_linked_to_the_nearest_field_each_number_once():
    from agent.planners.extract.quantities import numbers_for_fields

    fields = {"baseline": ("number", {}), "relative_mde": ("number", {}), "mde": ("number", {}),
              "daily_traffic": ("number", {})}
    assert numbers_for_fields("detect a 10% lift on a 4% conversion rate with 2,000 visitors a day", fields) == {
        "relative_mde": 0.1, "baseline": 0.04, "daily_traffic": 2000.0}
    assert numbers_for_fields("pick up a +0.5pp lift on a 5% baseline", fields) == {"mde": 0.005, "baseline": 0.05}


# --- names and quoted text -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, name, passage", [
    ("Create an audience called 'VIP Early Access'", "VIP Early Access", "VIP Early Access"),
    ("Send “We miss you: 15% off your next order” to lapsed buyers", "We miss you: 15% off your next order",
     "We miss you: 15% off your next order"),
    ("save the list named Spring Sale 2026", "Spring Sale 2026", None),
    ("save as Gold Tier please", "Gold Tier", None),
    ("'hi'", "hi", None),  # too short for a passage
    ("no quotes here", None, None),
])
def test_quoted_name_and_text(text, name, passage):
    assert quoted_name(text) == name
    assert quoted_text(text) == passage


def test_mentions_in_order_of_appearance_with_short_names_as_whole_words():
    assert mentions("Compare email-marketing, Paid Search and social", ["search", "social", "email", "sms"]) == [
        "email", "search", "social"]
    assert mentions("send an SMS", ["sms"]) == ["sms"]
    assert mentions("join the smsclub", ["sms"]) == []


def test_best_name_match_needs_two_shared_words():
    names = VOCAB["experiment_name"]
    assert best_name_match("How did the free shipping test go?", names) == ["EXP-FREESHIP"]
    assert best_name_match("anything about shipping?", names) == []


def test_enum_choices_by_value_then_by_synonym():
    assert enum_choices("weekly numbers", ["day", "week", "month"]) == ["week"]
    assert enum_choices("first-touch model", ["first_touch", "last_touch"]) == ["first_touch"]
    assert enum_choices("all customers", ["segment", "customers", "churn"]) == []  # too common to be a choice


# --- the field rules -----------------------------------------------------------------------------------------

def test_field_type_looks_through_any_of_and_arrays():
    assert field_type({"enum": ["a", "b"]}) == ("enum", ["a", "b"])
    assert field_type({"anyOf": [{"enum": ["x"]}, {"type": "null"}]}) == ("enum", ["x"])
    assert field_type({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}) == ("array", [])
    assert field_type(OPTIONAL_DATE) == ("date", [])
    assert field_type({"type": "string", "format": "date-time"}) == ("date-time", [])
    assert field_type({}) == ("string", [])


def test_every_rule_has_a_named_fill():
    assert all(rule.fill.__name__ != "<lambda>" for rule in RULES)


def test_periods_fill_start_end_since_and_as_of():
    schema = {"properties": {"start": OPTIONAL_DATE, "end": OPTIONAL_DATE, "since": OPTIONAL_DATE}}
    assert extract_args("Spend by channel for Q3", schema, TODAY, VOCAB) == {
        "start": "2026-07-01", "end": "2026-09-30", "since": "2026-07-01"}
    as_of_only = {"properties": {"as_of": OPTIONAL_DATE}}  # a tool without a start takes the period's end
    assert extract_args("last month", as_of_only, TODAY, VOCAB) == {"as_of": "2026-08-31"}
    assert extract_args("as of 2026-06-01", as_of_only, TODAY, VOCAB) == {"as_of": "2026-06-01"}
    with_start = {"properties": {"as_of": OPTIONAL_DATE, "start": OPTIONAL_DATE}}
    assert extract_args("last month", with_start, TODAY, VOCAB) == {"start": "2026-08-01"}


def test_a_horizon_not_said_as_a_period_falls_through_to_the_number_rule():
    schema = {"properties": {"horizon_days": {"type": "integer", "maximum": 3650}}}
    assert extract_args("Predict CLV for the next year", schema, TODAY, VOCAB) == {"horizon_days": 365}
    assert extract_args("Predict CLV with horizon days of 180", schema, TODAY, VOCAB) == {"horizon_days": 180}


def test_names_the_warehouse_knows():
    schema = {"properties": {"channels": {"type": "array", "items": {"type": "string"}}, "channel": OPTIONAL_STRING,
                             "experiment_id": OPTIONAL_STRING, "segment": OPTIONAL_STRING,
                             "audience": OPTIONAL_STRING, "table": OPTIONAL_STRING, "paths_table": OPTIONAL_STRING}}
    text = "display and search for Champions in VIP Early Access, free shipping banner, from journeys"
    assert extract_args(text, schema, TODAY, VOCAB) == {
        "channels": ["display", "search"], "channel": "display", "experiment_id": "EXP-FREESHIP",
        "segment": "Champions", "audience": "VIP Early Access", "table": "journeys"}  # paths_table: the text names no paths
    assert extract_args("attribution over the paths in journeys", schema, TODAY, VOCAB)["paths_table"] == "journeys"


def test_an_enum_field_is_decided_by_the_enum_rule_alone():
    schema = {"properties": {"metric": {"enum": ["revenue", "conversions"]}}}
    assert extract_args("weekly conversions", schema, TODAY, VOCAB) == {"metric": "conversions"}
    assert extract_args("how are we doing", schema, TODAY, VOCAB) == {}


def test_quoted_text_free_text_offer_and_send_time():
    schema = {"properties": {"name": {"type": "string"}, "variant": {"type": "string"}, "query": {"type": "string"},
                             "goal": OPTIONAL_STRING, "topic": OPTIONAL_STRING, "offer": OPTIONAL_STRING,
                             "send_at": {"type": "string", "format": "date-time"}}, "required": ["name", "query"]}
    text = "  Send 'Autumn sale: 15% off everything' next Monday at 10am  "
    assert extract_args(text, schema, TODAY, VOCAB) == {  # the quote is the content; a name needs its cue
        "variant": "Autumn sale: 15% off everything",
        "query": text.strip(), "goal": text.strip(), "offer": "15% off", "send_at": "2026-10-05T10:00:00"}
    named = extract_args("Send 'Autumn sale: 15% off everything' next Monday, call it 'Autumn push'", schema, TODAY,
                         VOCAB)
    assert (named["name"], named["variant"]) == ("Autumn push", "Autumn sale: 15% off everything")


def test_numbers_and_per_channel_budgets():
    schema = {"properties": {"total_budget": {"anyOf": [{"type": "number"}, {"type": "null"}]},
                             "daily_budgets": {"type": "object"}, "top_n": {"type": "integer"},
                             "holdout_pct": {"type": "number", "maximum": 0.5}}}
    text = "Set search to 9000 and social to 2k a day, budget of 200k, top 20 customers, 10% holdout"
    assert extract_args(text, schema, TODAY, VOCAB) == {
        "total_budget": 200_000.0, "daily_budgets": {"search": 9000.0, "social": 2000.0}, "top_n": 20,
        "holdout_pct": 0.1}


def test_sql_is_composed_for_a_sql_field():
    schema = {"properties": {"sql": {"type": "string"}}, "required": ["sql"]}
    sql = extract_args("How many orders by country in 2025?", schema, TODAY, VOCAB)["sql"]
    assert sql.startswith("SELECT") and "year(order_date) = 2025" in sql
    assert extract_args("tell me a joke", schema, TODAY, VOCAB) == {}


@pytest.mark.parametrize("tool, text, expected", [
    ("plan_experiment", "3-arm test, baseline open rate is 22% and we want to spot +2pp. Sample size?",
     {"baseline": 0.22, "mde": 0.02, "arms": 3}),
    ("plan_experiment", "sample size for a three-way test, baseline 10%, detect 1 percentage point",
     {"baseline": 0.1, "mde": 0.01, "arms": 3}),
    ("plan_experiment", "a 10% relative lift on a 4% baseline", {"baseline": 0.04, "relative_mde": 0.1}),
    ("predict_clv", "What's the 2-year CLV with a 35% margin and 8% discount rate?",
     {"horizon_days": 730, "margin": 0.35, "discount_rate": 0.08}),
])
def test_units_tell_fields_apart(tool, text, expected):
    """Percentage points only measure an absolute difference; "2-year" is a duration; "three-way" counts arms."""
    from agent.planners.extract import extract_args
    from tools.registry import load_tools

    spec = load_tools()[tool]
    got = extract_args(text, spec.json_schema(), TODAY, {}, spec.synonyms)
    assert {k: got.get(k) for k in expected} == expected


@pytest.mark.parametrize("text, expected", [
    ("Check these against our brand rules: 'Best coats ever, guaranteed!!!' and 'Your winter picks are here'",
     ["Best coats ever, guaranteed!!!", "Your winter picks are here"]),
    ("Is 'Free gift inside' compliant?", ["Free gift inside"]),
    ("Write subject lines for the 'Spring edit' launch", None)])
def test_quoted_drafts_become_candidates(text, expected):
    from agent.planners.extract import extract_args
    from tools.registry import load_tools

    spec = load_tools()["generate_content_variants"]
    assert extract_args(text, spec.json_schema(), TODAY, {}, spec.synonyms).get("candidates") == expected


@pytest.mark.parametrize("text, expected", [
    ("plan a win-back email for lapsed VIPs in December, we expect a 2 pp lift",
     {"send_after": "2026-12-01", "send_before": "2026-12-31", "expected_lift": 0.02}),
    ("plan a promo email for next Monday", {"send_after": "2026-10-05", "send_before": None}),
])
def test_a_campaign_brief_gives_its_window_and_expected_lift(text, expected):
    from agent.planners.extract import extract_args
    from tools.registry import load_tools

    spec = load_tools()["plan_campaign"]
    got = extract_args(text, spec.json_schema(), TODAY, {}, spec.synonyms)
    assert {k: got.get(k) for k in expected} == expected
