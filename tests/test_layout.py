"""The rules of the house, read from the code's imports (ast), so the layout cannot drift from docs/architecture.md.

* `tools/` imports nothing from `agent/`, `ui/`, `evals/`, `bench/`.
* Adapters (`ui/`) use `agent.runner`, `agent.context`, the public face `tools` and the warehouse's admin entry
  points (`tools.warehouse`): nothing else of `agent/` or `tools/`.
* `agent/` uses tools only through the public face, the registry and the warehouse's entry points.
* `agent/nodes.py` names no tool: actions declare their preview and prerequisites when they register.
* No module imports itself back in a circle at import time (function-level imports excepted).
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "tools", "ui", "evals", "bench", "knowledge")
RULES = {  # folder → (top-level packages it may import from, allowed modules of those packages or None = any)
    "tools": {"agent": set(), "ui": set(), "evals": set(), "bench": set()},
    "ui": {"agent": {"agent.runner", "agent.context"}, "tools": {"tools", "tools.warehouse"}},
    "agent": {"tools": {"tools", "tools.registry", "tools.warehouse"}},
}
NO_TOOL_NAMES = ("agent/nodes.py", "agent/graph.py", "agent/runner.py")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(root: Path, base: str, name: str) -> str:
    """`from tools import charts` imports the module tools.charts; `from tools import ToolError` imports tools."""
    candidate = f"{base}.{name}"
    rel = Path(*candidate.split("."))
    return candidate if (root / f"{rel}.py").exists() or (root / rel / "__init__.py").exists() else base


def imports(root: Path, path: Path, top_level_only: bool = False) -> set[str]:
    """Every project module `path` imports (absolute and relative, at any depth unless top_level_only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    me = module_name(root, path).split(".")
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = me if is_pkg else me[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found |= {_resolve(root, base, a.name) for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def tool_names(root: Path) -> set[str]:
    """Functions decorated with @register anywhere under tools/."""
    names = set()
    for path in (root / "tools").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "register"
                    for d in node.decorator_list):
                names.add(node.name)
    return names


def _sources(folder: Path) -> list[Path]:
    """The project's Python files under `folder`: never a virtualenv someone made inside it (bench/.venv-compare)."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*.py") if not any(part.startswith(".venv") for part in p.relative_to(folder).parts)]


def _cycles(root: Path) -> list[str]:
    graph: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in _sources(root / pkg):
            graph[module_name(root, path)] = imports(root, path, top_level_only=True)
    found, state = [], {}

    def visit(mod: str, stack: list[str]) -> None:
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            if dep == mod or dep not in graph or mod.startswith(dep + "."):
                continue  # a package's own __init__ and its modules are one unit
            if state.get(dep) == "open":
                found.append(" → ".join([*stack[stack.index(dep):], dep]) if dep in stack else f"{mod} → {dep}")
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[mod] = "done"

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    return found


def violations(root: Path) -> list[str]:
    """Every broken rule of the house under `root`, as readable lines (empty: the layout holds)."""
    out = []
    for folder, rules in RULES.items():
        for path in sorted(_sources(root / folder)):
            for mod in sorted(imports(root, path)):
                top = mod.split(".")[0]
                if top in rules and mod not in rules[top]:
                    allowed = ", ".join(sorted(rules[top])) or "nothing"
                    out.append(f"{path.relative_to(root)} imports {mod} ({folder}/ may use {allowed} of {top}/)")
    names = tool_names(root)
    for rel in NO_TOOL_NAMES:
        path = root / rel
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    node.value in names or any(n in node.value.split() for n in names)):
                out.append(f"{rel} names the tool {node.value!r}; declare the behaviour when the tool registers")
    out += [f"import circle: {c}" for c in _cycles(root)]
    return out


def test_the_layout_keeps_the_rules_of_the_house():
    assert violations(ROOT) == []


def test_every_tool_module_sits_in_analytics_or_actions():
    stray = [str(p.relative_to(ROOT)) for p in (ROOT / "tools").rglob("*.py")
             if "@register" in p.read_text(encoding="utf-8")
             and not {"analytics", "actions"} & set(p.relative_to(ROOT).parts)
             and p.name != "registry.py"]
    assert stray == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    return tmp_path


CLEAN = {
    "tools/registry.py": "def register(**kw):\n    return lambda f: f\n",
    "tools/analytics/report.py": "from tools.registry import register\n@register(example=None)\ndef campaign_report(con, p): ...\n",
    "agent/runner.py": "from agent.context import Context\n",
    "agent/context.py": "",
    "agent/nodes.py": "from tools import registry\n",
    "ui/cli.py": "from agent.runner import Context\nfrom tools import warehouse\n",
}


def test_the_checker_passes_a_clean_tree(tmp_path):
    assert violations(_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("rel, text, expect", [
    ("tools/analytics/leak.py", "from agent.runner import Northstar\n", "imports agent.runner"),
    ("tools/charts.py", "def f():\n    import ui.present\n", "imports ui.present"),
    ("ui/gradio.py", "from tools.analytics.report import campaign_report\n", "imports tools.analytics.report"),
    ("ui/slack.py", "from agent import nodes\n", "imports agent.nodes"),
    ("ui/rel.py", "from ..agent import graph\n", "rel.py imports agent"),
    ("agent/planner.py", "from tools.analytics import report\n", "imports tools.analytics.report"),
    ("agent/nodes.py", "def f(call):\n    return call['name'] == 'campaign_report'\n", "names the tool"),
    ("evals/a.py", "from evals import b\n", "import circle"),
])
def test_the_checker_catches_a_violation(tmp_path, rel, text, expect):
    files = {**CLEAN, rel: text}
    if rel == "evals/a.py":
        files["evals/b.py"] = "from evals import a\n"
    found = violations(_tree(tmp_path, files))
    assert any(expect in v for v in found), found
