"""The web UI (`northstar ui`): chat with streamed steps and evidence, chart, table, approvals, threads, data.

A thin adapter over agent/runner.py (handlers in ui/gradio_handlers.py, rendering in ui/gradio_render.py).
Runs with no network: analytics off and the Hugging Face hub offline, set here before Gradio is imported.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"

import gradio as gr  # noqa: E402

from agent.context import Context  # noqa: E402
from ui import gradio_render as R  # noqa: E402
from ui.gradio_handlers import SELECT_HINT, Handlers  # noqa: E402

LOGINS_ENV = "NORTHSTAR_UI_LOGINS"
EXAMPLES = ["How did our channels perform last month?", "Which customers are likely to churn?",
            "How should we split next month's budget across channels?", "Did the spring email test work?",
            "What are customers complaining about in reviews?", "Any anomalies in revenue recently?"]

CSS = """
#ns-header {align-items: center; gap: 12px; padding: 4px 2px 10px; border-bottom: 1px solid var(--border-color-primary);}
.ns-brand {font-size: 1.45rem; font-weight: 700; letter-spacing: -0.01em; color: var(--body-text-color);}
.ns-brand small {display: block; font-size: .85rem; font-weight: 400; color: var(--body-text-color-subdued);}
.ns-badges {display: flex; flex-wrap: wrap; gap: 6px; justify-content: flex-end;}
.ns-chip {display: inline-block; padding: 3px 10px; border-radius: 999px; font-size: .8rem; font-weight: 600;
  border: 1px solid transparent; white-space: nowrap;}
