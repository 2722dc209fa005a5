"""The answer written from tool results (no model): summaries, caveats, a recommendation or an abstention.

Used by the offline planner for its answers, by the grounding guard when a draft must be replaced, and by the
runner when a turn ends in an approval request. Summaries carry text from the data (campaign names, review
phrases, table values), so the answer is written safe (agent/sanitize.py): no remote image, no clickable link,
instructions in the data quoted and said to be data. guard_output checks every answer again with the allow-list.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.sanitize import sanitize_answer


def compose_answer(calls: list[dict], state: dict, allowed_hosts: Iterable[str] = ()) -> str:
    """The answer, from templates over this turn's results: summaries, caveats, a recommendation or abstention.
    Links stay clickable only to `allowed_hosts` (none by default: a tool's text never needs one)."""
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
    answer = "\n\n".join(parts) if parts else "Nothing to report."
    return sanitize_answer(answer, [c.get("result") for c in calls if c.get("ok")], allowed_hosts)[0]
