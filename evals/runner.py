"""The eval runner: versioned datasets + small evaluators + thresholds (`northstar eval`)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from evals.evaluators import TURN_EVALUATORS, no_side_effects, side_effect_snapshot

HERE = Path(__file__).parent
DATASETS = HERE / "datasets"
SUITES = {"analytics_reference": "analytics_reference_v1.yaml", "trajectories": "trajectories_v1.yaml",
          "redteam": "redteam_v1.yaml", "content": "content_v1.yaml", "llm_behaviour": "llm_behaviour_v1.yaml"}
AS_OF = "2026-09-30"


@dataclass
class SuiteReport:
    name: str
    cases: int = 0
    passed: int = 0
    failures: list[dict] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    threshold: float = 1.0
    skipped: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    """Measurements beyond the pass rate (the llm_behaviour suite's rates and token counts)."""

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else (1.0 if self.skipped else 0.0)

    def as_dict(self) -> dict:
        out = {"name": self.name, "cases": self.cases, "passed": self.passed, "pass_rate": round(self.pass_rate, 4),
               "threshold": self.threshold, "failures": self.failures, "skipped": self.skipped}
        return out | ({"metrics": self.metrics} if self.metrics else {})


def load_cases(path: Path) -> list[dict]:
    """A YAML list, or JSON Lines (one case per line)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".jsonl", ".ndjson"):
        cases = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        cases = yaml.safe_load(text) or []
    if not isinstance(cases, list):
        raise ValueError(f"{path}: expected a list of cases (YAML list or JSON Lines)")
    for i, c in enumerate(cases):
        if not isinstance(c, dict) or "id" not in c or not ({"question", "turns", "check"} & set(c)):
            raise ValueError(f"{path}: case {i + 1} needs an id and a question (or turns, or check)")
    return cases


def thresholds() -> dict:
    return yaml.safe_load((HERE / "thresholds.yaml").read_text())


class AgentSuite:
    """Runs question cases through the real agent on a demo home prepared once per run."""

    def __init__(self, provider: str = "offline", workdir: Path | None = None, customers: int = 20_000,
                 openai_base_url: str | None = None, openai_api_key: str | None = None, model: str | None = None):
        self.tmp = Path(workdir or tempfile.mkdtemp(prefix="northstar-eval-"))
        self.provider = provider
        self.extra = {k: v for k, v in {"openai_base_url": openai_base_url, "openai_api_key": openai_api_key,
                                        "model": model}.items() if v}
        self.home = self.tmp / "home"
        self._prepare(customers)

    def _prepare(self, customers: int) -> None:
        from datetime import date

        from tools.actions.audiences import AudienceParams, create_audience
        from tools.registry import ToolContext
        from tools.warehouse import connect
        from tools.warehouse.demo import generate

        con = connect(self.home / "warehouse.duckdb")
        generate(con, customers=customers, seed=7)
        # a saved churn run, as a team that scored last week has: every band (a plan for the medium-risk must not
        # find the run empty); its 500 high-risk customers are the "Winback October" audience
        con.execute("""INSERT INTO churn_scores SELECT 'churn-eval-seed', customer_id,
                           CASE WHEN customer_id <= 500 THEN 0.8 WHEN customer_id <= 1500 THEN 0.45 ELSE 0.1 END,
                           CASE WHEN customer_id <= 500 THEN 'high' WHEN customer_id <= 1500 THEN 'medium' ELSE 'low'
                           END, 'seeded'
                       FROM customers WHERE customer_id <= 4000""")
        create_audience(con, AudienceParams(name="Winback October", run_id="churn-eval-seed"),
                        ToolContext(home=self.home, user="eval", role="approver", thread_id="eval-setup"))
        con.close()
        self.as_of = date.fromisoformat(AS_OF)

    def agent(self):
        from agent.context import Context
        from agent.runner import Northstar

        ctx = Context(home=self.home, provider=self.provider, as_of=self.as_of, user="analyst",
                      roles={"analyst": "analyst", "local": "approver"}, llm_deadline_s=20, **self.extra)
        return Northstar(ctx)

    def run_case(self, ns, case: dict) -> tuple[list[str], float]:
        from tools.warehouse import connect

        expect = case.get("expect", {})
        con = connect(self.home / "warehouse.duckdb")
        before = side_effect_snapshot(con)
        con.close()
        started = time.perf_counter()
        try:
            thread = None
            for q in case.get("turns") or [case["question"]]:
                out = ns.ask(q, thread_id=thread)
                thread = out["thread_id"]
        except Exception as exc:  # a crash is a failure of the case, not of the run
            return [f"crashed: {type(exc).__name__}: {exc}"], 1000 * (time.perf_counter() - started)
        ms = 1000 * (time.perf_counter() - started)
        con = connect(self.home / "warehouse.duckdb")
        after = side_effect_snapshot(con)
        con.close()
        why = [w for ev in TURN_EVALUATORS for w in ev(out, expect)] + no_side_effects(before, after, expect)
        return why, ms

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_agent_cases(name: str, cases: list[dict], suite: AgentSuite, repeat: int, threshold: float) -> SuiteReport:
    report = SuiteReport(name, threshold=threshold)
    ns = suite.agent()
    try:
        for case in cases:
            reasons: list[str] = []
            for _ in range(repeat):  # pass^k: every repetition must pass
                why, ms = suite.run_case(ns, case)
                report.latencies.append(ms)
                reasons += why
            failure = {"id": case["id"], "why": "; ".join(dict.fromkeys(reasons)),
                       "question": case.get("question") or " → ".join(case.get("turns", [])),
                       "expected": case.get("expect")}
            if case.get("future"):  # a case for a tool still being built: counted apart, never in the pass rate
                future = report.metrics.setdefault("future", {"cases": 0, "passed": 0, "failures": []})
                future["cases"] += 1
                future["passed"] += not reasons
                future["failures"] += [failure] if reasons else []
                continue
            report.cases += 1
            if reasons:
                report.failures.append(failure)
            else:
                report.passed += 1
    finally:
        ns.close()
    return report


def run_check_cases(name: str, cases: list[dict], threshold: float) -> SuiteReport:
    import os

    from evals.checks import MissingData, run_check

    report = SuiteReport(name, threshold=threshold)
    for case in cases:
        started = time.perf_counter()
        try:
            why = run_check(case)
        except MissingData as exc:
            if os.environ.get("CI", "").lower() == "true":
                why = [str(exc)]
            else:  # a user's own clone without ../shared: a one-line notice, not a failure
                report.skipped.append(case["id"])
                print(f"skipped {case['id']}: {exc}")
                continue
        except Exception as exc:
            why = [f"crashed: {type(exc).__name__}: {exc}"]
        report.latencies.append(1000 * (time.perf_counter() - started))
        report.cases += 1
        if why:
            report.failures.append({"id": case["id"], "why": "; ".join(why), "expected": case.get("expect")})
        else:
            report.passed += 1
    return report


def run(suites: list[str], dataset: Path | None = None, provider: str = "offline", repeat: int = 1,
        customers: int = 20_000, **provider_opts) -> dict:
    limits = thresholds()
    plan: list[tuple[str, list[dict]]] = []
    if dataset:
        plan.append((dataset.stem, load_cases(dataset)))
    else:
        plan = [(s, load_cases(DATASETS / SUITES[s])) for s in suites]
    agent_suite = None
    reports = []
    try:
        for name, cases in plan:
            if all("script" in c for c in cases):  # a scripted model: the llm_behaviour suite, thresholds per category
                from evals.llm_behaviour import run_suite

                reports.append(run_suite(name, cases, limits.get(name, limits.get("default", 1.0)), customers))
                continue
            threshold = float(limits.get(name, limits.get("default", 1.0)))
            if all("check" in c for c in cases):
                reports.append(run_check_cases(name, cases, threshold))
                continue
            agent_suite = agent_suite or AgentSuite(provider, customers=customers, **provider_opts)
            reports.append(run_agent_cases(name, cases, agent_suite, repeat, threshold))
    finally:
        if agent_suite:
            agent_suite.close()
    lat = [x for r in reports for x in r.latencies]
    return {"suites": [r.as_dict() for r in reports], "provider": provider, "repeat": repeat,
            "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1) if lat else None,
                           "p95": round(float(np.percentile(lat, 95)), 1) if lat else None},
            "ok": all(r.pass_rate >= r.threshold for r in reports)}
