"""The one tool registry: the LLM binding, the offline planner, the CLI, the evals and the docs read it."""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_ROWS = 200


class ToolError(Exception):
    """A tool could not answer for a reason the user can fix; the message says what and how."""


class ToolResult(BaseModel):
    """What every tool returns: a plain summary with the key numbers, bounded rows, metrics, a chart."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    summary: str
    """Plain text with the key numbers; the agent's answer quotes it."""
    data: list[dict[str, Any]] = Field(default_factory=list)
    """Bounded rows (at most 200)."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Key figures and model quality."""
    chart: dict[str, Any] | None = None
    """A Vega-Lite spec, when a picture says it better."""
    warnings: list[str] = Field(default_factory=list)
    """Caveats: data problems, unreliable models, truncated rows."""
    key_metrics: list[str] = Field(default_factory=list)
    """The metrics that matter most, in order (declared by the tool); interfaces show these first."""

    @field_validator("data", mode="before")
    @classmethod
    def _bound(cls, rows):
        return [jsonable(r) for r in (rows or [])[:MAX_ROWS]]

    @field_validator("metrics", mode="before")
    @classmethod
    def _clean(cls, metrics):
        return jsonable(metrics or {})


def jsonable(value: Any) -> Any:
    """Numpy scalars, dates, NaN … → plain JSON values (NaN and inf become None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ToolContext:
    """Who is running a tool and where state lives; passed to tools that declare a third argument."""

    home: Path = Path(".northstar")
    user: str = "local"
    role: str = "viewer"
    thread_id: str | None = None
    request_id: str | None = None
    """The approved request being executed (with thread_id, makes actions idempotent)."""
    webhook_url: str | None = None
    max_budget_change: float = 0.25
    now: datetime | None = None
    query_memory_mb: int = 1024
    """Memory limit of query_data's sandbox (MB)."""
    query_threads: int = 2
    """DuckDB threads of query_data's sandbox."""


@dataclass
class ToolSpec:
    name: str
    fn: Callable
    params: type[BaseModel]
    result: type[ToolResult]
    description: str
    example: BaseModel
    requests: tuple[str, ...]
    approval: bool
    takes_context: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)
    preview_fn: Callable | None = None
    """Actions: what the approver sees before anything runs (see `register`)."""
    requires: dict[str, dict[str | None, str]] = field(default_factory=dict)
    """Actions: parameter → value → the tool whose saved run the action reads (the planner runs it first); the
    value None stands for "not given": that tool's result supplies the parameter."""
    key_metrics: tuple[str, ...] = ()
    """The metrics an interface shows first, in order."""
    names_things: bool = False
    """Running it creates names (segments, audiences) the planner should learn."""
    concepts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """What the tool answers, in the words people use: concept → synonyms ("ctr": ("click-through rate", …))."""
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """How people name a parameter or one of its enum values: name → phrases ("alpha": ("significance level",))."""
    current: dict[str, Callable] = field(default_factory=dict)
    """Actions: parameter → reader(con) of the value it holds now; relative instructions ("cut video by 10 %")
    are computed against it."""

    def parse(self, args: dict | BaseModel | None) -> BaseModel:
        """Validate arguments; raises pydantic.ValidationError, or ToolError when a table argument names one of
        Northstar's own tables (in any case or quoting)."""
        if isinstance(args, self.params):
            params = args
        else:
            params = self.params.model_validate((args.model_dump() if isinstance(args, BaseModel) else args) or {})
        refuse_protected_tables(self.params, params)
        return params

    def run(self, con, args: dict | BaseModel | None = None, ctx: ToolContext | None = None) -> ToolResult:
        params = self.parse(args)
        result = self.fn(con, params, ctx or ToolContext()) if self.takes_context else self.fn(con, params)
        if self.key_metrics and not result.key_metrics:
            result.key_metrics = [k for k in self.key_metrics if k in result.metrics]
        return result

    def preview(self, con, params: BaseModel, ctx: ToolContext | None = None) -> dict:
        """The approver's view of an action, computed without changing anything."""
        if self.preview_fn is None:
            raise ToolError(f"{self.name} is not an action: it has no preview")
        return self.preview_fn(con, params, ctx or ToolContext())

    def json_schema(self) -> dict:
        return _schema(self.params)

    def openai_tool(self) -> dict:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.json_schema()}}


