"""The public face of the tools: what the agent, the adapters, the evals and the docs may use.

    register, ToolResult, ToolError, ToolContext, ToolSpec      the contract every tool keeps (tools/registry.py)
    load_tools, get_tool, format_validation_error, jsonable    the registry, walked by everyone
    load_first_use                                             the tools' libraries, imported before a server serves
    tools_markdown                                             docs/tools.md, generated (tools/docs.py)
    check_request                                              the compliance rules a request must pass
    outbox_items, deliver_pending, deliver_in_background,      the outbox: list it; deliver what still waits
    DeliveryPolicy                                             (CLI `northstar outbox`, UI and Slack start-up)

Tools live in `analytics/` (read-only) and `actions/` (approval-gated); `warehouse/` is infrastructure.
Names are imported on first use, so `import tools` costs nothing on the CLI's fast paths.
"""

from __future__ import annotations

import importlib

_FACE = {
    "register": "tools.registry", "ToolResult": "tools.registry", "ToolError": "tools.registry",
    "ToolContext": "tools.registry", "ToolSpec": "tools.registry", "load_tools": "tools.registry",
    "get_tool": "tools.registry", "format_validation_error": "tools.registry", "jsonable": "tools.registry",
    "load_first_use": "tools.registry",
    "tools_markdown": "tools.docs", "check_request": "tools.compliance",
    "outbox_items": "tools.actions.outbox", "deliver_pending": "tools.actions.delivery",
    "deliver_in_background": "tools.actions.delivery", "DeliveryPolicy": "tools.actions.delivery",
}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name in _FACE:
        return getattr(importlib.import_module(_FACE[name]), name)
    raise AttributeError(f"module 'tools' has no attribute {name!r}")