.ns-offline {background: #eef2ff; color: #3730a3; border-color: #c7d2fe;}
.ns-model {background: #ecfeff; color: #155e75; border-color: #a5f3fc;}
.ns-ok {background: #ecfdf5; color: #065f46; border-color: #a7f3d0;}
.ns-warn {background: #fffbeb; color: #92400e; border-color: #fde68a;}
.ns-role {background: #f8fafc; color: #334155; border-color: #cbd5e1;}
.ns-approver {background: #f0fdf4; color: #166534; border-color: #bbf7d0;}
.ns-tiles {display: grid; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr)); gap: 8px; margin: 2px 0 6px;}
.ns-tile {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 8px 10px;
  background: var(--block-background-fill);}
.ns-tile-v {font-size: 1.15rem; font-weight: 700; font-variant-numeric: tabular-nums; color: var(--body-text-color);}
.ns-tile-k {font-size: .75rem; color: var(--body-text-color-subdued); text-transform: uppercase; letter-spacing: .03em;}
#ns-threads .wrap {flex-direction: column; gap: 4px;}
#ns-threads label {width: 100%; font-size: .85rem;}
#ns-card {border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 6px 16px;
  background: var(--block-background-fill);}
#ns-empty {color: var(--body-text-color-subdued); font-size: .9rem; padding: 8px 2px;}
.ns-signout {margin-left: 8px; font-size: .8rem; color: var(--body-text-color-subdued);}
footer {opacity: .6;}
"""


def theme() -> gr.themes.Base:
    font = [gr.themes.LocalFont("Source Sans Pro", weights=(400, 600, 700)), "ui-sans-serif", "system-ui", "sans-serif"]
    mono = [gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate", font=font,
                          font_mono=mono, radius_size="md")


def logins_from_env(environ=None) -> dict[str, str]:
    """`NORTHSTAR_UI_LOGINS="ana:secret,ben:secret2"` turns the login page on (roles from NORTHSTAR_ROLES)."""
    raw = (environ if environ is not None else os.environ).get(LOGINS_ENV, "")
    pairs = (item.partition(":") for item in raw.split(",") if item.strip())
    return {user.strip(): pw for user, _, pw in pairs if user.strip() and pw}


def build_app(ctx: Context, *, logins: dict[str, str] | None = None) -> gr.Blocks:
    """The Blocks app bound to one home; `logins` (default: from the environment) enables the login page."""
    h = Handlers(ctx, logins_from_env() if logins is None else logins)
    provider = "offline planner" if ctx.resolved_provider == "offline" else ctx.model
    with gr.Blocks(title="Northstar", analytics_enabled=False, fill_width=True) as app:
        thread, last = gr.State(None), gr.State(None)
        with gr.Row(elem_id="ns-header", equal_height=True):
            gr.HTML("<div class='ns-brand'>✦ Northstar<small>Marketing decisions, grounded in your own "
                    "data. Nothing leaves without an approver.</small></div>")
            badge = gr.HTML(R.badge_html(provider), elem_id="ns-badge")
            with gr.Column(scale=0, min_width=230):
                user = gr.Dropdown(choices=h.users(), value=ctx.user, label="Acting as", visible=not h.logins,
                                   elem_id="ns-user", interactive=True)
                role = gr.HTML(elem_id="ns-role", visible=bool(h.logins))
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"), gr.Row():
                with gr.Column(scale=1, min_width=210):
                    new = gr.Button("+ New thread", size="sm", elem_id="ns-new")
                    threads = gr.Radio(label="Recent threads", elem_id="ns-threads",
                                       choices=h.thread_list()["choices"])
                with gr.Column(scale=4, min_width=380):
                    chat = gr.Chatbot(
                        label="Conversation", show_label=False, height=580, elem_id="ns-chat",
                        examples=[{"text": q} for q in EXAMPLES], feedback_options=None,
                        placeholder="### Ask a marketing question\nAnswers use your warehouse's numbers and "
                                    "show the evidence. Try one of these:", buttons=["copy"])
                    with gr.Row(equal_height=True):
                        msg = gr.Textbox(show_label=False, scale=6, elem_id="ns-question", autofocus=True,
                                         placeholder="Ask about campaigns, churn, segments, budgets … (you can "
                                                     "type the next question while an answer runs)")
                        send = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="ns-ask")
                        stop = gr.Button("■ Stop", variant="stop", scale=1, min_width=90, elem_id="ns-stop",
                                         visible=False)
                    queued = gr.Markdown(elem_id="ns-queued")
                with gr.Column(scale=3, min_width=320):
                    gr.Markdown("#### Result", elem_id="ns-result-title")
                    pick = gr.Dropdown(label="Result of", visible=False, interactive=True)
                    metrics = gr.HTML(elem_id="ns-metrics")
                    plot = gr.Plot(label="Chart", show_label=False, visible=False, elem_id="ns-chart")
                    table = gr.Dataframe(label="Rows (click a header to sort)", visible=False,
                                         interactive=False, max_height=330, elem_id="ns-table",
                                         show_search="search", buttons=["copy", "fullscreen"])
                    csv = gr.DownloadButton("⬇ Download CSV", visible=False, size="sm", elem_id="ns-csv")
            with gr.Tab("Approvals", id="approvals", elem_id="ns-approvals-tab") as approvals_tab:
                gr.Markdown("Actions the assistant drafted. Nothing is created, sent or changed until an "
                            "**approver** approves it; every decision is written to the audit log.")
                with gr.Row():
                    with gr.Column(scale=2, min_width=300):
                        pending = gr.Radio(elem_id="ns-pending", **{k: v for k, v in h.pending_list().items()
                                                                   if k in ("choices", "label")})
                    with gr.Column(scale=3, min_width=380):
                        card = gr.Markdown(R.pending_card(None), elem_id="ns-card")
                        args = gr.Code(label="Arguments (edit, then 'Approve with edits')", language="json",
                                       interactive=True, lines=8, elem_id="ns-args")
                        with gr.Row():
                            approve = gr.Button("✓ Approve", variant="primary", elem_id="ns-approve",
                                                interactive=False)
                            edit = gr.Button("✏ Approve with edits", elem_id="ns-edit", interactive=False)
                            reject = gr.Button("✗ Reject", variant="stop", elem_id="ns-reject", interactive=False)
                        who_hint = gr.Markdown(f"_{SELECT_HINT}_", elem_id="ns-who")
                        decision = gr.Markdown(elem_id="ns-decision")
            with gr.Tab("Data", id="data"):
                gr.Markdown("Load a CSV or Parquet file into a warehouse table. Canonical tables (customers, "
                            "orders, ad_spend, …) are validated column by column, all or nothing; any other "
                            "name creates your own table with inferred types. Same checks as `northstar load`.")
                with gr.Row():
                    with gr.Column(scale=2):
                        upload = gr.File(label="File (.csv, .tsv, .parquet, .json)", type="filepath",
                                         file_types=[".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".jsonl"],
                                         elem_id="ns-file")
                    with gr.Column(scale=2):
                        table_name = gr.Textbox(label="Table", placeholder="e.g. orders", elem_id="ns-table-name")
                        mode = gr.Radio(["append", "replace"], value="append", label="Mode")
                        load = gr.Button("Load into warehouse", variant="primary", elem_id="ns-load")
                load_out = gr.Markdown(elem_id="ns-load-out")

        outs = [chat, msg, thread, last, badge, pick, metrics, plot, table, csv, threads, pending, queued, stop]
        ask_in = [msg, chat, thread, user]
        # a message sent while an answer runs is queued by the page (not by Gradio), so these run side by side
        turn = {"concurrency_limit": None, "show_progress": "minimal", "trigger_mode": "multiple"}
        send.click(h.ask, ask_in, outs, api_name="ask", **turn)
        msg.submit(h.ask, ask_in, outs, api_visibility="private", **turn)
        chat.example_select(_example_text, None, msg, api_visibility="private").then(
            h.ask, ask_in, outs, api_visibility="private", **turn)
        stop.click(h.stop, [thread, user], [queued, stop], api_name="stop", queue=False)
        chat.clear(h.new_thread, None, outs, api_name="clear_chat", api_visibility="private")  # = a new thread
        gr.Timer(3).tick(h.refresh, [thread, chat, pending], [chat, pending, threads], api_visibility="private",
                         show_progress="hidden")
        pick.input(h.pick_result, [pick, last, thread], [pick, metrics, plot, table, csv], api_visibility="private")
        new.click(h.new_thread, None, outs, api_name="new_thread", queue=False)  # done before the next Ask
        threads.input(h.open_thread, [threads], outs, api_name="open_thread")
        whoami_out = [role, approve, edit, reject, who_hint]
        user.change(h.whoami, [user, pending], whoami_out, api_visibility="private")
        app.load(h.whoami, [user, pending], whoami_out, api_visibility="private")
        # the buttons follow the selection: a click, a decision, a refresh that found it decided elsewhere
        pending.change(h.selection_changed, [user, pending], [approve, edit, reject, who_hint, card, args],
                       api_visibility="private", show_progress="hidden", queue=False)
        app.load(h.thread_list, None, threads, api_visibility="private")
        app.load(h.pending_list, None, pending, api_visibility="private")
        approvals_tab.select(h.pending_list, [pending], pending, api_visibility="private")
        pending.input(h.show_pending, [pending], [card, args], api_visibility="private")  # not on refreshes
        dec_in = [pending, args, chat, thread, user]  # pending holds the draft's request id
        dec_out = [decision, pending, args, chat, last, threads, pick, metrics, plot, table, csv]
        approve.click(h.approve, dec_in, dec_out, api_name="approve")
        edit.click(h.edit, dec_in, dec_out, api_name="edit")
        reject.click(h.reject, dec_in, dec_out, api_name="reject")
        upload.upload(_table_from_file, [upload, table_name], table_name, api_visibility="private")
        load.click(h.upload, [upload, table_name, mode, user], load_out, api_name="load")
    app.northstar = h  # the agent behind the app, for tests and embedding
    return app


def _example_text(evt: gr.SelectData) -> str:
    value = evt.value
    return value.get("text", "") if isinstance(value, dict) else str(value)


def _table_from_file(path, current):
    if current or not path:
        return gr.skip()
    from pathlib import Path

    stem = Path(path).stem.lower()
    return "".join(ch if ch.isalnum() else "_" for ch in stem).strip("_") or gr.skip()


def launch(ctx: Context, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the UI until interrupted (no share link, no analytics, no server-side rendering); actions still waiting
    for delivery are delivered in the background meanwhile."""
    from tools import deliver_in_background

    deliver_in_background(ctx)
    logins = logins_from_env()
    app = build_app(ctx, logins=logins)
    app.queue(default_concurrency_limit=4)
    app.launch(server_name=host, server_port=port, share=False, theme=theme(), css=CSS, show_error=True,
               auth=list(logins.items()) or None, ssr_mode=False, mcp_server=False, run_history=False,
               footer_links=["api", "settings"],
               auth_message="Sign in to Northstar. Your administrator sets your role: viewer, analyst or "
                            "approver.")
