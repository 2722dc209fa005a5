"""The answer written from tool results (no model): summaries, caveats, a recommendation or an abstention.

Used by the offline planner for its answers, by the grounding guard when a draft must be replaced, and by the
runner when a turn ends in an approval request.
"""

from __future__ import annotations


def compose_answer(calls: list[dict], state: dict) -> str:
    """The answer, from templates over this turn's results: summaries, caveats, a recommendation or abstention."""
    parts = []
    for c in calls:
        title = c["name"].replace("_", " ")
        if not c.get("ok"):
            parts.append(f"**{title}** could not run: {c.get('error')}")
            continue
        res = c.get("result") or {}
        parts.append(f"**{title}**: {res.get('summary', '').strip()}")
        metrics = res.get("metrics") or {}
        if metrics.get("reliable") is False:
            parts.append("These results are not reliable enough to act on; I recommend not targeting anyone "
                         "on them until the data improves.")
        elif isinstance(rec := metrics.get("recommendation"), str) and rec:
            parts.append(f"Recommendation: {rec}")
        for w in (res.get("warnings") or [])[:3]:
            parts.append(f"Caveat: {w}")
    decision = state.get("decision")
    if decision and decision.get("type") == "reject":
        parts.append(f"The action was rejected by {decision.get('user')}; nothing was executed.")
    return "\n\n".join(parts) if parts else "Nothing to report."