@cache
def _schema(params: type[BaseModel]) -> dict:
    return params.model_json_schema()


TABLE_FIELD = re.compile(r"(^|_)tables?$")
"""Parameters whose name is `table`, `paths_table`, `…_tables`: they name a warehouse table."""


@cache
def table_fields(params: type[BaseModel]) -> tuple[str, ...]:
    """The parameters of a tool that name warehouse tables."""
    return tuple(name for name in params.model_fields if TABLE_FIELD.search(name))


def refuse_protected_tables(params_type: type[BaseModel], params: BaseModel) -> None:
    """No tool takes one of Northstar's own tables (audit log, outbox, saved runs …) as a table argument, whatever
    the case, quoting or look-alike letters: one check here for every tool, present and future."""
    from tools.warehouse.connection import protected_refusal  # the warehouse imports this module

    for name in table_fields(params_type):
        value = getattr(params, name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, str) and (why := protected_refusal(item, "read")):
                raise ToolError(f"{name}: {why}")


TOOLS: dict[str, ToolSpec] = {}
TOOL_PACKAGES = ("tools.analytics", "tools.actions")
"""Where tools live; every module under them is imported once so that its tools register."""
ON_FIRST_USE = ("pandas", "pyarrow.compute", "pyarrow.parquet", "scipy.linalg", "scipy.optimize", "scipy.sparse",
                "scipy.sparse.linalg", "scipy.special", "scipy.stats", "sklearn.cluster", "sklearn.ensemble",
                "sklearn.linear_model", "sklearn.metrics", "sklearn.mixture", "sklearn.model_selection",
                "sklearn.pipeline", "sklearn.preprocessing", "vaderSentiment.vaderSentiment")
"""Libraries the tools import inside their functions, so that a CLI command that runs no tool never loads them
(issue 19 goal 3). A server imports them before it serves (`load_first_use`), so its warm-up freezes them with the
rest of start-up (`Northstar.warm_up`)."""


def load_first_use() -> None:
    """Import `ON_FIRST_USE` now, in one thread, before any request runs: importing them from a background thread
    while a request's tool imports the same modules can end in Python's import-deadlock error (seen in CI:
    sklearn and narwhals from two threads)."""
    for module in ON_FIRST_USE:
        try:
            importlib.import_module(module)
        except ImportError:  # an optional library missing: its tool says so when it runs
            pass


def register(*, example: BaseModel, requests: list[str] | tuple[str, ...], approval: bool = False,
             tags: tuple[str, ...] = (), preview: Callable | None = None,
             requires: dict[str, dict[str | None, str]] | None = None, key_metrics: tuple[str, ...] = (),
             names_things: bool = False, concepts: dict[str, list[str] | tuple[str, ...]] | None = None,
             synonyms: dict[str, list[str] | tuple[str, ...]] | None = None,
             current: dict[str, Callable] | None = None) -> Callable:
    """Register a tool. The first docstring line is its description (the model reads it).

    An action (approval=True) declares `preview(con, params, ctx) -> dict` (what the approver sees: at least
    `description`; optionally `risk` and `pinned` arguments resolved now), `requires` (parameter → value →
    the tool whose run it needs, e.g. {"source": {"churn": "score_churn"}}; the value None: the parameter is not
    given and that tool's result supplies it) and `current` (parameter → reader(con) of what it holds now).
    `key_metrics` names the metrics an interface shows first; `names_things` says the tool creates names the
    planner should learn (segments, audiences). `concepts` are the metrics and ideas the tool answers with the
    words people use for them (concept → synonyms); `synonyms` name its parameters and enum values the way people
    do (parameter or value → phrases). The offline planner reads both."""

    def wrap(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        hints = inspect.get_annotations(fn, eval_str=True)
        params_type = hints[list(sig.parameters)[1]]
        result_type = hints["return"]
        doc = (fn.__doc__ or "").strip()
        if not doc:
            raise TypeError(f"tool {fn.__name__} needs a docstring: its first line is the tool's description")
        if not isinstance(example, params_type):
            raise TypeError(f"tool {fn.__name__}: example must be a {params_type.__name__}")
        if approval and preview is None:
            raise TypeError(f"action {fn.__name__} needs a preview: the approver must see what it will do")
        TOOLS[fn.__name__] = ToolSpec(
            name=fn.__name__, fn=fn, params=params_type, result=result_type, description=doc.splitlines()[0],
            example=example, requests=tuple(requests), approval=approval,
            takes_context=len(sig.parameters) >= 3, tags=tags, preview_fn=preview, requires=requires or {},
            key_metrics=tuple(key_metrics), names_things=names_things or approval,
            concepts={k: tuple(v) for k, v in (concepts or {}).items()},
            synonyms={k: tuple(v) for k, v in (synonyms or {}).items()}, current=dict(current or {}))
        return fn

    return wrap


_loaded = False
_IMPORTING = threading.RLock()
"""Held while tool modules are imported (they add to TOOLS), so a server thread never lists the registry while
another thread's `get_tool` is registering one tool."""


def load_tools() -> dict[str, ToolSpec]:
    """Import every module under tools/analytics and tools/actions (each registers its tools); the registry."""
    global _loaded
    with _IMPORTING:
        if not _loaded:
            for mod in tool_modules():
                importlib.import_module(mod)
            _loaded = True
        return dict(sorted(TOOLS.items()))


def tool_modules() -> list[str]:
    """Every module under the tool packages (private `_…` modules left out), in a stable order."""
    found = []
    for package in TOOL_PACKAGES:
        pkg = importlib.import_module(package)
        found += sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.")
                        if not m.name.rsplit(".", 1)[-1].startswith("_"))
    return found


