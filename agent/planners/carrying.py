"""What flows into a step from before it: the results earlier in the turn (run ids, names, drafted content, a
recommended plan) and the thread's last turns (the run it made, the population and period it was about, the id it
read, the plan an instruction carries out). Split from agent/planners/steps.py, which works out each step's own
arguments and the steps an action needs first."""

from __future__ import annotations

import re

from agent.planners.extract import best_name_match, mentions, parse_when
from agent.planners.steps import IT
from tools.registry import ToolSpec


def carry_thread_run(step: dict, spec: ToolSpec, state: dict, planned: list[str]) -> None:
    """An action reading the run the previous turn made ("save them as an audience") gets that run's id, not
    whichever run is newest."""
    last = (state.get("last_tool") or {}).get("name")
    props = spec.json_schema().get("properties", {})
    reads = [tool for param, choices in spec.requires.items() for value, tool in choices.items()
             if step["args"].get(param) == value and tool == last and tool not in planned]
    if reads and "run_id" in props and "run_id" not in step["args"] and (run := thread_run(state, reads[0])):
        step["args"]["run_id"] = run


ORDINAL = re.compile(r"\b(?:(first|1st|top|best|winning|winner)|(second|2nd)|(third|3rd)|(fourth|4th)|(fifth|5th)|(last))\b"
                     r"|(?:#|\b(?:number|no\.?|option|variant|line|version)\s*)([1-9])\b", re.IGNORECASE)


def thread_result(state: dict, tool: str) -> dict | None:
    """`tool`'s latest result earlier in the thread, read from the conversation's tool messages."""
    from agent.planners.context_budget import read_tool_content

    messages = state.get("messages") or []
    names = {call["id"]: call["function"]["name"] for m in messages for call in m.get("tool_calls") or []
             if isinstance(call, dict) and "function" in call}
    for message in reversed(messages):
        if message.get("role") == "tool" and names.get(message.get("tool_call_id")) == tool:
            return read_tool_content(message.get("content") or "")
    return None


def carry_thread_plan(step: dict, spec: ToolSpec, state: dict, text: str, planned: list[str]) -> None:
    """An action whose per-channel amounts the instruction leaves open, right after a turn that recommended a plan
    ("ok, apply the recommendation", "put that live from 1 Oct"): the plan's amounts per day, as carry() takes
    them from a plan made in the same turn."""
    last = (state.get("last_tool") or {}).get("name")
    props = spec.json_schema().get("properties", {})
    open_ = [p for p, prop in props.items() if prop.get("type") == "object" and p not in step["args"]]
    if not open_ or not last or last in planned or not (IT.search(text) or RECOMMENDED.search(text)):
        return
    if plan := daily_plan((thread_result(state, last) or {}).get("metrics") or {}):
        step["args"][open_[0]] = plan


def daily_plan(metrics: dict) -> dict[str, float] | None:
    """A result's recommended plan over its horizon as amounts per day (channel → amount), if it holds one."""
    rec = metrics.get("recommendation")
    if not isinstance(rec, dict) or not rec or not all(isinstance(v, int | float) for v in rec.values()):
        return None
    days = metrics.get("horizon_days") or 1
    return {ch: round(v / days, 2) for ch, v in rec.items()}


POPULATION = re.compile(r"\b(?:of|among|from|for) (?:those|these|them)\b|\b(?:those|these|they|them)\b|"
                        r"\bthe (?:[\w-]+ ){1,2}ones\b", re.I)
WHO_OF = re.compile(r"\b(?:of|among|from|out of|for) (?:those|these|them|the (?:[\w-]+ ){1,2}ones)\b,?", re.I)
"""A population named by pointing back ("of the high-risk ones"): who the question is about, not what it asks."""


def carry_population(step: dict, spec: ToolSpec, state: dict, text: str) -> None:
    """An analysis that can report on a population (`among`) asked about "those" right after a run of customers
    its field accepts ("which of those are worth the most?" after a churn run): that run, not every customer."""
    prop = spec.json_schema().get("properties", {}).get("among")
    run = (state.get("last_tool") or {}).get("run_id")
    if prop is None or "among" in step["args"] or not run or not POPULATION.search(text):
        return
    if str(run).split("-")[0] in str(prop.get("description", "")).lower():  # "a churn run's id" takes churn-…
        step["args"]["among"] = run


SAME_PERIOD = re.compile(r"\b(?:(?:the )?same|that|those) (?:period|time ?frame|time window|time|dates|window|range|"
                         r"month|week|quarter|days)\b|\bover the same\b", re.I)


def carry_period(step: dict, spec: ToolSpec, state: dict, text: str) -> None:
    """An analysis asked "for the same period" as the thread's last result: that result's start and end, when the
    text says no period of its own."""
    last = (state.get("last_tool") or {}).get("args") or {}
    props = spec.json_schema().get("properties", {})
    if SAME_PERIOD.search(text) and not {"start", "end"} & set(step["args"]):
        step["args"].update({k: last[k] for k in ("start", "end") if k in props and last.get(k)})


def carry_subject(step: dict, spec: ToolSpec, state: dict) -> None:
    """A follow-up to the same analysis about the same thing ("Were people assigned to the three arms as planned?"
    after an experiment's results): the id the last result was about, when the text names none of its own."""
    last = state.get("last_tool") or {}
    if last.get("name") != step["name"]:
        return
    props = spec.json_schema().get("properties", {})
    for key, value in (last.get("args") or {}).items():
        if key.endswith("_id") and key != "run_id" and key in props and key not in step["args"] and value:
            step["args"][key] = value


