"""The web UI's event handlers: each calls the agent (agent/runner.py) and returns Gradio updates.

One `Handlers` per app holds one `Northstar`. Each page runs one turn at a time (later messages wait in a visible
queue, a stop button ends the running turn); pages and decisions run side by side (the warehouse gives each
request its own cursor, the runner serialises turns of one thread).
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
from ui.present import NODE_LABELS, with_article  # noqa: E402

log = logging.getLogger("northstar.ui")
SELECT_HINT = "Select a request to approve or reject."


class Handlers:
    def __init__(self, ctx: Context, logins: dict[str, str] | None = None):
        self.ctx = ctx
        self.logins = logins or {}
        self.ns = Northstar(ctx)  # turns of one thread run one at a time in the runner; pages run side by side
        self.lock = threading.RLock()
        self.pages: dict[str, dict] = {}
        self.load_lock = threading.Lock()  # uploads one at a time (a replace rewrites a table)

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

    def whoami(self, selected, rid=None, request: gr.Request = None):
        """Who is acting (their role chip), and the decision buttons for them and the request selected."""
        user = self.user_of(selected, request)
        role = self.ctx.role_of(user)
        return (R.role_html(user, role, sign_out=bool(self.logins)), *self.decision_buttons(selected, rid, request))

    def decision_buttons(self, selected, rid=None, request: gr.Request = None):
        """Approve, edit and reject are pressable only by an approver with a request selected; the hint under them
        says what is missing. Runs whenever the selection changes: a click, a decision, or a refresh that found
        the selected request decided elsewhere (a refresh that keeps the selection leaves its value alone, so this
        does not run and cannot undo a click made meanwhile). decide() still refuses without a request."""
        user = self.user_of(selected, request)
        role = self.ctx.role_of(user)
        can = role == "approver" and bool(rid)
        if role != "approver":
            hint = f"_{user} is {with_article(role)}: only an approver can decide._"
        else:
            hint = "" if rid else f"_{SELECT_HINT}_"
        button = gr.update(interactive=can)
        return button, button, button, hint

    def selection_changed(self, selected, rid=None, request: gr.Request = None):
        """The buttons for the new selection; with none left (decided here or elsewhere), the preview and the
        arguments of the request that was selected are cleared too (a click fills them: show_pending)."""
        cleared = (gr.skip(), gr.skip()) if rid else (R.pending_card(None), "")
        return (*self.decision_buttons(selected, rid, request), *cleared)

    # ---- asking: one turn at a time per page, later messages queued visibly, a stop button ----------------
    def ask(self, question, chat, thread_id, selected, request: gr.Request):
        """Stream turns: steps as they run, the answer as it streams, then evidence, chart and table. A message sent
        while a turn runs is queued (shown under the box) and runs after it, in order. Yields OUTPUTS."""
        question = (question or "").strip()
        page = self._page(request)
        if not question:
            yield self._keep(list(chat or []), queued=self._queued(page))
            return
        if page["busy"]:
            page["queue"].append(question)
            yield (*[gr.skip()] * 1, "", *[gr.skip()] * 10, self._queued(page), gr.skip())
            return
        page["busy"], page["stop"] = True, False
        try:
            while question:
                yield from self._turn(question, list(chat or []), thread_id, selected, request, page)
                chat, thread_id = page["chat"], page["thread"]
                question = page["queue"].pop(0) if page["queue"] else None
        finally:
            page["busy"] = False

    def _turn(self, question, chat, thread_id, selected, request, page):
        user = self.user_of(selected, request)
        if thread_id and not self.ns.can_open(thread_id, user):  # "Acting as" changed: a thread of their own
            thread_id, chat = None, []
        thread_id = thread_id or new_thread_id()
        page.update(thread=thread_id, chat=chat, stop=False)
        gid = f"ev-{thread_id}-{len(chat)}"
        chat.append(R.user_message(question))
        steps: list[dict] = []
        started, logline, streamed = time.monotonic(), "planning", ""
        stop = gr.update(visible=True, interactive=True)
        yield self._keep(chat + [R.evidence_parent(gid, 0, "pending", log="reading the question …")], thread_id,
                         clear=True, queued=self._queued(page), stop=stop)
        for kind, item in self._stream(lambda cb: self.ns.ask(question, thread_id, user, on_event=cb), page):
            if kind == "event":
                if item.get("event") in ("answer_delta", "answer_reset", "answer"):
                    streamed = {"answer_delta": streamed + item.get("text", ""), "answer_reset": ""}.get(
                        item["event"], item.get("text", ""))
                    logline = "writing the answer" if streamed else logline
                else:
                    logline = self._apply(item, steps, logline)
                live = [R.evidence_parent(gid, len(steps), "pending", log=logline + " …")]
                live += [R.step_message(gid, i, **s) for i, s in enumerate(steps)]
                if streamed:
                    live.append({"role": "assistant", "content": streamed + " ▍"})
                yield self._keep(chat + live, thread_id, queued=self._queued(page))
            elif kind == "error":
                page["chat"] = chat + [self._error_message(item)]
                yield self._keep(page["chat"], thread_id, clear=True, queued=self._queued(page), stop=_hidden())
                return
            elif kind == "stopped":
                page["chat"] = chat + [{"role": "assistant", "content": "⏹ Stopped. Nothing was changed; the "
                                        "conversation goes on."}]
                yield self._keep(page["chat"], thread_id, queued=self._queued(page), stop=_hidden())
                return
            else:
                chat += R.answer_messages(item, gid, time.monotonic() - started)
                page["chat"] = chat
                yield (*self._done(chat, thread_id, item, self.reader_of(request)), self._queued(page), _hidden())

    def stop(self, thread_id, selected, request: gr.Request = None):
        """Stop the page's running turn (its DuckDB query is interrupted); the thread stays usable."""
        page = self._page(request)
        page["stop"] = True
        thread_id = page.get("thread") or thread_id
        if thread_id:
            try:
                self.ns.cancel(thread_id, user=self.user_of(selected, request))
            except ApprovalError:  # not this user's thread: nothing of theirs runs there
                pass
        return self._queued(page), _hidden()

    def _page(self, request) -> dict:
        """Per-page state that must outlive one event: is a turn running, what is queued, stop pressed."""
        key = getattr(request, "session_hash", None) or "local"
        with self.lock:
            return self.pages.setdefault(key, {"busy": False, "queue": [], "stop": False, "thread": None, "chat": []})

    @staticmethod
    def _queued(page: dict) -> str:
        if not page["queue"]:
            return ""
        items = "\n".join(f"{i}. {q}" for i, q in enumerate(page["queue"], 1))
        return f"**Queued** (runs after the current answer):\n{items}"

    @staticmethod
    def _apply(ev: dict, steps: list[dict], logline: str) -> str:
        if ev.get("event") == "tool_start":
            steps.append({"name": ev["name"], "args": ev.get("args")})
            return f"running {ev['name']}"
        if ev.get("event") == "tool_end":
            for s in reversed(steps):
                if s["name"] == ev["name"] and "ok" not in s:
                    s.update(ok=bool(ev.get("ok")), ms=ev.get("ms"), summary=ev.get("summary"))
                    break
            return logline
        if ev.get("event") == "draft":
            return f"drafted {ev.get('action')} for approval"
        return NODE_LABELS.get(ev.get("name", ""), logline)

    def _stream(self, call, page: dict | None = None):
        """Run `call(on_event)` in a worker thread; yield ("event", e) … then ("done", out) or ("error", exc), or
        ("stopped", None) as soon as the page's stop is pressed (the worker ends at the turn's next step)."""
        q: queue.Queue = queue.Queue()

        def work():
            try:
                q.put(("done", call(lambda ev: q.put(("event", ev)))))
            except Exception as exc:  # shown in the chat, never swallowed silently
                if not isinstance(exc, ApprovalError | ValueError):
                    log.exception("agent call failed")
                q.put(("error", exc))

        threading.Thread(target=work, daemon=True, name="northstar-turn").start()
        while True:
            try:
                kind, item = q.get(timeout=0.2)
            except queue.Empty:
                if page is not None and page.get("stop"):
                    yield "stopped", None
                    return
                continue
            if kind == "done" and item.get("stopped"):
                kind = "stopped"
            yield kind, item
            if kind != "event":
                return

    @staticmethod
    def _error_message(exc: Exception) -> dict:
        if isinstance(exc, NotPermitted | ValueError):
            text = f"⚠ {exc}"
        elif isinstance(exc, ApprovalError):
            text = f"◆ {exc} Use the **Approvals** tab, or start a **New thread**."
        else:
            text = f"⚠ Something went wrong: {type(exc).__name__}: {exc}. Nothing was changed; you can go on."
        return {"role": "assistant", "content": text}

    # ---- outputs: chat, msg, thread, last, badge, result_dd, metrics, plot, table, csv, threads, pending,
    #      queued, stop -------------------------------------------------------------------------------------
    @staticmethod
    def _keep(chat, thread_id=None, clear=False, queued=None, stop=None):
        skip = gr.skip()
        return (chat, "" if clear else skip, thread_id if thread_id else skip, *[skip] * 9,
                skip if queued is None else queued, skip if stop is None else stop)

    def _done(self, chat, thread_id, out, reader):
        panel = self.result_panel(out, thread_id)
        badge = R.badge_html(out["provider"], out.get("fallback"), out.get("grounded"), out.get("blocked"))
        return (chat, gr.skip(), thread_id, out, badge, *panel, self.thread_list(current=thread_id, reader=reader),
                self.pending_list(reader=reader))  # the box was cleared when the turn began: keep what is typed now

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
        threads = self.ns.threads(limit=20, user=reader or self.reader_of(request))
        return gr.update(choices=R.thread_choices(threads), value=current)

    def new_thread(self, request: gr.Request = None, reader: str | None = None):
        """A new thread: the screen is cleared and the next question starts a conversation of its own."""
        reader = reader or self.reader_of(request)
        page = self._page(request)
        page.update(thread=None, chat=[])
        badge = R.badge_html("offline planner" if self.ctx.resolved_provider == "offline" else self.ctx.model)
        return ([], gr.skip(), None, None, badge, *self.result_panel(None, None), self.thread_list(reader=reader),
                self.pending_list(reader=reader), gr.skip(), gr.skip())

    def open_thread(self, thread_id, request: gr.Request = None):
        reader = self.reader_of(request)
        if not thread_id:
            return self.new_thread(request, reader=reader)
        try:
            history = self.ns.history(thread_id, user=reader)
            out = self.ns.result(thread_id, user=reader)
        except NotPermitted as exc:  # the session's thread stays as it was: none of the other user's turns
            return ([{"role": "assistant", "content": f"⚠ {exc}"}], *self.new_thread(request, reader=reader)[1:])
        chat = R.history_messages(history, out, thread_id)
        self._page(request).update(thread=thread_id, chat=chat)
        badge = R.badge_html(out["provider"], out.get("fallback"), out.get("grounded"), out.get("blocked"))
        return (chat, "", thread_id, out, badge, *self.result_panel(out, thread_id), gr.skip(),
                self.pending_list(reader=reader), gr.skip(), gr.skip())

    def refresh(self, thread_id, chat, selected_rid=None, request: gr.Request = None):
        """Every few seconds: outcomes of decisions posted into this page's thread since it was drawn (an approver
        elsewhere approved or rejected a draft), the approvals list and the threads' ◆ marks."""
        page, reader, skip = self._page(request), self.reader_of(request), gr.skip()
        if page["busy"] or not thread_id:
            return skip, self.pending_list(reader=reader, keep=selected_rid, periodic=True), skip
        try:
            history = self.ns.history(thread_id, user=reader)
        except NotPermitted:
            return skip, skip, skip
        shown = [str(m.get("content") or "") for m in chat or []]
        new = [m for m in history if m["role"] == "assistant" and "(request `" in m["content"]
               and m["content"][:1] in "✓✗↩◷" and not any(m["content"] in text for text in shown)]
        if not new:
            return skip, self.pending_list(reader=reader, keep=selected_rid, periodic=True), skip
        chat = list(chat or []) + [outcome_message(m["content"]) for m in new]
        page["chat"] = chat
        return chat, self.pending_list(reader=reader, keep=selected_rid, periodic=True), self.thread_list(current=thread_id, reader=reader)

    # ---- approvals: the inbox, one entry per draft ---------------------------------------------------------
    def pending_list(self, request: gr.Request = None, keep: str | None = None, reader: str | None = None,
                     periodic: bool = False):
        """The approvals list. A periodic refresh leaves the selection to the page (a request clicked while the
        refresh ran stays selected) unless the request it saw selected has been decided elsewhere."""
        rows = self.ns.inbox(user=reader or self.reader_of(request))
        present = any(p["id"] == keep for p in rows)
        value = {} if periodic and (keep is None or present) else {"value": keep if present else None}
        return gr.update(choices=[(R.pending_label(p), p["id"]) for p in rows], **value,
                         label=f"Waiting for a decision ({len(rows)})")

    def show_pending(self, rid, request: gr.Request = None):
        rows = self.ns.inbox(user=self.reader_of(request))
        p = next((r for r in rows if rid in (r["id"], r["thread_id"])), None)
        args = json.dumps(p["args"], indent=2, ensure_ascii=False) if p else ""
        return R.pending_card(p), args

    def approve(self, rid, args_json, chat, current, selected, request: gr.Request):
        return self.decide("approve", rid, args_json, chat, current, selected, request)

    def edit(self, rid, args_json, chat, current, selected, request: gr.Request):
        return self.decide("edit", rid, args_json, chat, current, selected, request)

    def reject(self, rid, args_json, chat, current, selected, request: gr.Request):
        return self.decide("reject", rid, args_json, chat, current, selected, request)

    def decide(self, decision, rid, args_json, chat, current, selected, request: gr.Request | None):
        """Approve, edit or reject one draft; the outcome goes to the approvals panel and into its thread."""
        user = self.user_of(selected, request)
        skip = gr.skip()
        if not rid:  # the buttons are off until a request is selected; a direct API call still gets told
            return ("✗ No request is selected: select one in the list on the left, then approve or reject it.",
                    *[skip] * 10)
        args = None
        if decision == "edit":
            try:
                args = json.loads(args_json or "{}")
            except json.JSONDecodeError as exc:
                return (f"✗ The arguments are not valid JSON: {exc}", *[skip] * 10)
        try:
            out = self.ns.decide(rid, decision, user=user, args=args)
        except ApprovalError as exc:
            return (f"✗ {exc}", skip, *[skip] * 9)  # a refusal changes nothing, the list included
        note, reader = R.decision_note(decision, user), self.reader_of(request)
        card = f"{note}{out['outcome']}"
        if out["thread_id"] == current:
            chat = list(chat or []) + [outcome_message(out["outcome"])]
            self._page(request)["chat"] = chat
            return (card, self.pending_list(reader=reader), "", chat, out,
                    self.thread_list(current=current, reader=reader), *self.result_panel(out, current))
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
            with self.load_lock:
                con = connect(self.ctx.warehouse_path)
                try:
                    report = asdict(load_file(con, table, path, mode or "append", user=user, refusal=refusal))
                finally:
                    con.close()
        except (LoadError, WarehouseError) as exc:
            text = web_wording(exc)
            return "✗ " + (text if "nothing was loaded" in text.lower() else "**Nothing was loaded.** " + text)
        from agent.runner import names_changed

        names_changed()  # a new table: the planner knows it on the next turn
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


def _hidden():
    return gr.update(visible=False)


def outcome_message(outcome: str) -> dict:
    """A decision's outcome in the chat, set apart from the answer before it (consecutive answers share a bubble)."""
    return {"role": "assistant", "content": "---\n\n" + outcome}
