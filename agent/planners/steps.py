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

from agent.planners.extract import extract_args, rx
from agent.planners.extract.instructions import budget_changes, mood
from agent.planners.extract.names import NAME_CUE, SAVED_AS
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
    """A verb phrase as a pattern, compiled once ("make * audience": up to four words where the * is). Said as a
    noun ("for launch", "the launch email", "before our launch") it is no verb; a gerund is ("the sending of …")."""
    noun = "" if phrase.endswith("ing") else "".join(rf"(?<!\b{w} )" for w in (
        "for", "the", "a", "our", "at", "before", "after", "this", "that", "its", "their", "of", "new"))
    return re.compile(noun + r"\b" + re.escape(phrase).replace(r"\ \*\ ", r"(?:\s+[\w'’-]+){0,4}\s+"), re.I)


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


LOOKING_BACK = re.compile(r"\b(?:how|what|which|where|why|when)\b[^.?!]{0,50}\b(?:did|was|were|went|happened)\b", re.I)
"""A question about what already happened."""


def evidence(text: str, spec: ToolSpec, args: dict) -> int:
    """How much of what a tool takes the text gives: for an action, its required inputs the instruction resolves (a
    moment only when a day or time is said; a name only when one is given); for an analysis, the fields the text
    fills besides free text (a SELECT only when it names columns)."""
    from agent.planners.extract.args import FREE_TEXT, PERIOD_FIELDS
    from agent.planners.extract.periods import says_when

    if spec.approval:
        props = spec.json_schema().get("properties", {})
        required = spec.json_schema().get("required", [])
        found = moments = 0
        for field in props:
            if field == "name":  # said as a name ("called …", "a 'Lapsed VIPs' audience", "save … as 'X'")
                found += rx.search(NAME_CUE, text, re.I) is not None or rx.search(
                    r"(?<!\w)[\"“'‘][^\"”’]{2,60}[\"”'’]\s+(?:audience|list|segment)\b", text) is not None or (
                    re.search(r"\bsave\b[^\"“'‘]{0,40}\bas\s+[\"“'‘]", text, re.I) is not None) or (
                    SAVED_AS.search(text) is not None)  # "save the high ones as q4-rescue"
            elif props[field].get("format") in ("date-time", "date") or "date" in str(props[field].get("anyOf")):
                moments += field in args and says_when(text)
            elif field in args and (field in required or "enum" not in str(props[field])):
                found += 1  # an optional choice among common words ("email", "high") is no sign of the action
        return found + moments if found else 0  # a day or time alone is no sign of which action is meant
    plain = [k for k in args if k not in FREE_TEXT and k != "sql"]
    if LOOKING_BACK.search(text):  # "How did the email appeal do in August?": a day to come is no sign of the tool
        props = spec.json_schema().get("properties", {})
        plain = [k for k in plain if k in PERIOD_FIELDS or "date" not in str(props.get(k, {}))]
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
        if field != param and (m := rx.search(rf"\b{re.escape(param)}=(\w+)", props.get(field, {}).get("description")
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
            if "name" in supplied and not rx.search(NAME_CUE, text, re.I):
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
    return any(rx.search(rf" {re.escape(re.sub(r'[-_/]+', ' ', p.lower()))}(?:s|es)? ", low) for p in phrases)


def suppliable(param: str, props: dict) -> bool:
    """Inputs an analysis can supply: per-channel amounts (a recommended plan), content to send (drafted copy);
    never who an action is for."""
    return props.get(param, {}).get("type") == "object" or param in ("variant", "text", "content", "message")


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
