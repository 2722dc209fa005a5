"""Deciding on drafts: the inbox as each user may see it, approve / edit / reject / respond, resuming an action a
crash interrupted, and posting the outcome into the thread the draft came from. Mixed into `Northstar`
(agent/runner.py), whose threads, locks, audit and results it uses.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.inbox import INFLIGHT
from agent.outcomes import decision_kind, interrupted_note, outcome_messages, outcome_text


class ApprovalError(Exception):
    """A decision that cannot be taken (wrong role, nothing pending); the message says why."""


class NotPermitted(ApprovalError):
    """The user may not do this: their role, the four-eyes rule, or another user's private thread."""


class Decisions:
    """The inbox half of Northstar (needs its ctx, store, graph, _lock, _audit, _result, _owner, _count_open)."""

    def inbox(self, user: str | None = None, include_decided: bool = False, limit: int = 200) -> list[dict]:
        """Drafts waiting for a decision (and, with include_decided, recent outcomes), newest first: every
        thread's for an approver, the user's own threads' for anyone else. A draft whose execution a crash
        interrupted is listed with `interrupted: true`; approving it resumes it without running it twice."""
        user = user or self.ctx.user
        everyone = self.ctx.refusal(user, "approve") is None
        statuses = ("pending", "executing", "done", "failed", "rejected", "responded") if include_decided else \
            ("pending", "executing")
        owners = dict(self._sql("SELECT thread_id, user FROM ns_threads"))
        out = []
        for item in self.store.listing(statuses, limit):
            if everyone or self.ctx.may_open(user, owners.get(item["thread_id"])):
                if item["interrupted"]:
                    item["description"] = interrupted_note(item)
                out.append(item)
        return out

    def pending(self, user: str | None = None) -> list[dict]:
        """What waits for a decision, as `user` may see it (see inbox)."""
        return self.inbox(user)

    def decide(self, request_id: str, decision: str, user: str | None = None, args: dict | None = None,
               message: str | None = None, on_event: Callable[[dict], None] | None = None,
               edit: dict | None = None) -> dict:
        """Approve (accept), edit, reject (ignore) or respond to one draft, as `user`: an approver who, under the
        four-eyes rule, did not draft it. `request_id` is the draft's id (a thread id decides that thread's oldest
        open draft). Approve/edit executes it once; the outcome is posted into its thread. A draft a crash left
        executing is resumed by approving it (approvers only). The result shows the decided action, not the
        drafter's conversation, unless `user` may open the thread."""
        user, kind = user or self.ctx.user, decision_kind(decision)
        if kind is None:
            raise ApprovalError("decision must be approve, edit, reject or respond")
        args = edit if edit is not None else args
        item = self._find(request_id)
        if item["status"] == "executing":
            return self._resume(item, user, kind, on_event)
        if why := self.ctx.decision_refusal(user, "reject" if kind == "respond" else kind, item.get("requested_by")):
            self._audit("approval", item["action"], user, item["thread_id"], item["args"], "refused", why)
            raise NotPermitted(why)
        final = item["args"]
        if kind == "edit":
            final = self._edited(item, args, user)
        if kind == "respond" and not (message or "").strip():
            raise ApprovalError("respond needs a message for the requester (what to change, or why not).")
        INFLIGHT.add(item["id"])  # before the claim: a claim of this process not in flight reads as a crash
        try:
            if not self.store.claim(item["id"], kind, user, final if kind == "edit" else None, message):
                raise ApprovalError(_gone(self.store.get(item["id"])))
            self._audit("approval", item["action"], user, item["thread_id"], final, kind, message)
            if kind in ("accept", "edit"):
                self._execute(item, item["id"], user, final, on_event)
        finally:
            INFLIGHT.discard(item["id"])
        return self._decided(item["id"], user)

    def _find(self, ref: str) -> dict:
        item = self.store.get(ref)
        if item is None:
            open_items = self.store.of_thread(ref)
            if not open_items:
                raise ApprovalError(f"Nothing is waiting for approval in thread {ref}.")
            item = open_items[0]
        elif item["status"] not in ("pending", "executing"):
            raise ApprovalError(_gone(item))
        return item

    def _edited(self, item: dict, args: dict | None, user: str) -> dict:
        from pydantic import ValidationError

        from tools.registry import format_validation_error, get_tool

        if not args:
            raise ApprovalError("edit needs the changed arguments (JSON).")
        try:
            return get_tool(item["action"]).parse({**item["args"], **args}).model_dump(mode="json")
        except ValidationError as exc:
            why = format_validation_error(item["action"], exc)
            self._audit("approval", item["action"], user, item["thread_id"], args, "invalid", why)
            raise ApprovalError(why) from exc

    def _resume(self, item: dict, user: str, kind: str, on_event) -> dict:
        """Carry out a draft whose execution a crash interrupted: the recorded decision, as an approver."""
        name, thread, where = item["action"], item["thread_id"], f"decided by {item['decided_by']}, not finished"
        if not item["interrupted"]:
            raise ApprovalError(f"Nothing is waiting for approval under {item['id']}: it was approved by "
                                f"{item['decided_by']} and {name} is being carried out right now; its outcome will be "
                                "posted in its thread.")
        if why := self.ctx.refusal(user, "resume"):
            self._audit("resume", name, user, thread, item["args"], "refused", f"{why} ({where})")
            raise NotPermitted(why)
        if kind not in ("accept", "edit"):
            raise ApprovalError(f"{item['id']} ({name}) was approved and stopped while it ran; it can only be "
                                "resumed by approving it, not rejected or edited.")
        if not self.store.reclaim(item["id"], item["claimed_by"]):
            raise ApprovalError(_gone(self.store.get(item["id"])))
        self._audit("resume", name, user, thread, item["args"], "started", where)  # a second crash leaves a trace
        try:
            self._execute(item, item["id"], item["decided_by"], item["final_args"] or item["args"], on_event)
        except Exception as exc:
            self._audit("resume", name, user, thread, item["args"], "error", f"{type(exc).__name__}: {exc}")
            raise
        self._audit("resume", name, user, thread, item["args"], "ok", where)
        return self._decided(item["id"], user)

    def _execute(self, item: dict, rid: str, approver: str, args: dict, on_event) -> None:
        """Run the approved action exactly once (run_once's key includes the request id), then record it."""
        from agent import nodes
        from tools.registry import load_tools

        call = {"id": rid, "name": item["action"], "args": args}
        tool_ctx = nodes.tool_context(self.ctx, {"user": approver}, user=approver, role="approver", request_id=rid,
                                      thread_id=item["thread_id"])
        INFLIGHT.add(rid)
        try:
            if on_event:
                on_event({"event": "tool_start", "name": item["action"], "args": args})
            done, _messages = nodes.execute(load_tools()[item["action"]], call, self.ctx, tool_ctx)
            self.store.finish(rid, done["ok"], done)
            if on_event:
                on_event({"event": "tool_end", "name": item["action"], "ok": done["ok"], "ms": done.get("ms")})
        finally:
            INFLIGHT.discard(rid)

    def _decided(self, rid: str, user: str) -> dict:
        item = self.store.get(rid)
        thread = item["thread_id"]
        if self._lock(thread).acquire(blocking=False):  # a turn running in the thread posts it when it ends
            try:
                self._post_outcomes(thread)
            finally:
                self._lock(thread).release()
        self._count_open(thread)
        call = item["result"] if item["status"] in ("done", "failed") else None
        if self.ctx.may_open(user, self._owner(thread)):
            out = self._result(thread)
            if call and not any(c.get("id") == rid for c in out["tool_calls"]):
                out["tool_calls"].append(calls_view([call])[0])
        else:
            out = {"thread_id": thread, "provider": self._provider_label({}), "answer": outcome_text(item),
                   "tool_calls": calls_view([call] if call else []), "pending_approval": None,
                   "pending_approvals": [], "blocked": None, "grounded": True, "fallback": None}
        return {**out, "outcome": outcome_text(item), "request": item}

    def _post_outcomes(self, thread_id: str) -> None:
        """Append decided drafts' outcomes to the thread (once each), so a follow-up sees them. Only while no turn
        of the thread runs; otherwise the turn posts them when it ends."""
        items = self.store.unposted(thread_id)
        if not items:
            return
        config = self._config(thread_id)
        snapshot = self.graph.get_state(config)
        if snapshot.next or not snapshot.values:
            return
        messages = snapshot.values.get("messages") or []
        said = {m.get("content") for m in messages} | {tc.get("id") for m in messages for tc in m.get("tool_calls") or []}
        fresh = [i for i in items if i["id"] not in said and outcome_text(i) not in said]  # once, even after a crash
        if fresh:
            calls = list(snapshot.values.get("calls") or [])
            calls += [i["result"] for i in fresh if i["status"] in ("done", "failed") and i["result"]]
            messages = [m for i in fresh for m in outcome_messages(i, self.ctx.home)]
            self.graph.update_state(config, {"messages": messages, "calls": calls}, as_node="guard_output")
        for i in items:
            self.store.mark_posted(i["id"])

def _gone(item: dict | None) -> str:
    if item is None:
        return "Nothing is waiting for approval under that id."
    verb = {"done": "approved", "failed": "approved (and failed)", "rejected": "rejected", "responded": "answered",
            "executing": "approved"}.get(item["status"], item["status"])
    return (f"Nothing is waiting for approval under {item['id']}: it was {verb} by {item.get('decided_by')} "
            f"at {str(item.get('decided_at') or '').replace('T', ' ')}.")


def calls_view(calls: list[dict]) -> list[dict]:
    return [{"id": c.get("id"), "name": c["name"], "args": c["args"], "ok": c.get("ok", False),
             "result": c.get("result"), "error": c.get("error"), "ms": c.get("ms")} for c in calls]


