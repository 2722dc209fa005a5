"""The web UI's event handlers: each calls the agent (agent/runner.py) and returns Gradio updates.

One `Handlers` per app holds one `Northstar`. Turns, decisions and uploads are serialised by a lock: DuckDB
takes one writer at a time and a marketing team's questions take seconds, not minutes.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # also set by ui/gradio_app.py; whichever loads first
os.environ["HF_HUB_OFFLINE"] = "1"

import gradio as gr  # noqa: E402

from agent.context import LOCAL_USER, Context  # noqa: E402
from agent.runner import ApprovalError, Northstar, NotPermitted, new_thread_id  # noqa: E402
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

    def reader_of(self, request: gr.Request | None) -> str:
        """Whose threads and pending requests the page lists and opens: the logged-in user's own (an approver also
        sees every pending request). Without a login the "Acting as" selector is no boundary (one person at their
        own machine): the page shows every thread, as the local CLI does."""
        return self.user_of(None, request) if self.logins else LOCAL_USER

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
        if thread_id:
            with self.lock:
                if not self.ns.can_open(thread_id, user):  # "Acting as" changed: the new user gets a thread of their own
                    thread_id, chat = None, []
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
                yield self._done(chat, thread_id, out, self.reader_of(request))

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
        if isinstance(exc, NotPermitted):
            text = f"⚠ {exc}"
        elif isinstance(exc, ApprovalError):
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

    def _done(self, chat, thread_id, out, reader):
        panel = self.result_panel(out, thread_id)
        badge = R.badge_html(out["provider"], out.get("fallback"), out.get("grounded"), out.get("blocked"))
        return (chat, "", thread_id, out, badge, *panel, self.thread_list(current=thread_id, reader=reader),
                self.pending_list(reader=reader))

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

    # ---- threads: each user sees and opens their own; approvers see every pending request, not the chat ----
    # Gradio passes the request in place of a parameter annotated gr.Request, inserted at that parameter's
    # position among the event's inputs: it comes first where an event may pass fewer inputs (app.load).
    def thread_list(self, request: gr.Request = None, current: str | None = None, reader: str | None = None):
        with self.lock:
            threads = self.ns.threads(limit=20, user=reader or self.reader_of(request))
        return gr.update(choices=R.thread_choices(threads), value=current)

    def new_thread(self, request: gr.Request = None, reader: str | None = None):
        reader = reader or self.reader_of(request)
        badge = R.badge_html("offline planner" if self.ctx.resolved_provider == "offline" else self.ctx.model)
        return ([], gr.skip(), None, None, badge, *self.result_panel(None, None), self.thread_list(reader=reader),
                self.pending_list(reader=reader))

    def open_thread(self, thread_id, request: gr.Request = None):
        reader = self.reader_of(request)
        if not thread_id:
            return self.new_thread(reader=reader)
        try:
            with self.lock:
                history = self.ns.history(thread_id, user=reader)
                out = self.ns.result(thread_id, user=reader)
        except NotPermitted as exc:  # the session's thread stays as it was: none of the other user's turns
            return ([{"role": "assistant", "content": f"⚠ {exc}"}], *self.new_thread(reader=reader)[1:])
        chat = R.history_messages(history, out, thread_id)
        badge = R.badge_html(out["provider"], out.get("fallback"), out.get("grounded"), out.get("blocked"))
        return (chat, "", thread_id, out, badge, *self.result_panel(out, thread_id), gr.skip(),
                self.pending_list(reader=reader))

    # ---- approvals -------------------------------------------------------------------------------------
    def pending_list(self, request: gr.Request = None, keep: str | None = None, reader: str | None = None):
        with self.lock:
            rows = self.ns.pending(user=reader or self.reader_of(request))
        value = keep if any(p["thread_id"] == keep for p in rows) else None
        return gr.update(choices=[(R.pending_label(p), p["thread_id"]) for p in rows], value=value,
                         label=f"Waiting for a decision ({len(rows)})")

    def show_pending(self, thread_id, request: gr.Request = None):
        with self.lock:
            rows = self.ns.pending(user=self.reader_of(request))
        p = next((r for r in rows if r["thread_id"] == thread_id), None)
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
            return (f"✗ {exc}", skip, *[skip] * 9)  # a refusal changes nothing, the list included
        note, reader = R.decision_note(decision, user), self.reader_of(request)
        msgs = R.answer_messages(out, f"ev-{thread_id}-d{len(chat or [])}", prefix=note)
        card = f"{note}{R.answer_text(out, R.WHERE)}"
        if thread_id == current:
            return (card, self.pending_list(reader=reader), "", list(chat or []) + msgs, out,
                    self.thread_list(current=current, reader=reader), *self.result_panel(out, thread_id))
        return (card, self.pending_list(reader=reader), "", skip, skip, self.thread_list(current=current, reader=reader),
                *[skip] * 5)

    # ---- data upload -----------------------------------------------------------------------------------
    def upload(self, path, table, mode, selected, request: gr.Request) -> str:
        from dataclasses import asdict

        from tools.warehouse import LoadError, WarehouseError, connect, load_file

        user = self.user_of(selected, request)
        refusal = self.ctx.refusal(user, "load")  # the loader audits it and refuses
        if not refusal and not path:
            return "✗ Choose a CSV or Parquet file first."
        table = (table or "").strip()
        if not refusal and not table:
            return "✗ Name the table to load into (e.g. `orders`, or a new name for your own data)."
        try:
            with self.lock:
                con = connect(self.ctx.warehouse_path)
                try:
                    report = asdict(load_file(con, table, path, mode or "append", user=user, refusal=refusal))
                finally:
                    con.close()
        except (LoadError, WarehouseError) as exc:
            text = web_wording(exc)
            return "✗ " + (text if "nothing was loaded" in text.lower() else "**Nothing was loaded.** " + text)
        kind = "validated against the schema" if report["canonical"] else "new table, types inferred"
        lines = [f"✓ **Loaded {report['rows_in_file']:,} rows into `{report['table']}`** ({kind}); "
                 f"{report['rows_before']:,} → {report['rows_after']:,} rows."]
        lines += [f"- ⚠ {web_wording(w)}" for w in report["warnings"]]
        return "\n".join(lines)


# The loader speaks `northstar load`'s flags; the upload panel has a table name and a Mode (append / replace),
# no date-format, date-window, header or columns option: say what the file must look like instead.
WEB_WORDS = [
    (re.compile(r"\s*\((?:or )?(?:pass |use )?--date-format\b[^)]*\)"),
     " (year-month-day; the upload reads no other date format, so convert the column in your spreadsheet)"),
    (re.compile(r"(?:pass |use |with )?--date-format(?:[ =]'[^']*'|[ =]\S+)?"),
     "dates written as year-month-day, like 2025-03-31"),
    (re.compile(r"--date-window FROM\.\.TO for `northstar load`, or (\S+?)\.?$", re.M),
     r"ask whoever runs Northstar to set \1."),
    (re.compile(r"[Uu]se --mode replace\b"), "Choose **replace** under Mode"),
    (re.compile(r"--mode replace\b"), "**replace** under Mode"),
    (re.compile(r"--mode\b"), "Mode"),
    (re.compile(r"\s*\(or data, with --no-header\)"), ""),
    (re.compile(r",? or pass --no-header\s*/\s*--columns"), "; the first line must hold the column names"),
]


def web_wording(error) -> str:
    """A loader message in the upload panel's words, in Markdown: every problem it lists as a list item."""
    text = str(error)
    for pattern, words in WEB_WORDS:
        text = pattern.sub(words, text)
    blocks: list[str] = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        if line.startswith("- ") and blocks and blocks[-1].startswith("- "):
            blocks[-1] += "\n" + line  # the rows stay one list
        else:
            blocks.append(line)
    return "\n\n".join(blocks)
