"""An action's steps: its arguments from the instruction, the steps it needs first, and what flows between them.

An action declares what it reads (`requires`: parameter → value → tool, e.g. create_audience's source "churn" →
score_churn; the value None: the tool whose result supplies the parameter when the instruction does not). The
planner works out the value the instruction means (a field described as belonging to one value, ids listed →
explicit customers, a segment named → its saved run, the result the previous turn made when the instruction
points back at it, else the declared tool that fits the words best), runs that tool first unless this turn or the
previous one already did, and carries its run id into the action; the name the user gave is kept. An input the
instruction leaves open is supplied by the tool declared for it, or named where the parameter is described
("… from generate_content_variants"), or the analysis the instruction points at ("apply the optimiser's split");
when nothing can supply it the planner asks (agent/planners/clarify.py).
"""

from __future__ import annotations

import re
from functools import cache

from agent.planners.extract import best_name_match, extract_args, mentions, parse_when
from agent.planners.extract.instructions import budget_changes, mood
from agent.planners.extract.names import NAME_CUE
from agent.planners.routing import score_tools
from tools.registry import ToolSpec

SUPPLIER_MIN = 0.30   # an analysis must fit an instruction at least this well to supply an action's missing input
EVIDENCE_CAP = 4       # fields counted as evidence for an analysis
NAMED_FIELDS = ("experiment_id", "campaign_ids", "campaign_id", "audience", "segment", "table", "paths_table")
ANAPHORA = re.compile(r"\b(them|those|these|they|that list|that group|the same ones|this group)\b", re.I)
IT = re.compile(r"\b(it|that|this|them|the plan|the split|the recommendation|the money|the same|the difference|"
                r"the rest)\b", re.I)  # "… and make it live", "… and give the money to video"


def said_verb(name: str, spec: ToolSpec, text: str, phrase_only: bool = False) -> bool:
    """Whether the text says the action's verb: its name's first word ("launch") or a phrase of the concept the tool
    declares under that word ("go live with" for launch_campaign, "save them as" or "make * audience" for
    create_audience, where * stands for up to four words)."""
    verb = name.split("_")[0]
    phrases = [*([] if phrase_only else [verb]), *spec.concepts.get(verb, ())]
    return any(_verb_pattern(p).search(text) for p in phrases)


@cache
def _verb_pattern(phrase: str) -> re.Pattern:
    """A verb phrase as a pattern, compiled once ("make * audience": up to four words where the * is)."""
    return re.compile(r"\b" + re.escape(phrase).replace(r"\ \*\ ", r"(?:\s+[\w'’-]+){0,4}\s+"), re.I)


def own_inputs(text: str, action: ToolSpec, last: ToolSpec, env) -> bool:
    """Whether an instruction gives the action inputs of its own, which the last tool does not take ("give search
    200 more a day from Monday" after a report: new daily budgets), so it is no follow-up of that tool."""
    from agent.planners.extract.args import FREE_TEXT

    if mood(text) != "instruction":
        return False
    theirs = set(last.json_schema().get("properties", {}))
    return any(k not in theirs and k not in FREE_TEXT for k in action_args(text, action, env))


def named_ids(text: str, analyses: list[tuple], tools: dict[str, ToolSpec]) -> tuple[set[str], set[str]]:
    """(the eligible analyses given an id the text names verbatim, such as "WB-2025-12" for measure_campaign's
    campaign_id; the analyses that read one thing by id and got none). The user named that thing, so a tool about
    another kind of thing fits no better for sharing the words."""
    low = text.lower()
    named, unnamed = set(), set()
    for _, eligible, name, _, _, args in analyses:
        ids = [k for k in tools[name].json_schema().get("properties", {}) if k.endswith("_id") and k != "run_id"]
        if eligible and any(isinstance(args.get(k), str) and re.search(r"[-_\d]", args[k])
                            and args[k].lower() in low for k in ids):
            named.add(name)
        elif ids and not any(k in args for k in ids):
            unnamed.add(name)
    return named, unnamed


