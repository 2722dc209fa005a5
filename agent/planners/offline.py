"""The offline planner: deterministic, no network, not an LLM.

A turn becomes an agenda of steps. The message is cut into clauses (agent/planners/intents.py); each clause is
scored against every registered tool (agent/planners/routing.py: embeddings, word overlap and the concepts the
tools declare; agent/planners/picking.py weighs what the clause gives each tool) and becomes a step when one fits
well. An instruction to act ("move a tenth of display into
search", "queue the e-mail for Thursday at 8") drafts the action that fits it, with its arguments read by the
instruction grammar (agent/planners/extract/instructions.py) and the analyses it needs first
(agent/planners/steps.py); an input nothing can supply is asked for in one short question
(agent/planners/clarify.py), and the reply fills it. Short follow-ups re-run the thread's last tool with what
changed. Everything it knows about tools comes from the registry; the answer is written from the results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.answer import compose_answer
from agent.planners import PlanStep, call_id, clarify, thread
from agent.planners.carrying import (
    WHO_OF,
    carry,
    carry_period,
    carry_population,
    carry_subject,
    carry_thread_args,
    carry_thread_content,
    carry_thread_plan,
    carry_thread_run,
)
from agent.planners.context_budget import read_tool_content
from agent.planners.extract import rx
from agent.planners.extract.args import FREE_TEXT
from agent.planners.extract.instructions import FOR_APPROVAL, mood, within_bound
from agent.planners.extract.names import NAME_CUE
from agent.planners.extract.spelling import correct
from agent.planners.intents import BACK, CONSTRAINT, CONTEXT, MODIFIER, PURPOSE, clauses
from agent.planners.picking import extract, pick
from agent.planners.routing import cannot_help, did_you_mean, out_of_scope, score_tools
from agent.planners.steps import (
    IT,
    action_args,
    analysis_prerequisites,
    missing_inputs,
    names_one_of,
    own_inputs,
    prerequisites,
    reports,
    said_verb,
)
from tools.registry import ToolSpec

POLITE = re.compile(r"\b(?:if (?:you can|possible|poss|that's ok|it helps)|where possible|please|pls|ideally)(?:\W*$|,)",
                    re.I)
"""A short clause said as a wish about the request before ("… Month by month if you can"): how, not a new request."""
FOLLOW_SWITCH = 0.55   # a follow-up stays with the last tool unless another fits at least this well …
FOLLOW_MARGIN = 0.15   # … and this much better (short follow-ups score noisily: "and for email only?")
FOLLOW_SWITCH_CHANGED, FOLLOW_MARGIN_CHANGED = 0.70, 0.25  # stickier when it changes an argument of the last tool
FOLLOW_CLEAR = 0.30    # … unless another fits well (FOLLOW_SWITCH) and the last tool this much worse
FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|same but|now|only|just|for|but|ok(ay)?|then|"
                       r"instead|what if|actually|also|again|redo|re-?run|try|switch|use|make (it|them|that)|"
                       r"break (it|that|this) down|do (it|that|the same)|same thing|same again|same but|same for|"
                       r"same (?:report|numbers|view|table|breakdown|analysis))\b|\b(instead|the same thing|same analysis|"
                       r"same again)\b", re.IGNORECASE)
COUNT_FIELDS = ("n", "k", "top_n", "limit")
CONTINUE_MIN = 0.55    # … continues the analysis before it unless it fits a tool of its own at least this well
OUTCOME = re.compile(r"\b(how did (it|that|this|the (campaign|send|launch|audience|change))( \w+)? (do|go|perform|land)|"
                     r"did (it|that|this|the (campaign|send|launch)) (work|pay off|help)|how is (it|that) (doing|going)|"
                     r"(any|what are the|the) results( yet)?|was it worth it)\b", re.IGNORECASE)
STATED = re.compile(r"^(?!\s*(?:how|what|which|who|whom|why|where|when|is|are|was|were|do|does|did|can|could|"
                    r"should|would|will|has|have|any|show|give|list|pull|tell)\b)[^?]*\b(?:is|are|was|were|has been|"
                    r"have been|looks?|seems?|feels?)\b[^?]*$", re.I)  # a statement of fact, not a question
POINTS_BACK = re.compile(r"\b(?:its|their|it|them|that one|this one)\b", re.I)
BOUND = re.compile(r"exceeds the ±(\d+(?:\.\d+)?)\s?% bound")  # why a draft came back from prepare_action


@dataclass
class Span:
    """A piece of the message and the tool it fits."""

    tool: str
    text: str


class OfflinePlanner:
    name = "offline"
    label = "offline planner"

    def plan(self, state: dict, tools: dict[str, ToolSpec], env) -> PlanStep:
        """Next step of the turn: a tool call, a clarifying question, or the answer once the agenda is done."""
        calls = state.get("calls") or []
        agenda = list(state.get("agenda") or [])
        if not calls and not agenda and not state.get("drafts"):  # (a draft that passed is in drafts, not calls)
            state = {**state, "question": correct(state["question"], tools, env.vocab)}  # "affilate" → affiliate
            if why := out_of_scope(state["question"], env.vocab.get("channel") or []):  # data or a change it lacks
                return PlanStep(answer=cannot_help(tools, why))
            agenda = self.make_agenda(state, tools, env)
            if not agenda:
                return PlanStep(answer=self.abstain(state["question"], tools))
        while agenda:
            step = agenda.pop(0)
            if "ask" in step:  # a clarifying question ends the turn; the reply fills the slot
                done = compose_answer(calls, state) + "\n\n" if calls else ""
                return PlanStep(answer=done + step["ask"], agenda=[])
            if self.needs_failed(step, calls, tools):
                continue
            args = carry(step, calls, tools, env, state.get("question", ""))
            call = {"id": call_id(), "name": step["name"], "args": args}
            if step.get("replaces"):  # a changed draft: the earlier request leaves the inbox when this one enters
                call["replaces"] = step["replaces"]
            return PlanStep(calls=[call], agenda=agenda)
        drafted = [d.get("action") or (d.get("action_request") or {}).get("action") for d in state.get("drafts") or []]
        if retry := self.within_bound(calls, tools, env, drafted):  # a draft came back beyond the bound per approval
            return PlanStep(calls=[{"id": call_id(), "name": retry["name"], "args": retry["args"]}], agenda=[])
        return PlanStep(answer=compose_answer(calls, state), agenda=[])

    # ---- the agenda ------------------------------------------------------------------------------------------
    def make_agenda(self, state: dict, tools: dict[str, ToolSpec], env) -> list[dict]:
        question = state["question"]
        if asked := clarify.asked(state):
            if asked["kind"] == "tool" and (name := clarify.chosen_tool(question, asked["options"])) in tools:
                return [{"name": name, "args": self.extract(asked["question"], tools[name], env)}]
            if asked["kind"] == "slot":
                before = correct(asked["question"], tools, env.vocab)  # read as it was when the question was asked
                steps = self.agenda_for(f"{before} {question}", state, tools, env)
                named = [s["name"] for s in steps if "name" in s]
                for tool in asked["options"]:  # the reply fills the tool that asked ("use the Winback October
                    if tool in tools and tools[tool].approval and tool not in named:  # list"), whatever else its
                        steps = self.action_steps(tool, f"{before} {question}", [], state, tools, env)  # words fit
                if not any("ask" in s for s in steps) or not self.stands_alone(question, tools, env):
                    return steps
        if thread.may_continue(question, state):  # a change to the draft just made, or the go-ahead for
            picked = self.pick(question, tools, env)
            if steps := thread.amended_draft(question, state, tools, env, picked):  # what an analysis prepared
                return steps
            if name := thread.go_ahead(question, state, tools, env, picked):
                return self.action_steps(name, question, [], state, tools, env)
        if (steps := self.follow_up(question, state, tools, env)) is not None:
            return steps
        if steps := self.outcome_of_action(question, state, tools):
            return steps
        return self.agenda_for(question, state, tools, env)

    @staticmethod
    def outcome_of_action(question: str, state: dict, tools: dict[str, ToolSpec]) -> list[dict] | None:
        """"How did it do?" after an action ran in this thread: the read-only tool that takes the id the action's
        result holds (launch_campaign → campaign_id → measure_campaign), on that id. Only for a question that asks
        how something went and names no other tool's concepts more strongly."""
        if not OUTCOME.search(question):
            return None
        messages = state.get("messages") or []
        names = {c["id"]: c["function"]["name"] for m in messages for c in m.get("tool_calls") or []
                 if isinstance(c, dict) and "function" in c}
        for message in reversed(messages):
            action = names.get(message.get("tool_call_id"))
            if message.get("role") != "tool" or action not in tools or not tools[action].approval:
                continue
            metrics = (read_tool_content(message.get("content") or "") or {}).get("metrics") or {}
            for key, value in metrics.items():
                takers = [n for n, spec in tools.items() if not spec.approval and key.endswith("_id")
                          and key in spec.json_schema().get("properties", {}) and n != action]
                if takers and isinstance(value, str):
                    # the taker that fits what was done and what is asked ("measure a launched campaign")
                    ranked = dict(score_tools(f"{question} {tools[action].description}",
                                              {n: tools[n] for n in takers}))
                    return [{"name": max(takers, key=lambda n: ranked.get(n, 0)), "args": {key: value}}]
            return None  # the last action holds no id a measuring tool reads
        return None

    def agenda_for(self, text: str, state: dict, tools: dict[str, ToolSpec], env) -> list[dict]:
        """Steps for a message: one per clause that fits a tool; an action with its prerequisites, or a question."""
        spans = sorted(self.spans(text, tools, env), key=lambda span: tools[span.tool].approval)  # analyses first
        steps: list[dict] = []
        for i, span in enumerate(spans):
            spec = tools[span.tool]
            piece = text if len(spans) == 1 else span.text
            if spec.approval and i and spans[i - 1].tool in {t for c in spec.requires.values() for t in c.values()}:
                piece = f"{spans[i - 1].text} {piece}"  # "Top 1,000 by CLV -> save as an audience": who it holds
            if not spec.approval:
                args = self.extract(piece, spec, env)
                if missing := [r for r in spec.json_schema().get("required", []) if r not in args]:
                    steps.append({"ask": clarify.question_for(spec, missing[0], piece, env.vocab)})
                    break
                step = {"name": span.tool, "args": args}
                last = (state.get("last_tool") or {}).get("name")
                steps += analysis_prerequisites(step, spec, piece, tools, env,
                                                [s["name"] for s in steps if "name" in s] + [last])
                steps.append(step)
                carry_population(steps[-1], spec, state, piece)
                carry_period(steps[-1], spec, state, piece)
                carry_subject(steps[-1], spec, state)
                continue
            drafted = self.action_steps(span.tool, piece, steps, state, tools, env)
            steps += drafted
            if "ask" in drafted[-1]:
                break
        return steps

    @staticmethod
    def action_steps(name: str, text: str, steps: list[dict], state: dict, tools: dict[str, ToolSpec],
                     env) -> list[dict]:
        """An action's steps after the `steps` planned so far: the analyses it needs that have not run (this turn or
        the last), then the action with its inputs; or one question for an input nothing supplies."""
        spec = tools[name]
        step = {"name": name, "args": action_args(text, spec, env)}
        last = (state.get("last_tool") or {}).get("name")
        planned = [s["name"] for s in steps if "name" in s]
        carry_thread_args(step, spec, state, text, planned)  # first: a plan's source decides what must run before
        if (earlier := [s for s in steps if "name" in s and not tools[s["name"]].approval]) and IT.search(text):
            carry_thread_args(step, spec, {"last_tool": earlier[-1]}, text, [])  # "Fire off a push campaign to
            # X with a 25 % holdout. Launch it.": the plan this message asked for, carried out
        before = prerequisites(step, spec, text, tools, env, planned + ([last] if last else []))
        carry_thread_run(step, spec, state, planned)
        carry_thread_content(step, spec, state, text, planned)
        carry_thread_plan(step, spec, state, text, planned)
        before = sorted((b for b in before if b["name"] not in planned), key=lambda b: tools[b["name"]].approval)
        earlier = [s for s in steps if "name" in s] + before
        props = spec.json_schema().get("properties", {})
        if (field := next((f for f in ("audience", "saved_audience") if f in props), None)) and (
                field not in step["args"]) and clarify.unknown_audience(text, env.vocab):
            return [{"ask": clarify.question_for(spec, field, text, env.vocab)}]  # never another audience instead
        if (missing := missing_inputs(step, spec, earlier)) and not any(tools[s["name"]].approval for s in earlier):
            return [*before, {"ask": clarify.question_for(spec, missing[0], text, env.vocab)}]
        return [*before, step]

    def spans(self, text: str, tools: dict[str, ToolSpec], env) -> list[Span]:
        """The message's clauses joined into spans, one per tool: a clause that fits no tool, or the same tool as
        the clause before, belongs to the span before it (or the next, at the start)."""
        spans: list[Span] = []
        prefix = ""
        for part in clauses(text):
            if spans and not tools[spans[-1].tool].approval and FOR_APPROVAL.search(part) and (
                    (name := self.pick(joined := f"{spans[-1].text}. {part}", tools, env)) and tools[name].approval):
                spans[-1] = Span(name, joined)  # "Social should be set to 1,000 a day from 1 November. Could you
                continue  # put that through for approval?": the statement is what to draft
            if spans and tools[spans[-1].tool].approval and IT.search(part) and mood(part) == "instruction":
                spans[-1].text += " and " + part  # "… and give the money to video": the same instruction
                continue
            if spans and not tools[spans[-1].tool].approval and BACK.search(part) and mood(part) == "question" and (
                    score_tools(part, tools)[0][1] < CONTINUE_MIN):
                spans[-1].text += " " + part  # "… and how does it compare to August": the same analysis, said on
                continue
            if spans and not tools[spans[-1].tool].approval and CONSTRAINT.search(part):
                spans[-1].text += " " + part  # "… and keep every channel within 10% of today": a bound on it
                continue
            if spans and tools[spans[-1].tool].approval and rx.match(rf"\W*(?:\w+\s+)?{NAME_CUE}", part, re.I):
                spans[-1].text += " " + part  # "… make an SMS audience of X. Maybe call it 'Y'": its name
                continue
            if spans and (len(part.split()) <= 4 and MODIFIER.search(part) or rx.match(
                    r"\W*(?:not|rather than|instead of)\s+(?:the|by|per|a|an|each|every)\b", part, re.I)):
                spans[-1].text += " " + part  # "… campaign plan for Winback October? push this time": how, not what
                continue
            if CONTEXT.search(part) and not part.rstrip().endswith("?") and mood(part) != "instruction":
                if spans:  # "we get about 4k visitors a day. How long would a test need …?": what the
                    spans[-1].text += " " + part  # question works with, not a question of its own
                else:
                    prefix += part + " "
                continue
            name = self.pick(part, tools, env, previous=spans[-1].tool if spans else None)
            if name and tools[name].approval and len(spans) == 1 and not tools[spans[0].tool].approval and (
                    STATED.search(spans[0].text)) and POINTS_BACK.search(part):
                spans[0] = Span(name, f"{spans[0].text}. {part}")  # "Paid social is crushing it. Let's double its
                continue  # budget": the statement says what the instruction's "its" is, it asks for nothing
            wish = POLITE.search(part)  # "Month by month if you can, …": how the request before is wanted
            core = PURPOSE.sub("", part[:wish.start()] if wish else part)  # "… hold out 20% so we can tell"
            if spans and name != spans[-1].tool and len(core.split()) <= 5 and (
                    reports(part, tools[spans[-1].tool]) or (self.gives(part, tools[spans[-1].tool], env) or names_one_of(
                        part, [tools[spans[-1].tool]])) and not (name and self.gives(core, tools[name], env)
                                                                 and not wish)):
                spans[-1].text += " " + part  # "… on Monday at 10:30, and hold out 20%": a value for the step
                continue  # before; "…, and the sample-ratio check": a part of what it reports
            if name is None or (spans and spans[-1].tool == name):
                if spans:
                    spans[-1].text += " " + part
                else:
                    prefix += part + " "
                continue
            if earlier := next((s for s in spans if s.tool == name), None):
                earlier.text += " " + part
                continue
            spans.append(Span(name, prefix + part))
            prefix = ""
        if not spans and prefix and (name := self.pick(text, tools, env)):  # "I'm worried our CPA is creeping
            spans.append(Span(name, text))  # up. Where do we stand?": the stated worry is the question
        return spans

    pick = staticmethod(pick)

    @staticmethod
    def within_bound(calls: list[dict], tools: dict[str, ToolSpec], env, drafted: list[str] = ()) -> dict | None:
        """When the last draft came back because a change exceeds the bound per approval ("search: +141% exceeds the
        ±25% bound"), the same draft with every change cut to the bound, computed against the current values: the
        largest step one approval allows, toward what was asked. Once per turn; the failed draft stays in the answer
        with its reason, and the approver sees the from → to."""
        last = calls[-1] if calls else None
        current = env.vocab.get("current") or {}
        if not last or last.get("ok") or not tools.get(last.get("name")) or not tools[last["name"]].approval:
            return None
        bound = BOUND.search(str(last.get("error") or ""))
        if not bound or sum(c["name"] == last["name"] for c in calls) > 1 or last["name"] in drafted:
            return None  # once per turn: the redraft is drafted (it waits in the inbox) or came back too
        args = dict(last["args"])
        for param, values in last["args"].items():
            if param in current and isinstance(values, dict):
                args[param] = within_bound(values, current[param], float(bound.group(1)) / 100)
        return {"name": last["name"], "args": args} if args != last["args"] else None

    # ---- follow-ups --------------------------------------------------------------------------------------------
    def follow_up(self, question: str, state: dict, tools: dict[str, ToolSpec], env) -> list[dict] | None:
        """A short follow-up re-runs the thread's last tool with what changed ("and for email only?", "check
        revenue instead", "what if hot meant 70 %?"), unless another tool clearly fits better or it instructs."""
        last = state.get("last_tool")
        if not last or last.get("name") not in tools:
            return None
        question = WHO_OF.sub(" ", question)  # "ok, of the high-risk ones, who has the biggest lifetime value?"
        short = self.is_follow_up(question)
        if not short and not BACK.search(question):
            return None
        picked = self.pick(question, tools, env)  # (only now: picking costs a turn's main overhead)
        if not (short or picked is None):
            return None  # (a question about "it" that fits no tool of its own asks about the last result)
        if picked and tools[picked].approval and (said_verb(picked, tools[picked], question) or self.merge(
                last["args"], question, tools[last["name"]], env) == last["args"] or own_inputs(
                question, tools[picked], tools[last["name"]], env)):
            return None  # "save them as an audience called …", "give search 200 more a day": an instruction,
            # planned as one (but "switch the channel to SMS" after a plan changes the plan: no action is named
            # and the plan's inputs change)
        spec = tools[last["name"]]
        merged = self.merge(last["args"], question, spec, env)
        if picked not in (None, last["name"]) and len(set(self.extract(question, tools[picked], env)) - set(
                FREE_TEXT)) > len({k for k, v in merged.items() if k not in FREE_TEXT and v != last["args"].get(k)}):
            return None  # another tool fits and the message gives it more than the last one ("ok and write 3 sms
            # texts for them" after a policy answer: a channel and a count, against the search's count)
        ranked = score_tools(question, tools)
        scores = dict(ranked)
        best, score = next(((n, s) for n, s in ranked if not tools[n].approval), ranked[0])
        switch, margin = (FOLLOW_SWITCH_CHANGED, FOLLOW_MARGIN_CHANGED) if merged != last["args"] else (
            FOLLOW_SWITCH, FOLLOW_MARGIN)
        if best != last["name"] and (score >= switch and scores[last["name"]] < score - margin or (
                score >= FOLLOW_SWITCH and scores[last["name"]] < score - FOLLOW_CLEAR)):
            return None  # another tool fits well and the last one clearly worse (… "worth the most next year")
        return [{"name": last["name"], "args": merged}]

    def merge(self, old: dict, text: str, spec: ToolSpec, env) -> dict:
        """The last call's arguments with what the follow-up changes: a new period replaces the old one, free text
        is added to, a bare number is the count the tool takes."""
        new = self.extract(text, spec, env)
        args = dict(old)
        if {"start", "end", "as_of"} & set(new):
            for key in ("start", "end", "as_of"):
                args.pop(key, None)
        for key, value in new.items():
            if key == "goal":
                continue  # the follow-up changes how, not what for ("make them sound more premium")
            args[key] = f"{old[key]} {value}"[:300] if key in FREE_TEXT and old.get(key) else value
        props = spec.json_schema().get("properties", {})
        counts = [f for f in COUNT_FIELDS if f in props]
        bare = re.findall(r"(?<![\w.%$€£])(\d{1,4})(?![\w.%]|\s*(?:%|percent|k\b))", text)
        if counts and len(bare) == 1 and not any(f in new for f in counts):
            args[next((f for f in counts if f in old), counts[0])] = int(bare[0])
        return args

    @staticmethod
    def is_follow_up(text: str) -> bool:
        return bool(FOLLOW_UP.search(text)) or len(text.split()) <= 6

    # ---- helpers -----------------------------------------------------------------------------------------------
    extract = staticmethod(extract)

    @staticmethod
    def gives(text: str, spec: ToolSpec, env) -> bool:
        """Whether the text gives the tool a value beyond free text (a channel, a period, a share …)."""
        args = action_args(text, spec, env) if spec.approval else extract(text, spec, env)
        return any(k not in FREE_TEXT for k in args)

    @staticmethod
    def stands_alone(text: str, tools: dict[str, ToolSpec], env) -> bool:
        """A reply to a clarifying question that is a question of its own."""
        return len(text.split()) > 3 and OfflinePlanner.pick(text, tools, env) is not None

    @staticmethod
    def needs_failed(step: dict, calls: list[dict], tools: dict[str, ToolSpec]) -> bool:
        """An action whose prerequisite failed this turn is not drafted (the answer says why the analysis failed)."""
        spec = tools.get(step.get("name"))
        if spec is None or not spec.approval:
            return False
        needed = {tool for choices in spec.requires.values() for tool in choices.values()}
        ran = {c["name"]: c.get("ok") for c in calls}
        return any(ran.get(tool) is False for tool in needed) or (
            bool(calls) and not calls[-1].get("ok") and not spec.requires)

    @staticmethod
    def abstain(question: str, tools: dict[str, ToolSpec]) -> str:
        """Nothing fits: the two closest tools when one came near, else what the planner can do."""
        return did_you_mean(score_tools(question, tools), tools) or cannot_help(tools)
