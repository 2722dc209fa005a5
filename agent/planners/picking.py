"""Which tool a clause fits: the routing scores (agent/planners/routing.py) adjusted by what the clause gives each
tool's fields, by the verb it says, and, for an instruction, by whether an action's inputs are in it. Split from
agent/planners/offline.py, which turns a message into clauses, spans and steps."""

from __future__ import annotations

import re

from agent.planners import clarify
from agent.planners.extract import rx
from agent.planners.extract.instructions import LIVE, leading_verb, mood
from agent.planners.extract.names import NAME_CUE
from agent.planners.intents import PURPOSE
from agent.planners.routing import ABSTAIN, breakdown, score_tools
from agent.planners.steps import (
    IT,
    action_args,
    analysis_args,
    evidence,
    missing_inputs,
    named_ids,
    names_one_of,
    said_verb,
    suppliable,
)
from tools.registry import ToolSpec

ACTION_MIN = 0.30      # an instruction drafts an action that fits it at least this well …
ACTION_MARGIN = 0.15   # … and, when its inputs are in the instruction, no worse than this below the best analysis
SLOT_BONUS = 0.12      # an action whose required inputs the instruction gives
BARE_MIN = 0.45        # an action none of whose inputs the instruction gives, and that needs none ("launch it"),
                       # only when it fits at least this well: "run the approved action" is not a campaign launch
ASK_MARGIN = 0.05      # an instruction that fits an action this close to the best analysis, but leaves out what it
                       # needs, drafts the action, which asks for it ("move some of display's budget into social")
UNNAMED_MARGIN = 0.05  # a tool reading one thing by id, given none and nothing else, yields to one this close given 2+
TIE = 0.01             # per required input the instruction gives: breaks a near tie between two drafts
VERB_BONUS = 0.2       # an analysis whose declared verb phrase the request says ("write * subject line")
EVIDENCE_WEIGHT = 0.025  # per field (up to 4) the text gives an analysis
CANDIDATES = 6         # analyses whose arguments are read to adjust their scores
EVIDENCE_FLOOR = 0.25  # a request that gives an analysis TERSE_EVIDENCE of its inputs may score this low
TERSE_EVIDENCE = 3     # … ("how did video go in Q2": a channel and a period)


def extract(text: str, spec: ToolSpec, env) -> dict:
    """An analysis' arguments from a clause, its period kept."""
    return analysis_args(text, spec, env, keep_period=True)