def reports(text: str, spec: ToolSpec) -> bool:
    """Whether a short clause only names figures the tool reports ("spend vs revenue" after a channel question: the
    report's `key_metrics`), so it asks for part of that result, not for another tool."""
    from agent.planners.routing import words

    said = words(text) - {"versus", "cost me"}
    return bool(said) and said <= {w.rstrip("s") for m in spec.key_metrics for w in m.split("_")}


def action_args(text: str, spec: ToolSpec, env) -> dict:
    """What an instruction says for an action: the schema's fields, and per-channel amounts computed against what
    the parameter holds now (`current` values in the vocabulary) for relative changes."""
    schema = spec.json_schema()
    args = extract_args(text, schema, env.today, env.vocab, spec.synonyms)
    current = env.vocab.get("current") or {}
    for param, prop in schema.get("properties", {}).items():
        if prop.get("type") == "object" and param in current:
            changes = budget_changes(text, env.vocab.get("channel", []), current[param])
            if changes:
                args[param] = changes
    props = schema.get("properties", {})
    for param in [p for p in args if p in props and _out_of_range(args[p], props[p])]:
        args.pop(param)
    return args


def evidence(text: str, spec: ToolSpec, args: dict) -> int:
    """How much of what a tool takes the text gives: for an action, its required inputs the instruction resolves (a
    moment only when a day or time is said; a name only when one is given); for an analysis, the fields the text
    fills besides free text (a SELECT only when it names columns)."""
    from agent.planners.extract.args import FREE_TEXT
    from agent.planners.extract.periods import says_when

    if spec.approval:
        props = spec.json_schema().get("properties", {})
        required = spec.json_schema().get("required", [])
        found = moments = 0
        for field in props:
            if field == "name":  # said as a name ("called …", "a 'Lapsed VIPs' audience", "save … as 'X'")
                found += re.search(NAME_CUE, text, re.I) is not None or re.search(
                    r"(?<!\w)[\"“'‘][^\"”’]{2,60}[\"”'’]\s+(?:audience|list|segment)\b", text) is not None or (
                    re.search(r"\bsave\b[^\"“'‘]{0,40}\bas\s+[\"“'‘]", text, re.I) is not None)
            elif props[field].get("format") in ("date-time", "date") or "date" in str(props[field].get("anyOf")):
                moments += field in args and says_when(text)
            elif field in args and (field in required or "enum" not in str(props[field])):
                found += 1  # an optional choice among common words ("email", "high") is no sign of the action
        return found + moments if found else 0  # a day or time alone is no sign of which action is meant
    plain = [k for k in args if k not in FREE_TEXT and k != "sql"]
    named = [k for k in plain if k in NAMED_FIELDS]  # a name the warehouse holds counts twice
    sql = args.get("sql") or ""
    composed = 2 * bool(re.search(r"\b(WHERE|GROUP BY)\b", sql)) + bool(  # a breakdown that also filters or
        re.search(r"\bGROUP BY\b", sql) and re.search(r"\bWHERE\b|\bpct_", sql))  # reads a rate says more
    return min(len(plain) + len(named) + composed, EVIDENCE_CAP)


