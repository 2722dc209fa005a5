"""The offline planner: deterministic, no network, not an LLM.

It picks tools by similarity of the request to each registered tool's description and example requests
(bundled MiniLM embeddings, plus word overlap), extracts arguments from the tool's JSON schema, handles
two-step requests and follow-ups, and writes the answer from templates over the tool results.
Everything it knows about tools comes from the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from agent.answer import compose_answer
from agent.planners import PlanStep, call_id
from agent.planners.extract import extract_args, mentions, parse_when
from tools.registry import ToolSpec

THRESHOLD = 0.42          # below this nothing fits: say what we can do instead of guessing
STEP_THRESHOLD = 0.40     # a second clause must fit an action at least this well to become a second step
FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|now for|only|just|for|but|ok(ay)?,? (now|and))\b",
                       re.IGNORECASE)
SPLIT = re.compile(r"\s*(?:,?\s*\band then\b|,?\s*\bthen\b|;|,?\s*\band (?=(?:save|create|make|build|turn|export|"
                   r"schedule|send|queue|launch|apply|update|move|shift|draft|write|generate|suggest)\b))\s*",
                   re.IGNORECASE)
STOP = set("a an the of to in on for by and or with what which who how is are was were do does did our my we i you "
           "me us it its this that these those be been from at as than then show give tell please can could would "
           "should will much many per vs".split())


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP and len(w) > 2}


@dataclass
class ToolIndex:
    names: list[str]
    owners: np.ndarray          # example row → tool index
    vectors: np.ndarray         # normalised example embeddings
    words: list[set[str]]       # vocabulary per tool


@lru_cache(maxsize=4)
def _index(signature: tuple[str, ...]) -> ToolIndex:
    from knowledge.embeddings import embed
    from tools.registry import load_tools

    registry = load_tools()
    names = [n for n in signature if n in registry]
    texts, owners, words = [], [], []
    for i, name in enumerate(names):
        spec = registry[name]
        examples = [spec.description, name.replace("_", " "), *spec.requests]
        texts += examples
        owners += [i] * len(examples)
        words.append(set().union(*(_words(t) for t in examples)))
    return ToolIndex(names, np.array(owners), embed(texts), words)


def score_tools(text: str, tools: dict[str, ToolSpec]) -> list[tuple[str, float]]:
    """Tools ranked by fit: 0.8 × mean of the two best example similarities + 0.2 × word overlap.

    Averaging the two closest examples (instead of taking the single closest) keeps one stray example
    of another tool from winning on a shared phrase ("A/B test", "attribution")."""
    from knowledge.embeddings import embed

    idx = _index(tuple(sorted(tools)))
    sims = idx.vectors @ embed([text])[0]
    order = np.lexsort((-sims, idx.owners))          # by tool, best first
    first = np.r_[0, np.flatnonzero(np.diff(idx.owners[order])) + 1]
    top1 = sims[order[first]]
    second = sims[order[np.minimum(first + 1, len(order) - 1)]]
    same = idx.owners[order[np.minimum(first + 1, len(order) - 1)]] == idx.owners[order[first]]
    best = np.where(same, (top1 + second) / 2, top1)
    q = _words(text)
    overlap = np.array([len(q & w) / max(len(q), 1) for w in idx.words])
    score = 0.8 * best + 0.2 * overlap
    order = np.argsort(-score)
    return [(idx.names[i], float(score[i])) for i in order]


def clauses(text: str) -> list[str]:
    parts = [p.strip(" ,.") for p in SPLIT.split(text) if p and p.strip(" ,.")]
    return parts or [text]


class OfflinePlanner:
    name = "offline"
    label = "offline planner"

    def plan(self, state: dict, tools: dict[str, ToolSpec], env) -> PlanStep:
        """Next step of the turn: a tool call, or the answer once the agenda is done."""
        calls = state.get("calls") or []
        agenda = list(state.get("agenda") or [])
        if not calls and not agenda:
            agenda = self.make_agenda(state, tools, env)
            if not agenda:
                return PlanStep(answer=self.cannot_help(state["question"], tools))
        if agenda:
            step = agenda.pop(0)
            args = self.fill_from_previous(step, calls, tools, env, state.get("question", ""))
            return PlanStep(calls=[{"id": call_id(), "name": step["name"], "args": args}], agenda=agenda)
        return PlanStep(answer=compose_answer(calls, state))

    def make_agenda(self, state: dict, tools: dict[str, ToolSpec], env) -> list[dict]:
        question = state["question"]
        steps: list[dict] = []
        for i, clause in enumerate(clauses(question)):
            ranked = score_tools(clause, tools)
            name, score = ranked[0]
            if tools[name].approval and not steps and not self.has_required(clause, tools[name], env):
                # an action needs its inputs: without them (and no earlier step), analyse first
                name, score = next(((n, sc) for n, sc in ranked if not tools[n].approval), (name, score))
            if i == 0 and score < THRESHOLD and (last := state.get("last_tool")) and self.is_follow_up(clause):
                args = {**last["args"], **extract_args(clause, tools[last["name"]].json_schema(), env.today,
                                                       env.vocab)}
                steps.append({"name": last["name"], "args": args})
                continue
            clear = len(ranked) > 1 and score - ranked[1][1] >= 0.1  # "apply it": short, but only one action fits
            if i > 0 and not (tools[name].approval and steps and (score >= STEP_THRESHOLD or (score >= 0.25 and clear))
                              or score >= THRESHOLD):
                continue
            if i == 0 and score < THRESHOLD:
                continue
            if any(s["name"] == name for s in steps):
                continue
            steps.append({"name": name, "args": extract_args(clause if i else question,
                                                             tools[name].json_schema(), env.today, env.vocab)})
        if not steps and (last := state.get("last_tool")) and self.is_follow_up(question):
            args = {**last["args"], **extract_args(question, tools[last["name"]].json_schema(), env.today, env.vocab)}
            steps.append({"name": last["name"], "args": args})
        return steps

    @staticmethod
    def default_name(args: dict, props: dict, spec: ToolSpec, calls: list[dict], env) -> dict:
        """An action that needs a name and got none is named after what it holds and the day."""
        if "name" in props and "name" not in args and spec.approval:
            what = args.get("segment") or args.get("source") or next(
                (c["name"] for c in calls if c.get("ok")), "customers")
            args["name"] = f"{str(what).replace('_', ' ').capitalize()} audience {env.today:%Y-%m-%d}"
        return args

    @staticmethod
    def has_required(text: str, spec: ToolSpec, env) -> bool:
        schema = spec.json_schema()
        found = extract_args(text, schema, env.today, env.vocab)
        return all(r in found or r == "name" for r in schema.get("required", []))

    @staticmethod
    def is_follow_up(text: str) -> bool:
        return bool(FOLLOW_UP.search(text)) or len(text.split()) <= 4

    @staticmethod
    def fill_from_previous(step: dict, calls: list[dict], tools: dict[str, ToolSpec], env, question: str = "") -> dict:
        """Carry results of earlier steps into a later step's arguments (run ids, sources, drafted content)."""
        args = dict(step["args"])
        props = tools[step["name"]].json_schema().get("properties", {})
        ok = [c for c in calls if c.get("ok")]
        if not ok:
            return OfflinePlanner.default_name(args, props, tools[step["name"]], calls, env)
        prev = ok[-1]
        metrics = (prev.get("result") or {}).get("metrics", {})
        data = (prev.get("result") or {}).get("data", [])
        for field in ("segment", "audience"):  # names the earlier result holds and the request mentions
            if field in props and field not in args:
                names = {str(r[k]) for r in data for k in r if field in k and isinstance(r[k], str)}
                if hits := mentions(question, sorted(names, key=len, reverse=True)):
                    args[field] = hits[0]
        if "run_id" in props and "run_id" not in args and metrics.get("run_id"):
            args["run_id"] = metrics["run_id"]
        if "source" in props:  # the previous step's tool decides where members come from
            enum = props["source"].get("enum") or next((a.get("enum") for a in props["source"].get("anyOf", [])
                                                        if a.get("enum")), [])
            token = next((t for t in prev["name"].split("_") if t in (enum or [])), None)
            if token:  # score_churn → churn, segment_customers → segment, predict_clv → clv
                args["source"] = token
        if "variant" in props and "variant" not in args:
            texts = [r.get("text") for r in data if r.get("text")]
            if texts:
                args["variant"] = texts[0]
        if "audience" in props and "audience" not in args and metrics.get("audience_id"):
            args["audience"] = metrics["audience_id"]
        if "send_at" in props and "send_at" not in args:
            when = parse_when("send", env.today)
            args["send_at"] = when.isoformat()
        args = OfflinePlanner.default_name(args, props, tools[step["name"]], calls, env)
        rec = metrics.get("recommendation")
        if "daily_budgets" in props and "daily_budgets" not in args and isinstance(rec, dict) and rec:
            days = metrics.get("horizon_days") or 1  # a plan over the horizon → per-day budgets
            args["daily_budgets"] = {ch: round(v / days, 2) for ch, v in rec.items()}
        return args

    @staticmethod
    def cannot_help(question: str, tools: dict[str, ToolSpec]) -> str:
        listing = "; ".join(f"{s.name.replace('_', ' ')} ({s.description[0].lower() + s.description[1:]})"
                            for s in tools.values() if not s.approval)
        return ("I can't answer that from the marketing warehouse, and I'd rather not guess. "
                f"Here is what I can do: {listing}. I can also draft audiences, sends and budget changes "
                "for an approver.")