def pick(text: str, tools: dict[str, ToolSpec], env, previous: str | None = None) -> str | None:
    """The tool a clause fits. Scores are adjusted by evidence: what the text gives the tool's fields (names,
    periods, amounts). An instruction drafts an action when the action's inputs are in it and it fits about as
    well as the best analysis, or when it fits best outright; else the best analysis whose required inputs the
    text gives, if it fits well enough."""
    asked = PURPOSE.sub("", text).strip() or text  # "… so we can send a thank-you": the why is no request
    ranked = score_tools(asked, tools)
    analyses = []
    shortlist = [(n, s) for n, s in ranked if not tools[n].approval][:CANDIDATES]
    if "query_data" in tools and "query_data" not in dict(shortlist):  # a count or rate by a column the
        shortlist.append(("query_data", dict(ranked)["query_data"]))  # composer maps is always a candidate
    for name, score in shortlist:
        args = extract(text, tools[name], env)
        required = tools[name].json_schema().get("required", [])
        eligible = all(r in args for r in required)
        found = evidence(text, tools[name], args)
        score += VERB_BONUS * said_verb(name, tools[name], asked, phrase_only=True)  # "draft a … subject line"
        analyses.append((score + EVIDENCE_WEIGHT * found, eligible, name, found, args.get("sql"), args))
    named, unnamed = named_ids(text, analyses, tools)
    analyses = breakdown(analyses, tools)
    analyses.sort(reverse=True)
    best = next(((score, name, found) for score, eligible, name, found in analyses if eligible), (0.0, None, 0))
    if named and best[1] in unnamed:  # "Measure WB-2025-12 against its holdout …": the best tool for that id
        best = next((score, name, found) for score, _, name, found in analyses if name in named)
    elif best[1] in unnamed and not best[2]:  # "How did email do last month?": no campaign named, and a tool
        best = next(((score, name, found) for score, eligible, name, found in analyses  # close by takes the
                     if eligible and found >= 2 and score >= best[0] - UNNAMED_MARGIN), best)  # channel and period
    if mood(text) == "instruction":
        lead = leading_verb(asked)  # "Could you plan a wee SMS promo …": the analysis the request starts with,
        object_ = " ".join(rx.split(rf"\b{lead}\b", asked, 1)[-1].split()[:4]) if lead else ""  # unless what
        if lead and not LIVE.search(text) and not rx.search(NAME_CUE, text, re.I) and not any(  # it plans is an
                said_verb(n, tools[n], object_, phrase_only=True) for n in tools if tools[n].approval) and (
                own := next((n for sc, eligible, n, _ in analyses  # action's verb ("plan the sending of …")
                             if eligible and n.split("_")[0] == lead and sc >= ABSTAIN), None)):
            return own
        drafts = []
        supplier = tools[best[1]] if best[1] else None
        for name, score in [(n, s) for n, s in ranked if tools[n].approval]:
            drafted = action_args(text, tools[name], env)
            found = evidence(text, tools[name], drafted)
            if not found and LIVE.search(text) and (
                    (supplier and names_one_of(text, [supplier]))
                    or (previous and not tools[previous].approval and IT.search(text))):
                found = 1  # "put the optimiser's plan live", "… and make it live": an analysis supplies it
            props = tools[name].json_schema().get("properties", {})
            if not found and {"audience", "saved_audience"} & set(props) and clarify.unknown_audience(
                    text, env.vocab):
                found = 1  # "… to the Lapsed VIP audience": an audience said, though not one we hold (asked)
            open_ = missing_inputs({"name": name, "args": drafted}, tools[name], [])
            asks = bool(open_)
            unsuppliable = any(not suppliable(p, props) for p in open_)  # content or a plan may come first
            verb = said_verb(name, tools[name], asked)  # "launch", "go live with": launch_campaign
            fits = (score + SLOT_BONUS >= max(ACTION_MIN, best[0] - ACTION_MARGIN) if found
                    else score >= max(ACTION_MIN if asks else BARE_MIN, best[0] - (ASK_MARGIN if asks else 0)))
            fits = fits or (verb and found and score + SLOT_BONUS >= ACTION_MIN)  # "Launch a win-back email …"
            fits = fits or (lead == name.split("_")[0] and score >= BARE_MIN)  # the request starts
            # with the action's own verb ("Please go ahead and launch the email to win back …")
            fits = fits or (not asks and score + SLOT_BONUS >= ACTION_MIN and said_verb(
                name, tools[name], asked, phrase_only=True))  # "make an SMS audience out of the … segment"
            if fits:
                given = sum(r in drafted for r in tools[name].json_schema().get("required", []))
                drafts.append((verb, not unsuppliable, score + SLOT_BONUS * bool(found) + TIE * given, name))
        said = [d for d in drafts if d[0]]
        says = best[1] and rx.search(rf"\b{best[1].split('_')[0]}\b", text, re.I)  # the analysis' name word
        if says and not said and not LIVE.search(text) and not rx.search(NAME_CUE, text, re.I) and (
                best[0] >= max((dict(ranked)[d[3]] for d in drafts), default=0) or leading_verb(text) == says[0]
                .lower()):  # ("… called X" names what an action makes)
            return best[1]  # "put together a campaign plan for …", "plan an onboarding campaign": the analysis
            # it names (by its verb, or as well as an action fits), not an action
        if drafts:  # the action the instruction names by its verb ("schedule …"), then one it can carry out
            return max(drafts)[3]  # without asking (content or a plan may come first), then the best fit
    if best[1] and (best[0] >= ABSTAIN or (best[2] >= TERSE_EVIDENCE and best[0] >= EVIDENCE_FLOOR)):
        return best[1]  # … or a terse request that gives the tool several inputs ("video in Q2")
    return None