def _out_of_range(value, prop: dict) -> bool:
    """A number beyond the field's declared bounds is left out (the tool's default applies), never clipped."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    bounds = [prop, *prop.get("anyOf", [])]
    high = next((b["maximum"] for b in bounds if "maximum" in b), None)
    low = next((b["minimum"] for b in bounds if "minimum" in b), None)
    below = next((b["exclusiveMaximum"] for b in bounds if "exclusiveMaximum" in b), None)
    above = next((b["exclusiveMinimum"] for b in bounds if "exclusiveMinimum" in b), None)
    return ((high is not None and value > high) or (low is not None and value < low)
            or (below is not None and value >= below) or (above is not None and value <= above))


def choose_source(param: str, choices: dict, args: dict, text: str, spec: ToolSpec, tools: dict, fresh: list[str]):
    """The value of a `requires` parameter the instruction means: a value that names a field the instruction filled
    (source "segment" when a segment is named; "customers" when customer ids are listed), the tool that just ran
    when the instruction points back at its result ("save them"), else the declared tool that fits best."""
    props = spec.json_schema().get("properties", {})
    prop = props.get(param, {})
    values = prop.get("enum") or next((a.get("enum") for a in prop.get("anyOf", []) if a.get("enum")), []) or []
    for field in args:  # a field the instruction filled that is described as belonging to one value ("(source=churn)")
        if field != param and (m := re.search(rf"\b{re.escape(param)}=(\w+)", props.get(field, {}).get("description")
                                              or "")) and m.group(1) in values:
            return m.group(1)
    for value in values:
        if any(field != param and field.startswith(str(value).rstrip("s")) for field in args):
            return value
    recent = [value for value, tool in choices.items() if value is not None and tool in fresh]
    if recent and (ANAPHORA.search(text) or len(recent) == 1 and not names_one_of(
            text, [tools[t] for t in choices.values() if t in tools])):
        return recent[-1]
    ranked = score_tools(text, {tool: tools[tool] for tool in choices.values() if tool in tools})
    best = next((value for value, tool in choices.items() if value is not None and tool == ranked[0][0]), None)
    if ranked and ranked[0][1] >= SUPPLIER_MIN:
        return best
    return prop.get("default") if prop.get("default") in choices else None  # the action's own default source


def prerequisites(step: dict, spec: ToolSpec, text: str, tools: dict[str, ToolSpec], env,
                  fresh: list[str]) -> list[dict]:
    """The steps to take before an action: the runs it reads (declared `requires`), and for each input the
    instruction leaves open, the tool that supplies it — declared (`requires` value None), or named where the
    parameter is described ("the approved content (… from generate_content_variants)"), or the analysis the
    instruction points at. An action supplies an input only when the instruction gives that action's own inputs
    ("email the bargain hunters": an audience from that segment first). Fills the action's choice of source."""
    args, before = step["args"], []
    for param, choices in spec.requires.items():
        if param not in args and (value := choose_source(param, choices, args, text, spec, tools, fresh)) is not None:
            args[param] = value
        tool = choices.get(args.get(param)) if param in args else choices.get(None)
        if saved := _saved_run(args, spec, env):
            args["run_id"] = saved  # the segment named is in a saved run: read that run, nothing to re-run
            continue
        if tool and tool in tools and tool not in fresh and tool not in [s["name"] for s in before]:
            before.append({"name": tool, "args": analysis_args(text, tools[tool], env)})
    props = spec.json_schema().get("properties", {})
    for missing in [r for r in spec.json_schema().get("required", []) if r not in args and r != "name"]:
        tool = _supplier(missing, spec, text, tools)
        if tool is None or tool in fresh or tool in [s["name"] for s in before]:
            continue
        if tools[tool].approval:
            supplied = action_args(text, tools[tool], env)
            if "name" in supplied and not re.search(NAME_CUE, text, re.I):
                supplied.pop("name")  # quoted text in a send is its content, not the new audience's name
            if _identifies(supplied):
                before += prerequisites({"name": tool, "args": supplied}, tools[tool], text, tools, env,
                                        fresh + [s["name"] for s in before])
                before.append({"name": tool, "args": supplied})
        elif suppliable(missing, props) and names_one_of(text, [tools[tool]]):
            before.append({"name": tool, "args": analysis_args(text, tools[tool], env)})
    return before


def analysis_prerequisites(step: dict, spec: ToolSpec, text: str, tools: dict[str, ToolSpec], env,
                           fresh: list[str]) -> list[dict]:
    """The run an analysis reads (declared `requires`: plan_campaign's source "segment" → segment_customers) when the
    warehouse holds none yet and none ran in this thread: that tool first, with what the text says for it."""
    before = []
    for param, choices in spec.requires.items():
        value = step["args"].get(param)
        tool = choices.get(value) if value is not None else None
        if tool in tools and tool not in fresh and not env.vocab.get(f"{value}_run"):
            before.append({"name": tool, "args": analysis_args(text, tools[tool], env)})
    return before