def carry_thread_args(step: dict, spec: ToolSpec, state: dict, text: str, planned: list[str]) -> None:
    """An action right after an analysis that took the same inputs, said as "launch it" / "looks good, do it": the
    analysis' inputs the instruction does not change (a plan's audience, channel and holdout for its launch)."""
    from agent.planners.extract.args import FREE_TEXT

    last = state.get("last_tool") or {}
    if not last.get("name") or last["name"] in planned or not IT.search(text):
        return
    props = spec.json_schema().get("properties", {})
    for key, value in (last.get("args") or {}).items():
        prop = props.get(key)
        if prop is None or key in step["args"] or key in FREE_TEXT or value is None:
            continue
        allowed = prop.get("enum") or next((a.get("enum") for a in prop.get("anyOf", []) if a.get("enum")), None)
        if allowed is None or value in allowed:
            step["args"][key] = value


RECOMMENDED = re.compile(r"\b(recommend\w*|suggest\w*|proposed|proposal|optimi[sz]\w+|do it|go ahead|as planned)\b",
                         re.IGNORECASE)


def carry_thread_content(step: dict, spec: ToolSpec, state: dict, text: str, planned: list[str]) -> None:
    """An action whose content input the instruction leaves open, after a turn that drafted content ("send the
    second one to …"): the variant it points at by position (first, 2nd, #3, the last), else the top-ranked one."""
    props = spec.json_schema().get("properties", {})
    if "variant" not in props or "variant" in step["args"]:
        return
    for tool in [t for t in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", props["variant"].get("description") or "")
                 if t not in planned]:  # the tool named where the input is described supplies it
        result = thread_result(state, tool)
        texts = [r["text"] for r in (result or {}).get("data") or [] if isinstance(r, dict) and r.get("text")]
        if texts:
            found = ORDINAL.search(text)
            position = 0 if not found else (len(texts) - 1 if found.group(6) else
                                            int(found.group(7)) - 1 if found.group(7) else
                                            next(i for i in range(5) if found.group(i + 1)))
            if position < len(texts):
                step["args"]["variant"] = texts[position]
            return


def thread_run(state: dict, tool: str) -> str | None:
    """The run id of `tool`'s latest result earlier in the thread: `last_tool["run_id"]` when the graph keeps it,
    else read from the conversation's tool messages (results enter it as data)."""
    last = state.get("last_tool") or {}
    if last.get("name") == tool and last.get("run_id"):
        return last["run_id"]
    messages = state.get("messages") or []
    names = {call["id"]: call["function"]["name"] for m in messages for call in m.get("tool_calls") or []
             if isinstance(call, dict) and "function" in call}
    for message in reversed(messages):
        if message.get("role") == "tool" and names.get(message.get("tool_call_id")) == tool:
            found = re.search(r'"run_id":\s*"([\w.-]+)"', message.get("content") or "")
            return found.group(1) if found else None
    return None


def carry(step: dict, calls: list[dict], tools: dict[str, ToolSpec], env, question: str = "") -> dict:
    """Results of earlier steps carried into a step's arguments: run ids of the runs it reads, the source, segment
    or audience names the results hold and the request mentions, drafted content, recommended budgets."""
    spec = tools[step["name"]]
    args = dict(step["args"])
    props = spec.json_schema().get("properties", {})
    ok = [c for c in calls if c.get("ok")]
    for param, choices in spec.requires.items():  # the run the action reads: the one made for it
        tool = choices.get(args.get(param)) if param in args else None
        made = next((c for c in reversed(ok) if c["name"] == tool), None)
        if made and "run_id" in props and "run_id" not in args and (
                run := ((made.get("result") or {}).get("metrics") or {}).get("run_id")):
            args["run_id"] = run
    if ok:
        prev = ok[-1]
        metrics = (prev.get("result") or {}).get("metrics", {})
        data = (prev.get("result") or {}).get("data", [])
        for field in ("segment", "audience"):  # names the earlier result holds and the request mentions
            if field in props and field not in args:
                names = {str(r[k]) for r in data for k in r if field in k and isinstance(r[k], str)}
                hits = mentions(question, sorted(names, key=len, reverse=True)) or best_name_match(
                    question, {n: n for n in names})
                if hits:
                    args[field] = hits[0]
        if "variant" in props and "variant" not in args:
            texts = [r.get("text") for r in data if r.get("text")]
            if texts:
                args["variant"] = texts[0]
                if "channel" in props and "channel" not in args and (prev.get("args") or {}).get("channel") in (
                        props["channel"].get("enum") or ()):
                    args["channel"] = prev["args"]["channel"]  # the drafted text was written for that channel
        if "audience" in props and "audience" not in args and metrics.get("audience_id"):
            args["audience"] = metrics["audience_id"]
        plan = daily_plan(metrics)
        for param, prop in props.items():  # a recommended plan over the horizon → per-day amounts
            if prop.get("type") == "object" and param not in args and plan:
                args[param] = plan
    if "send_at" in props and "send_at" not in args:
        args["send_at"] = parse_when("send", env.today).isoformat()
    return default_name(args, props, spec, calls, env)


def default_name(args: dict, props: dict, spec: ToolSpec, calls: list[dict], env) -> dict:
    """An action that needs a name and got none is named after what it holds and the day."""
    if "name" in props and "name" not in args and spec.approval:
        what = args.get("segment") or args.get("source") or next(
            (c["name"] for c in calls if c.get("ok")), "customers")
        args["name"] = f"{str(what).replace('_', ' ').capitalize()} audience {env.today:%Y-%m-%d}"
    return args
