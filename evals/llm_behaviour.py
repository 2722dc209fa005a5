"""The `llm_behaviour` suite: the LLM path on a model that behaves like real ones, offline (CI runs it).

Each case scripts a realistic fake model (tests/agent/realistic_openai.py, a local OpenAI-compatible server driven
through the real `openai` client) and is judged by its category. The suite passes when every category reaches
its threshold (evals/thresholds.yaml); its report also carries the measurements the issue asks for: acceptance
and catch rates, request sizes in tokens, and figures altered between tool results and what the model was sent
(reported, not gated, until masking by field lands).
"""

from __future__ import annotations

import json
import re
import time

FIGURE = re.compile(r"\d{4}-\d{2}-\d{2}|\d[\d,]*(?:\.\d+)?")


def run_suite(name: str, cases: list[dict], limits, customers: int):
    from agent.planners.context_budget import estimator
    from evals.runner import AgentSuite, SuiteReport
    from tests.agent.realistic_openai import RealisticOpenAI

    gates = dict(limits) if isinstance(limits, dict) else {}
    default = float(limits) if not isinstance(limits, dict) else float(limits.get("default", 1.0))
    with RealisticOpenAI(model="realistic-1") as fake:
        suite = AgentSuite("openai", customers=customers, openai_base_url=fake.url, openai_api_key="sk-eval",
                           model="realistic-1")
        try:
            results = [run_case(suite, fake, case) for case in cases]
        finally:
            suite.close()
    report = SuiteReport(name, threshold=1.0)
    categories = {}
    altered = [a for r in results for a in r["altered"]]
    gated = gates.get("altered_figures_max")
    if gated is not None:  # once masking works by field: 0 altered numbers or dates between results and requests
        report.cases += 1
        report.passed += int(len(altered) <= int(gated))
        if len(altered) > int(gated):
            report.failures.append({"id": "altered-figures", "why": "; ".join(altered[:5]), "expected": gated})
    for category in dict.fromkeys(r["category"] for r in results):
        mine = [r for r in results if r["category"] == category]
        passed = sum(not r["why"] for r in mine)
        threshold = float(gates.get(category, default))
        categories[category] = {"cases": len(mine), "passed": passed, "rate": round(passed / len(mine), 4),
                                "threshold": threshold}
        report.cases += 1
        report.passed += int(passed / len(mine) >= threshold)
    report.failures += [{"id": r["id"], "why": "; ".join(r["why"]), "expected": r["category"]}
                        for r in results if r["why"]]
    report.latencies = [r["ms"] for r in results]
    budget = next((r for r in results if r["category"] == "budget"), None)
    report.metrics = {
        "categories": categories,
        "tokens": {"estimator": estimator(),
                   "first_request_of_first_turn_max": max(r["firsts"][0] for r in results if r["firsts"]),
                   "first_request_of_any_turn_max": max(max(r["firsts"]) for r in results if r["firsts"]),
                   "any_request_max": max(max(r["tokens"]) for r in results if r["tokens"]),
                   "ten_turns_first_requests": budget["firsts"] if budget else None,
                   "ten_turns_all_requests": budget["tokens"] if budget else None},
        "altered_figures": {"count": len(altered), "examples": altered[:5], "gated": gated is not None}}
    return report


def run_case(suite, fake, case: dict) -> dict:
    from agent.planners.context_budget import request_tokens
    from agent.planners.openai import LEARNED_LIMITS
    from tests.agent.realistic_openai import reply_from

    fake.reset()
    LEARNED_LIMITS.clear()
    fake.enqueue(*(reply_from(r) for r in case["script"]))
    ns = _agent(suite, fake, case.get("settings") or {})
    outs, starts, questions, why = [], [], case.get("turns") or [case["question"]], []
    started = time.monotonic()
    try:
        thread = None
        for question in questions:
            starts.append(len(fake.requests))
            outs.append(ns.ask(question, thread_id=thread))
            thread = outs[-1]["thread_id"]
    except Exception as exc:  # a crash fails the case, not the run
        why.append(f"crashed: {type(exc).__name__}: {exc}")
    finally:
        ns.close()
    elapsed = time.monotonic() - started
    if not why:
        why = CHECKS[case["category"]](case, outs, fake, elapsed)
    if fake.script:
        why.append(f"{len(fake.script)} scripted replies were never requested")
    if fake.unexpected:
        why.append(f"{len(fake.unexpected)} requests came after the script ran out")
    tokens = [request_tokens(body["messages"], body.get("tools")) for body in fake.requests]
    return {"id": case["id"], "category": case["category"], "why": why, "ms": 1000 * elapsed, "tokens": tokens,
            "firsts": [tokens[i] for i in starts if i < len(tokens)],
            "altered": altered_figures(outs, fake.requests, starts, questions)}


