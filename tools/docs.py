"""docs/tools.md, generated from the registry; `northstar docs --check` fails when it is stale."""

from __future__ import annotations

from tools.registry import load_tools


def tools_markdown() -> str:
    """docs/tools.md, generated from the registry."""
    registry = load_tools()
    lines = ["# Tools", "", "Generated from the registry (`tools/registry.py`, rendered by `tools/docs.py`); `make docs` rewrites it and a test "
             "fails when it is stale.", "", "Run one: `northstar tool NAME --args JSON [--json]`.", "",
             "| tool | approval | description |", "| --- | --- | --- |"]
    lines += [f"| [`{s.name}`](#{s.name}) | {'yes' if s.approval else 'no'} | {s.description} |"
              for s in registry.values()]
    lines.append("")
    for s in registry.values():
        lines += [f"## {s.name}", "", s.description, "",
                  "Needs approval by an approver before it runs." if s.approval else "Read-only.", "",
                  "| parameter | type | default | description |", "| --- | --- | --- | --- |"]
        schema = s.json_schema()
        for pname, prop in schema.get("properties", {}).items():
            typ = prop.get("type") or " | ".join(
                a.get("type", a.get("$ref", "").split("/")[-1]) for a in prop.get("anyOf", []))
            if "enum" in prop:
                typ = " | ".join(map(str, prop["enum"]))
            default = "required" if pname in schema.get("required", []) else repr(prop.get("default"))
            desc = (prop.get("description") or "").replace("\n", " ").replace("|", "\\|")
            lines.append(f"| `{pname}` | {typ} | {default} | {desc} |")
        lines += ["", "Example:", "", "```json", s.example.model_dump_json(exclude_defaults=True), "```", "",
                  "Example requests:", ""] + [f"* {r}" for r in s.requests] + [""]
    return "\n".join(lines)
