"""The web UI's event handlers: each calls the agent (agent/runner.py) and returns Gradio updates.

One `Handlers` per app holds one `Northstar`. Turns, decisions and uploads are serialised by a lock: DuckDB
takes one writer at a time and a marketing team's questions take seconds, not minutes.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # also set by ui/gradio_app.py; whichever loads first
os.environ["HF_HUB_OFFLINE"] = "1"

import gradio as gr  # noqa: E402

from agent.context import Context  # noqa: E402
from agent.runner import ApprovalError, Northstar, new_thread_id  # noqa: E402
from ui import gradio_render as R  # noqa: E402
from ui.present import NODE_LABELS  # noqa: E402

log = logging.getLogger("northstar.ui")


class Handlers:
    def __init__(self, ctx: Context, logins: dict[str, str] | None = None):
        self.ctx = ctx
        self.logins = logins or {}
        self.ns = Northstar(ctx)
        self.lock = threading.RLock()

    # ---- who is acting ---------------------------------------------------------------------------------
    def user_of(self, selected: str | None, request: gr.Request | None) -> str:
        """The logged-in user when login is on, else the one chosen in the selector."""
        if self.logins:
            return (getattr(request, "username", None) or "").strip() or "anonymous"
        return selected or self.ctx.user

    def users(self) -> list[tuple[str, str]]:
        names = dict.fromkeys([self.ctx.user, *self.ctx.roles])
        return [(f"{u} ({self.ctx.role_of(u)})", u) for u in names]

    def whoami(self, selected, request: gr.Request):
        user = self.user_of(selected, request)
        role = self.ctx.role_of(user)
        can = role == "approver"
        hint = "" if can else f"\n\n_{user} is a {role}: only an approver can decide._"
        return (R.role_html(user, role, sign_out=bool(self.logins)), gr.update(interactive=can), gr.update(interactive=can),
                gr.update(interactive=can), hint)

    # ---- asking ----------------------------------------------------------------------------------------
    def ask(self, question, chat, thread_id, selected, request: gr.Request):
        """Stream one turn: steps as they run, then evidence, answer, chart and table. Yields OUTPUTS."""
        question = (question or "").strip()
        chat = list(chat or [])
        if not question:
            yield self._keep(chat)
            return
        user = self.user_of(selected, request)
        thread_id = thread_id or new_thread_id()
        gid = f"ev-{thread_id}-{len(chat)}"
        chat.append(R.user_message(question))
        steps: list[dict] = []
        started = time.monotonic()
        logline = "planning"
        yield self._keep(chat + [R.evidence_parent(gid, 0, "pending", log="reading the question …")], thread_id,
                         clear=True)
        for kind, item in self._stream(lambda cb: self.ns.ask(question, thread_id, user, on_event=cb)):
            if kind == "event":
                logline = self._apply(item, steps, logline)
                live = [R.evidence_parent(gid, len(steps), "pending", log=logline + " …")]
                live += [R.step_message(gid, i, **s) for i, s in enumerate(steps)]
                yield self._keep(chat + live, thread_id)
            elif kind == "error":
                yield self._keep(chat + [self._error_message(item)], thread_id, clear=True)
                return
            else:
                out = item
                chat += R.answer_messages(out, gid, time.monotonic() - started)
                yield self._done(chat, thread_id, out)

    @staticmethod
    def _apply(ev: dict, steps: list[dict], logline: str) -> str:
        if ev.get("event") == "tool_start":
            steps.append({"name": ev["name"], "args": ev.get("args")})
            return f"running {ev['name']}"
        if ev.get("event") == "tool_end":
            for s in reversed(steps):
                if s["name"] == ev["name"] and "ok" not in s:
                    s.update(ok=bool(ev.get("ok")), ms=ev.get("ms"))
                    break
            return logline
        return NODE_LABELS.get(ev.get("name", ""), logline)

    def _stream(self, call):
        """Run `call(on_event)` in a worker thread; yield ("event", e) … then ("done", out) or ("error", exc)."""
        q: queue.Queue = queue.Queue()

        def work():
            with self.lock:
                try:
                    q.put(("done", call(lambda ev: q.put(("event", ev)))))
                except Exception as exc:  # shown in the chat, never swallowed silently
                    if not isinstance(exc, ApprovalError | ValueError):
                        log.exception("agent call failed")
                    q.put(("error", exc))

        threading.Thread(target=work, daemon=True, name="northstar-turn").start()
        while True:
            kind, item = q.get()
            yield kind, item
            if kind != "event":
                return

    @staticmethod
    def _error_message(exc: Exception) -> dict:
        if isinstance(exc, ApprovalError):
            text = f"◆ {exc} Use the **Approvals** tab, or start a **New thread**."
        elif isinstance(exc, ValueError):
            text = f"⚠ {exc}"
        else:
            text = f"⚠ Something went wrong: {type(exc).__name__}: {exc}. Nothing was changed."
        return {"role": "assistant", "content": text}

    # ---- outputs: chat, msg, thread, last, badge, result_dd, metrics, plot, table, csv, threads, pending ---
    @staticmethod
    def _keep(chat, thread_id=None, clear=False):
        skip = gr.skip()
        return (chat, "" if clear else skip, thread_id if thread_id else skip, *[skip] * 9)

    def _done(self, chat, thread_id, out):
        panel = self.result_panel(out, thread_id)
        badge = R.badge_html(out["provider"], out.get("fallback"), out.get("grounded"), out.get("blocked"))
        return (chat, "", thread_id, out, badge, *panel, self.thread_list(thread_id), self.pending_list())

    def result_panel(self, out: dict | None, thread_id: str | None, idx: int | None = None):
        choices = R.result_choices(out)
        if idx is None:
            idx = R.default_choice(out)
        calls = (out or {}).get("tool_calls") or []
        call = calls[idx] if idx is not None and 0 <= idx < len(calls) else None
        chart = R.chart_of(call)
        df = R.table_of(call)
        csv = R.csv_of(call, thread_id)
        return (gr.update(choices=choices, value=idx, visible=len(choices) > 1), R.metrics_html(call),
                gr.update(value=chart, visible=chart is not None),
                gr.update(value=R.display_table(df), visible=not df.empty),
                gr.update(value=csv, visible=csv is not None))

    def pick_result(self, idx, out, thread_id):
        return self.result_panel(out, thread_id, idx)

    # ---- threads ---------------------------------------------------------------------------------------
    def thread_list(self, current: str | None = None):
        with self.lock:
            threads = self.ns.threads(limit=20)
        return gr.update(choices=R.thread_choices(threads), value=current)

    def new_thread(self):
        badge = R.badge_html("offline planner" if self.ctx.resolved_provider == "offline" else self.ctx.model)
        return ([], gr.skip(), None, None, badge, *self.result_panel(None, None), self.thread_list(None),
                self.pending_list())

    def open_thread(self, thread_id):
        if not thread_id:
            return self.new_thread()
        with self.lock:
            history = self.ns.history(thread_id)
            out = self.ns.result(thread_id)
        chat = R.history_messages(history, out, thread_id)
        badge = R.badge_html(out["provider"], out.get("fallback"), out.get("grounded"), out.get("blocked"))
        return (chat, "", thread_id, out, badge, *self.result_panel(out, thread_id), gr.skip(),
                self.pending_list())

    # ---- approvals -------------------------------------------------------------------------------------
    def pending_list(self, keep: str | None = None):
        with self.lock:
            rows = self.ns.pending()
        value = keep if any(p["thread_id"] == keep for p in rows) else None
        return gr.update(choices=[(R.pending_label(p), p["thread_id"]) for p in rows], value=value,
                         label=f"Waiting for a decision ({len(rows)})")

    def show_pending(self, thread_id):
        with self.lock:
            p = next((r for r in self.ns.pending() if r["thread_id"] == thread_id), None)
        args = json.dumps(p["args"], indent=2, ensure_ascii=False) if p else ""
        return R.pending_card(p), args

    def approve(self, thread_id, args_json, chat, current, selected, request: gr.Request):
        return self.decide("approve", thread_id, args_json, chat, current, selected, request)

    def edit(self, thread_id, args_json, chat, current, selected, request: gr.Request):
        return self.decide("edit", thread_id, args_json, chat, current, selected, request)

    def reject(self, thread_id, args_json, chat, current, selected, request: gr.Request):
        return self.decide("reject", thread_id, args_json, chat, current, selected, request)

    def decide(self, decision, thread_id, args_json, chat, current, selected, request: gr.Request | None):
        """Approve, edit or reject; the outcome goes to the approvals panel and into the thread's chat."""
        user = self.user_of(selected, request)
        skip = gr.skip()
        if not thread_id:
            return ("Select a request first.", *[skip] * 10)
        args = None
        if decision == "edit":
            try:
                args = json.loads(args_json or "{}")
            except json.JSONDecodeError as exc:
                return (f"✗ The arguments are not valid JSON: {exc}", *[skip] * 10)
        try:
            with self.lock:
                out = self.ns.decide(thread_id, decision, user=user, args=args)
        except ApprovalError as exc:
            return (f"✗ {exc}", self.pending_list(thread_id), *[skip] * 9)
        note = R.decision_note(decision, user)
        msgs = R.answer_messages(out, f"ev-{thread_id}-d{len(chat or [])}", prefix=note)
        card = f"{note}{R.answer_text(out, R.WHERE)}"
        if thread_id == current:
            return (card, self.pending_list(), "", list(chat or []) + msgs, out, self.thread_list(current),
                    *self.result_panel(out, thread_id))
        return (card, self.pending_list(), "", skip, skip, self.thread_list(current), *[skip] * 5)

    # ---- data upload -----------------------------------------------------------------------------------
    def upload(self, path, table, mode, selected, request: gr.Request) -> str:
        from dataclasses import asdict

        from tools.warehouse import LoadError, WarehouseError, connect, load_file

        user = self.user_of(selected, request)
        if self.ctx.role_of(user) == "viewer":
            return f"✗ {user} is a viewer; loading data needs the analyst or approver role."
        if not path:
            return "✗ Choose a CSV or Parquet file first."
        table = (table or "").strip()
        if not table:
            return "✗ Name the table to load into (e.g. `orders`, or a new name for your own data)."
        try:
            with self.lock:
                con = connect(self.ctx.warehouse_path)
                try:
                    report = asdict(load_file(con, table, path, mode or "append"))
                finally:
                    con.close()
        except (LoadError, WarehouseError) as exc:
            return f"✗ **Nothing was loaded.** {exc}"
        kind = "validated against the schema" if report["canonical"] else "new table, types inferred"
        lines = [f"✓ **Loaded {report['rows_in_file']:,} rows into `{table}`** ({kind}); "
                 f"{report['rows_before']:,} → {report['rows_after']:,} rows."]
        lines += [f"- ⚠ {w}" for w in report["warnings"]]
        return "\n".join(lines)