def _agent(suite, fake, settings: dict):
    from agent.context import Context
    from agent.runner import Northstar

    ctx = Context(home=suite.home, provider="openai", as_of=suite.as_of, user="analyst",
                  roles={"analyst": "analyst", "local": "approver"}, llm_deadline_s=settings.get("deadline", 10.0),
                  openai_base_url=fake.url, openai_api_key="sk-eval", model="realistic-1")
    for key, value in settings.items():
        if key != "deadline":
            setattr(ctx, key, value)  # provider settings a Context may not declare yet
    return Northstar(ctx)


# ---- what passes, per category ------------------------------------------------------------------------------------

def _served(fake) -> str:
    return (fake.answers[-1] if fake.answers else "").strip()


def paraphrase(case, outs, fake, elapsed) -> list[str]:
    out = outs[-1]
    if out.get("fallback"):
        return [f"fell back: {out['fallback']}"]
    if out["grounded"] is not True or out["answer"] != _served(fake):
        return [f"honest paraphrase not accepted as written: {out['answer'][:200]!r}"]
    return []


def invented(case, outs, fake, elapsed) -> list[str]:
    out, absent = outs[-1], case["expect"]["absent"]
    problems = [f"fell back: {out['fallback']}"] if out.get("fallback") else []
    if absent in out["answer"] or out["grounded"] is not False:
        problems.append(f"invented or misattributed figure reached the user: {absent!r}")
    return problems


def followup(case, outs, fake, elapsed) -> list[str]:
    out = outs[-1]
    problems = [f"tools called: {[c['name'] for c in out['tool_calls']]}"] if out["tool_calls"] else []
    if out.get("fallback") or out["grounded"] is not True or out["answer"] != _served(fake):
        problems.append(f"follow-up from an earlier turn not accepted: {out['answer'][:200]!r}")
    return problems


def budget(case, outs, fake, elapsed) -> list[str]:
    from agent.planners.context_budget import request_tokens

    expect, problems = case["expect"], [f"fell back: {o['fallback']}" for o in outs if o.get("fallback")]
    sizes = [request_tokens(b["messages"], b.get("tools")) for b in fake.requests]
    if sizes and sizes[0] > expect["first_tokens"]:
        problems.append(f"first request {sizes[0]} tokens > {expect['first_tokens']}")
    if sizes and max(sizes) > expect["max_tokens"]:
        problems.append(f"a request of {max(sizes)} tokens > {expect['max_tokens']}")
    return problems


def broken(case, outs, fake, elapsed) -> list[str]:
    out, expect, problems = outs[-1], case["expect"], []
    if expect["outcome"] == "retry" and (out.get("fallback") or len(fake.requests) < 2):
        problems.append(f"expected a retry to succeed; fallback={out.get('fallback')!r}, "
                        f"{len(fake.requests)} requests")
    if expect["outcome"] == "fallback" and not (out.get("fallback") and out["provider"] == "offline planner"):
        problems.append(f"expected a visible fallback, got an answer from the model: {out['answer'][:120]!r}")
    if (shown := expect.get("never_shows")) and shown in (out["answer"] or ""):
        problems.append(f"a broken reply was shown: {shown!r}")
    if "requests" in expect and len(fake.requests) != expect["requests"]:
        problems.append(f"{len(fake.requests)} requests, expected {expect['requests']}")
    if (notice := expect.get("notice")) and notice not in (out.get("fallback") or ""):
        problems.append(f"notice {out.get('fallback')!r} does not say {notice!r}")
    if (wait := expect.get("min_wait_s")) and (len(fake.times) < 2 or fake.times[1] - fake.times[0] < wait):
        problems.append(f"Retry-After not honoured (waited {fake.times[1] - fake.times[0]:.2f} s)")
    if (limit := expect.get("max_seconds")) and elapsed > limit:
        problems.append(f"took {elapsed:.1f} s > {limit} s")
    return problems