def _saved_run(args: dict, spec: ToolSpec, env) -> str | None:
    """The saved run holding the named thing an action reads (a segment the warehouse knows), if any."""
    props = spec.json_schema().get("properties", {})
    for field in NAMED_FIELDS:
        runs = env.vocab.get(f"{field}_run") or {}
        if field in args and "run_id" in props and "run_id" not in args and args[field] in runs:
            return runs[args[field]]
    return None


def _pointed(text: str, tools: dict[str, ToolSpec]) -> str | None:
    """The analysis an instruction fits best."""
    ranked = [(n, s) for n, s in score_tools(text, tools) if not tools[n].approval]
    return ranked[0][0] if ranked and ranked[0][1] >= SUPPLIER_MIN else None


def _supplier(param: str, spec: ToolSpec, text: str, tools: dict[str, ToolSpec]) -> str | None:
    """The tool that supplies an open input: declared, named in the parameter's description, or the analysis the
    instruction points at when it names one of that analysis's concepts."""
    declared = (spec.requires.get(param) or {}).get(None)
    if declared in tools:
        return declared
    about = spec.json_schema().get("properties", {}).get(param, {}).get("description") or ""
    named = [name for name in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", about) if name in tools and name != spec.name]
    if named:
        return named[0]
    pointed = _pointed(text, tools)
    return pointed if pointed and names_one_of(text, [tools[pointed]]) else None


def _identifies(args: dict) -> bool:
    """Whether an action's arguments say whom it is about (a segment named, ids listed), beyond its defaults."""
    return any(field in args for field in NAMED_FIELDS + ("customer_ids",))


def names_one_of(text: str, specs: list[ToolSpec]) -> bool:
    """Whether the text names one of these tools' declared concepts or the words for one of their values ("the
    optimiser's split", "pick the subject line"): an instruction that leaves an input open is filled by an analysis
    only when it points at one."""
    from agent.planners.routing import concept_phrases

    low = " " + re.sub(r"[\s\-_/']+", " ", text.lower()) + " "
    phrases = {p for spec in specs for p in concept_phrases(spec) | {
        s for key, values in spec.synonyms.items() if key not in spec.params.model_fields for s in values}}
    return any(re.search(rf" {re.escape(re.sub(r'[-_/]+', ' ', p.lower()))}(?:s|es)? ", low) for p in phrases)


def suppliable(param: str, props: dict) -> bool:
    """Inputs an analysis can supply: per-channel amounts (a recommended plan), content to send (drafted copy);
    never who an action is for."""
    return props.get(param, {}).get("type") == "object" or param in ("variant", "text", "content", "message")


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


def analysis_args(text: str, spec: ToolSpec, env, keep_period: bool = False) -> dict:
    """An analysis's arguments from the text, numbers beyond a field's bounds left out. For a prerequisite
    (`keep_period` False) the dates said belong to the action ("live from October 1st"), not to the history the
    analysis reads."""
    from agent.planners.extract.args import PERIOD_FIELDS

    schema = spec.json_schema()
    args = extract_args(text, schema, env.today, env.vocab, spec.synonyms)
    props = schema.get("properties", {})
    args = {k: v for k, v in args.items() if not _out_of_range(v, props.get(k, {}))
            and (keep_period or k not in PERIOD_FIELDS)}
    if args.get("source", "segment") == "segment" and (saved := _saved_run(args, spec, env)):
        args["run_id"] = saved  # a segment named: the run that holds it, not whichever is newest
    return args


def missing_inputs(step: dict, spec: ToolSpec, earlier: list[dict]) -> list[str]:
    """Required inputs of an action that neither the instruction nor an earlier step will give (a moment defaults
    to tomorrow at 9 when none is said)."""
    props = spec.json_schema().get("properties", {})
    return [r for r in spec.json_schema().get("required", []) if r not in step["args"] and r != "name"
            and props.get(r, {}).get("format") != "date-time" and not (earlier and suppliable(r, props))]


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
