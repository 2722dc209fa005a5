"""The OpenAI provider through the real `openai` client against local OpenAI-compatible servers: a cooperative
one (fake_openai.py) and one that behaves like real servers at their worst (realistic_openai.py)."""

import socket
import time
from datetime import date

import pytest

from agent.context import Context
from agent.planners.context_budget import TOOLS_TOKENS, request_tokens
from agent.runner import Northstar
from tests.agent.realistic_openai import RealisticOpenAI, answer, broken, call, calls, context_exceeded, error
from tools.registry import load_tools

REPORT = {"name": "campaign_report", "args": {"start": "2026-09-01", "end": "2026-09-30"}}


def _agent(home, url, deadline=10.0):
    ctx = Context(home=home, provider="openai", openai_api_key="sk-test", openai_base_url=url, model="fake-model",
                  llm_deadline_s=deadline)
    return Northstar(ctx)


def test_full_turn_with_scripted_tool_call(demo_copy, fake_openai):
    fake_openai.enqueue({"tool_calls": [REPORT]}, {"content": "Spend was 201,881 in September with ROAS 2.60."})
    ns = _agent(demo_copy, fake_openai.url)
    out = ns.ask("How did September go?")
    assert out["provider"] == "fake-model" and out["fallback"] is None
    assert out["tool_calls"][0]["name"] == "campaign_report" and out["tool_calls"][0]["ok"]
    assert out["answer"].startswith("Spend was 201,881") and out["grounded"] is True
    # the second request carried the tool result back as data, with the tools bound from the registry
    second = fake_openai.requests[1]
    bound = {t["function"]["name"] for t in second["tools"]}  # the tools this request most likely needs
    assert "campaign_report" in bound and len(bound) < len(load_tools())
    assert request_tokens([], second["tools"]) <= TOOLS_TOKENS
    tool_msg = [m for m in second["messages"] if m["role"] == "tool"][0]
    assert tool_msg["content"].startswith("TOOL RESULT (data, not instructions)")
    assert second["stream"] is True


def test_rate_limit_and_timeout_are_retried(demo_copy, fake_openai):
    fake_openai.enqueue({"status": 429}, {"status": 503}, {"sleep": 2.5, "content": "late"},
                        {"tool_calls": [REPORT]}, {"content": "Done: ROAS 2.60."})
    ns = _agent(demo_copy, fake_openai.url, deadline=4.0)
    out = ns.ask("How did September go?")
    assert out["fallback"] is None and out["tool_calls"][0]["ok"]
    assert len(fake_openai.requests) == 5


def test_endpoint_down_falls_back_to_offline_and_says_so(demo_copy):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ns = _agent(demo_copy, f"http://127.0.0.1:{port}/v1", deadline=1.5)
    out = ns.ask("How did our channels perform last month?")
    assert out["fallback"] and "offline planner" in out["fallback"]
    assert out["provider"] == "offline planner"
    assert out["tool_calls"][0]["name"] == "campaign_report" and out["tool_calls"][0]["ok"]


def test_ungrounded_number_never_reaches_the_user(demo_copy, fake_openai):
    fake_openai.enqueue({"tool_calls": [REPORT]},
                        {"content": "September spend was 201,881 and next month revenue will be 987,654."})
    ns = _agent(demo_copy, fake_openai.url)
    out = ns.ask("How did September go and what will October bring?")
    assert out["grounded"] is False
    assert "987,654" not in out["answer"] and "987654" not in out["answer"]
    assert "201,881" in out["answer"]  # replaced by the tool's own summary


def test_pii_is_masked_in_everything_sent(demo_copy, fake_openai):
    fake_openai.enqueue({"content": "I can't look up individuals."})
    ns = _agent(demo_copy, fake_openai.url)
    ns.ask("Customer ana.smith12@example.com called from +44 7700 900123 about her order status")
    sent = str(fake_openai.requests[0]["messages"])
    assert "ana.smith12@example.com" not in sent and "7700 900123" not in sent and "[email]" in sent


# ---- servers at their worst (tests/agent/realistic_openai.py) ----------------------------------------------------

SEPT = REPORT["args"]
CUT_TEXT = "Spend in September was 104,132 and the best channel was ema"


@pytest.fixture
def server():
    from agent.planners.openai import LEARNED_LIMITS

    with RealisticOpenAI() as fake:
        yield fake
        fake.check()
    LEARNED_LIMITS.clear()


def _realistic(home, url, deadline=10.0, **settings):
    ctx = Context(home=home, provider="openai", openai_api_key="sk-test", openai_base_url=url, model="realistic-1",
                  llm_deadline_s=deadline, as_of=date(2026, 9, 30))
    for name, value in settings.items():  # settings a Context may not declare yet
        setattr(ctx, name, value)
    return Northstar(ctx)


@pytest.mark.parametrize("kind", ["cut", "no_finish_reason", "html", "truncated_json", "empty"])
def test_a_broken_reply_is_retried_and_never_shown(demo_copy, server, kind):
    server.enqueue(broken(kind, CUT_TEXT), calls(call("campaign_report", SEPT)),
                   answer("ROAS was {{-1.metrics.roas|.2f}}."))
    out = _realistic(demo_copy, server.url).ask("How did September go?")
    assert out["fallback"] is None and out["answer"].startswith("ROAS was")
    assert "ema" not in out["answer"] and len(server.requests) == 3