def variants(case, outs, fake, elapsed) -> list[str]:
    out, expect, problems = outs[-1], case.get("expect") or {}, []
    if out.get("fallback"):
        problems.append(f"fell back: {out['fallback']}")
    if "grounded" in expect and out["grounded"] is not expect["grounded"]:
        problems.append(f"grounded={out['grounded']}: {out['answer'][:160]!r}")
    if "tools" in expect and [c["name"] for c in out["tool_calls"] if c.get("ok")] != expect["tools"]:
        problems.append(f"tools {[(c['name'], c.get('ok')) for c in out['tool_calls']]}, expected {expect['tools']}")
    if (shown := expect.get("never_shows")) and shown in (out["answer"] or ""):
        problems.append(f"shown to the user: {shown!r}")
    if (told := expect.get("told")) and not any(told in (m.get("content") or "") for b in fake.requests
                                                for m in b["messages"] if m["role"] == "tool"):
        problems.append(f"the model was never told {told!r}")
    return problems


CHECKS = {"paraphrase": paraphrase, "invented": invented, "followup": followup, "budget": budget,
          "broken": broken, "variants": variants}


# ---- figures altered on the way to the model ------------------------------------------------------------------------

def altered_figures(outs: list[dict], requests: list[dict], starts: list[int], questions: list[str]) -> list[str]:
    """Numbers and dates that differ between what a tool returned (or the user asked) and what the model was sent
    in the turn's last request: values past 6 significant figures and data cut to fit are not alterations."""
    found: list[str] = []
    for n, out in enumerate(outs):
        end = starts[n + 1] if n + 1 < len(starts) else len(requests)
        if end <= starts[n]:
            continue
        messages = requests[end - 1]["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        if FIGURE.findall(messages[last_user]["content"] or "") != FIGURE.findall(questions[n]):
            found.append(f"question: {questions[n]!r} → {messages[last_user]['content']!r}")
        sent = [m["content"] for m in messages[last_user:] if m["role"] == "tool"]
        for call, content in zip(out["tool_calls"], sent, strict=False):
            if call.get("ok") and content.startswith("TOOL RESULT"):
                try:
                    shown = json.loads(content[content.index("{"):])
                except json.JSONDecodeError:
                    found.append(f"{call['name']}: the result sent was not valid JSON")
                    continue
                _compare(shown, call["result"], call["name"], found)
    return found


def _compare(sent, original, path: str, found: list[str]) -> None:
    if isinstance(sent, dict) and isinstance(original, dict):
        for key, value in sent.items():
            if key != "_cut" and key in original:
                _compare(value, original[key], f"{path}.{key}", found)
    elif isinstance(sent, list) and isinstance(original, list):
        for i, value in enumerate(sent[: len(original)]):
            if not (isinstance(value, str) and value.startswith("… ")):
                _compare(value, original[i], f"{path}[{i}]", found)
    elif isinstance(sent, bool) or isinstance(original, bool):
        if sent != original:
            found.append(f"{path}: {original!r} → {sent!r}")
    elif isinstance(sent, int | float) and isinstance(original, int | float):
        if abs(sent - original) > 5e-6 * abs(original) + 1e-12:
            found.append(f"{path}: {original!r} → {sent!r}")
    elif isinstance(sent, str) and isinstance(original, str) and sent != original:
        if sent == "[masked]" or sent.startswith("masked:"):
            return
        kept, whole = FIGURE.findall(sent.rstrip("…")), FIGURE.findall(original)
        if sent.endswith("…"):
            kept = kept[:-1]  # the last figure may have been cut in half
            whole = whole[: len(kept)]
        if kept != whole:
            found.append(f"{path}: {original[:80]!r} → {sent[:80]!r}")