TOOL_INDEX: dict[str, str] = {
    "allocate_budget": "tools.analytics.budget.tool",
    "analyze_experiment": "tools.analytics.experiments.readout",
    "analyze_sentiment": "tools.analytics.sentiment",
    "attribute_conversions": "tools.analytics.attribution.tool",
    "campaign_report": "tools.analytics.campaigns",
    "create_audience": "tools.actions.audiences",
    "detect_anomalies": "tools.analytics.anomalies",
    "generate_content_variants": "tools.analytics.content",
    "launch_campaign": "tools.actions.campaigns",
    "measure_campaign": "tools.analytics.campaign_measure",
    "plan_campaign": "tools.analytics.campaign_plan",
    "plan_experiment": "tools.analytics.experiments.plan",
    "predict_clv": "tools.analytics.customers.clv",
    "query_data": "tools.analytics.query",
    "schedule_campaign": "tools.actions.sends",
    "score_churn": "tools.analytics.customers.churn",
    "score_leads": "tools.analytics.customers.leads",
    "search_knowledge": "tools.analytics.knowledge_search",
    "segment_customers": "tools.analytics.customers.segmentation",
    "update_budget": "tools.actions.budgets",
}
"""Tool name → the module that registers it, so `get_tool` imports one module instead of all of them (the CLI's
`northstar tool X` pays for X's imports only). tests/ui/test_cli_startup.py checks it against a full
`load_tools()` and prints the dict to paste when a tool is added or moved; a name it lacks (or a stale entry)
costs only speed, since `get_tool` then falls back to importing every tool module."""


def tool_index() -> dict[str, str]:
    """What TOOL_INDEX should hold: every registered tool → the module that defines (and so registers) it."""
    return {name: spec.fn.__module__ for name, spec in load_tools().items()}


def get_tool(name: str) -> ToolSpec:
    """The tool called `name`: imports only its module when TOOL_INDEX knows it, else every tool module (and
    then a clear error, with the closest names, when there is no such tool)."""
    if name not in TOOLS and not _loaded and (module := TOOL_INDEX.get(name)):
        with _IMPORTING:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a stale entry (the module moved): the full import below finds it
                if not exc.name or not module.startswith(exc.name):
                    raise
    if name in TOOLS:
        return TOOLS[name]
    registry = load_tools()
    if name not in registry:
        import difflib

        close = difflib.get_close_matches(name, list(registry), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ToolError(f"Unknown tool {name!r}.{hint} `northstar tools` lists them.")
    return registry[name]


def format_validation_error(name: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        parts.append(f"{where}: {err['msg']}")
    return f"Invalid arguments for {name}: " + "; ".join(parts)