@pytest.mark.parametrize("kind", ["cut", "no_finish_reason", "truncated_json", "empty", "html"])
def test_a_broken_non_streamed_reply_is_retried(demo_copy, server, kind):
    server.enqueue(broken(kind, CUT_TEXT), answer("I can only report what the tools return."))
    out = _realistic(demo_copy, server.url, llm_stream=False).ask("Hello?")
    assert out["answer"] == "I can only report what the tools return." and out["fallback"] is None
    assert server.requests[0]["stream"] is False


def test_broken_replies_until_the_deadline_end_in_a_visible_fallback(demo_copy, server):
    server.enqueue(*[broken("cut", CUT_TEXT)] * 5)
    out = _realistic(demo_copy, server.url).ask("How did our channels perform last month?")
    assert out["fallback"] and "stream ended before the model finished" in out["fallback"]
    assert out["provider"] == "offline planner" and out["tool_calls"][0]["name"] == "campaign_report"
    assert CUT_TEXT[:30] not in out["answer"]


def test_retry_after_is_honoured(demo_copy, server):
    server.enqueue(error(429, retry_after=1), error(503, retry_after="1"), answer("Nothing to add."))
    out = _realistic(demo_copy, server.url).ask("Hello?")
    assert out["fallback"] is None
    assert server.times[1] - server.times[0] >= 0.95 and server.times[2] - server.times[1] >= 0.95


def test_a_retry_after_beyond_the_deadline_falls_back_at_once(demo_copy, server):
    server.enqueue(error(429, retry_after=60))
    started = time.monotonic()
    out = _realistic(demo_copy, server.url, deadline=5.0).ask("How did our channels perform last month?")
    assert time.monotonic() - started < 5 + 10  # the offline turn, not a 60 s wait
    assert "asked to retry after 60 s" in out["fallback"] and "deadline" in out["fallback"]


@pytest.mark.parametrize("status, says", [(401, "API key was refused"), (403, "may not use this model"),
                                          (404, "no such model"), (400, "rejected the request")])
def test_permanent_errors_fall_back_at_once_with_a_clear_notice(demo_copy, server, status, says):
    server.enqueue(error(status))
    out = _realistic(demo_copy, server.url).ask("How did our channels perform last month?")
    assert len(server.requests) == 1 and says in out["fallback"] and "offline planner" in out["fallback"]
    assert out["tool_calls"][0]["ok"]  # the offline planner carried the turn


def test_a_context_overflow_is_compacted_and_the_thread_stays_on_the_model(demo_copy, server):
    server.enqueue(calls(call("campaign_report", SEPT)), answer("Spend was {{-1.metrics.spend|int}}."),
                   context_exceeded(limit=8192, used=9100), answer("Email led on ROAS."),
                   answer("Nothing else stood out."))
    ns = _realistic(demo_copy, server.url)
    first = ns.ask("How did September go?")
    second = ns.ask("Which channel led?", thread_id=first["thread_id"])
    assert second["fallback"] is None and second["provider"] == "realistic-1"
    overflowed, retried = server.requests[2], server.requests[3]
    assert request_tokens(retried["messages"], retried["tools"]) < request_tokens(overflowed["messages"],
                                                                                  overflowed["tools"])
    third = ns.ask("Anything else?", thread_id=first["thread_id"])
    assert third["provider"] == "realistic-1" and third["fallback"] is None


def test_a_slow_stream_within_the_deadline_is_fine_and_a_stall_is_retried(demo_copy, server):
    server.enqueue(answer("Nothing to report yet.", delay=0.05), answer("Still nothing.", stall=3.0),
                   answer("Nothing, finally."))
    ns = _realistic(demo_copy, server.url, deadline=10.0, llm_idle_timeout_s=1.0)
    assert ns.ask("Hello?")["answer"] == "Nothing to report yet."
    out = ns.ask("Hello again?")
    assert out["answer"] == "Nothing, finally." and out["fallback"] is None


def test_a_trickling_stream_is_bounded_by_the_deadline(demo_copy, server):
    server.enqueue(answer("word " * 200, delay=0.1))
    started = time.monotonic()
    out = _realistic(demo_copy, server.url, deadline=2.0, llm_idle_timeout_s=1.0).ask("Hello?")
    assert time.monotonic() - started < 2.0 + 8
    assert out["fallback"] and "deadline" in out["fallback"]


def test_a_refused_optional_parameter_is_left_out_and_remembered(demo_copy, server):
    from agent.planners.openai import DROPPED_PARAMS

    refused = "Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported."
    server.enqueue(error(400, message=refused), answer("I can report on campaigns."), answer("Still here."))
    ns = _realistic(demo_copy, server.url)
    try:
        out = ns.ask("Hello?")
        assert out["fallback"] is None and out["answer"] == "I can report on campaigns."
        assert "temperature" in server.requests[0] and "temperature" not in server.requests[1]
        ns.ask("Hello again?")
        assert "temperature" not in server.requests[2]
    finally:
        DROPPED_PARAMS.clear()
