"""How a decision on a draft is said: in the thread it came from, to the approver, and in the answer's hint.

The outcome posted into a thread carries the request id in backticks, so posting twice is recognised; an executed
action is posted as its tool call and result too, so a follow-up (and grounding) sees what ran.
"""

from __future__ import annotations

KINDS = {"approve": "accept", "accept": "accept", "edit": "edit", "reject": "reject", "ignore": "reject",
         "respond": "respond", "response": "respond"}


def decision_kind(decision: str) -> str | None:
    """approve/accept, edit, reject/ignore, respond/response → the inbox's accept, edit, reject, respond."""
    return KINDS.get((decision or "").strip().lower())


def _name(item: dict) -> str:
    name = (item.get("final_args") or item.get("args") or {}).get("name")
    return f"**{item['action']}**" + (f" '{name}'" if name else "")


def outcome_text(item: dict) -> str:
    """One paragraph: who decided what, and what happened (the action's own summary when it ran)."""
    who, rid, status = item.get("decided_by") or "an approver", f"(request `{item['id']}`)", item.get("status")
    note = f" {who} wrote: “{item['message']}”" if item.get("message") else ""
    result = item.get("result") or {}
    if status == "rejected":
        return f"✗ {_name(item)} **was rejected by {who}**; nothing was run {rid}.{note}"
    if status == "responded":
        return f"↩ {_name(item)} was not run: **{who} replied** instead of approving {rid}.{note}"
    if status == "done":
        verb = "Approved with edits" if item.get("decision") == "edit" else "Approved"
        return f"✓ **{verb} by {who}** {rid}: {((result.get('result') or {}).get('summary') or '').strip()}"
    if status == "failed":
        return (f"✗ {_name(item)} was approved by {who} but **could not run** {rid}: {result.get('error')}. Nothing "
                "was changed.")
    if status == "executing":
        return f"◷ {_name(item)} was approved by {who} and is being carried out {rid}."
    return f"◆ {_name(item)} waits for an approver {rid}."


def outcome_messages(item: dict, home=None) -> list[dict]:
    """What is appended to the thread: the executed call and its result (as data), then the outcome."""
    from agent.nodes import _record

    messages = []
    result = item.get("result")
    if item.get("status") in ("done", "failed") and result:
        call = {"id": item["id"], "name": item["action"], "args": result.get("args") or item["args"]}
        payload = result.get("result") if result.get("ok") else result.get("error")
        messages = _record(call, bool(result.get("ok")), payload or {}, 0.0, home)[1]
    return [*messages, {"role": "assistant", "content": outcome_text(item)}]


def hint(waiting: list[dict]) -> str:
    """The CLI's approval hint, last in an answer (interfaces replace it with where they take decisions)."""
    ids = ", ".join(f"`northstar approve {d['id']}`" for d in waiting)
    return f"It needs an approver's decision: {ids} (or --reject / --edit JSON)."


def interrupted_note(item: dict) -> str:
    return (f"Stopped by a crash while it ran, after {item.get('decided_by')} approved it; approving resumes it "
            f"without running it twice. {item.get('description') or ''}").strip()
