"""Charts that fit: in headless Chromium, every chart (the vega-embed SVG and every text in it: title, axis labels,
legend) lies inside its panel at 1440 px and at 420 px, the y-axis is there at 420 px, titles are whole, CLV
deciles read D1 … D10, and the header badges stay on a 420 px screen.

The real server (ui.gradio_app.launch) on 127.0.0.1, on a port from 8800–8849 (a range kept free for this test on
shared machines), the demo warehouse, the real offline agent. One question per chart at 1440 px; the window is
then narrowed to 420 px and the same chart must re-fit (Vega's container autosize).
"""

from __future__ import annotations

import time

from tests.ui import test_gradio_app
from tests.ui.test_browser import ARGS, ensure_chromium
from tests.ui.test_gradio_app import free_port_in, gradio_server

PORTS = range(8800, 8850)
CHARTS = [  # question, the chart's title
    ("How should next month's budget move across channels?", "Budget over 30 days"),
    ("Which channels really drive conversions?", "Attributed conversions by channel"),
    ("Predict customer lifetime value", "Predicted CLV by customer decile"),
]
SLACK = 1.0  # px of rounding allowed at an edge

GEOMETRY = """() => {
  const box = e => { const r = e.getBoundingClientRect();
                     return {x: r.x, y: r.y, right: r.right, bottom: r.bottom, width: r.width, height: r.height}; };
  const panel = document.querySelector('#ns-chart');
  const svg = panel.querySelector('.vega-embed svg');
  const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim())
                 .map(t => ({text: t.textContent, ...box(t)}));
  const axes = [...svg.querySelectorAll('[aria-roledescription="axis"]')].map(a => a.getAttribute('aria-label'));
  return {panel: box(panel), svg: box(svg), texts, axes, viewport: window.innerWidth};
}"""


CHIPS = """() => [...document.querySelectorAll('#ns-badge .ns-chip')].map(c => {
  const r = c.getBoundingClientRect();
  const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
  return {text: c.textContent, x: r.x, right: r.right, scrollWidth: c.scrollWidth, clientWidth: c.clientWidth,
          seen: !!hit && c.contains(hit)};
})"""


def port_in_range() -> int:
    return free_port_in(PORTS)


def inside(inner: dict, outer: dict) -> bool:
    return (inner["x"] >= outer["x"] - SLACK and inner["y"] >= outer["y"] - SLACK
            and inner["right"] <= outer["right"] + SLACK and inner["bottom"] <= outer["bottom"] + SLACK)


def assert_fits(geo: dict, title: str, width: int) -> None:
    where = f"{title!r} at {width} px"
    assert geo["svg"]["width"] > 200 and geo["svg"]["height"] > 150, f"{where}: the chart collapsed: {geo['svg']}"
    assert inside(geo["svg"], geo["panel"]), f"{where}: chart {geo['svg']} outside its panel {geo['panel']}"
    assert geo["panel"]["right"] <= geo["viewport"] + SLACK, f"{where}: panel {geo['panel']} wider than the screen"
    cut = [t for t in geo["texts"] if not inside(t, geo["svg"])]
    assert not cut, f"{where}: text cut at the chart's edge: {[(t['text'], t['x'], t['right']) for t in cut]}"
    shown = " ".join(t["text"] for t in geo["texts"])
    assert title in shown or all(w in shown for w in title.split()), f"{where}: title not whole: {shown[:200]}"
    assert any(a.startswith("Y-axis") for a in geo["axes"]), f"{where}: no y-axis: {geo['axes']}"
    assert any(a.startswith("X-axis") for a in geo["axes"]), f"{where}: no x-axis: {geo['axes']}"


def x_labels(geo: dict) -> list[str]:
    """The x-axis categories in the order drawn (left to right)."""
    axis_top = max(t["y"] for t in geo["texts"] if t["text"].startswith("D1"))
    labels = [t for t in geo["texts"] if abs(t["y"] - axis_top) < 12 and t["text"].startswith("D")]
    return [t["text"] for t in sorted(labels, key=lambda t: t["x"])]


def fitted(page, width: int) -> dict:
    """Resize the window and wait until the chart has re-fitted (its SVG no wider than the panel)."""
    page.set_viewport_size({"width": width, "height": 980})
    deadline = time.monotonic() + 20
    while True:
        page.locator("#ns-chart").scroll_into_view_if_needed()
        geo = page.evaluate(GEOMETRY)
        if geo["svg"]["width"] <= geo["panel"]["width"] + SLACK or time.monotonic() > deadline:
            time.sleep(0.3)  # one more frame for the labels
            return page.evaluate(GEOMETRY)
        time.sleep(0.25)


def test_charts_fit_their_panel_at_1440_and_420_px(demo_copy, tmp_path, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    executable = ensure_chromium()
    monkeypatch.setattr(test_gradio_app, "free_port", port_in_range)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with gradio_server(demo_copy, env={"NORTHSTAR_USER": "ana"}) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(executable), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 980})
        page.set_default_timeout(120_000)
        expect.set_options(timeout=120_000)
        try:
            page.goto(url)
            for i, (question, title) in enumerate(CHARTS):
                page.set_viewport_size({"width": 1440, "height": 980})
                page.locator("#ns-new").click()
                expect(page.get_by_text("Ask a marketing question")).to_be_visible()  # the new thread is drawn
                page.locator("#ns-question textarea").fill(question)
                page.locator("#ns-ask").click()
                first_word = title.split()[0]
                expect(page.locator("#ns-chart svg text").filter(has_text=first_word).first).to_be_attached()
                for width in (1440, 420):
                    geo = fitted(page, width)
                    page.locator("#ns-chart").screenshot(path=shots / f"chart-{i}-{width}.png")
                    assert_fits(geo, title, width)
                    if "decile" in title:
                        wanted = [f"D{k}" for k in range(1, 11)]
                        assert x_labels(geo) == wanted, f"deciles out of order at {width} px: {x_labels(geo)}"
                        axis = next(a for a in geo["axes"] if a.startswith("X-axis"))
                        assert "values: D1, D2, D3, D4, D5" in axis and axis.endswith("D10"), axis
            # the header at 420 px: every badge on the screen, none cut
            page.set_viewport_size({"width": 420, "height": 980})
            page.evaluate("window.scrollTo(0, 0)")
            time.sleep(0.5)
            page.screenshot(path=shots / "header-420.png")
            chips = page.evaluate(CHIPS)
            assert chips, "no badge in the header"
            for chip in chips:  # on the screen, not cut, and not covered by the user picker
                assert chip["x"] >= 0 and chip["right"] <= 420 + SLACK, chip
                assert chip["scrollWidth"] <= chip["clientWidth"] + 1 and chip["seen"], chip
        except Exception:
            page.screenshot(path=shots / "failure.png", full_page=True)
            print(f"failure screenshot: {shots / 'failure.png'}")
            raise
        finally:
            browser.close()


# ---- the specs themselves (no browser) -------------------------------------------------------------------------
def test_categorical_axes_keep_their_natural_order():
    from tools import charts

    rows = [{"decile": f"D{k}", "clv": 100 - k} for k in (1, 10, 2, 9, 3, 4, 5, 6, 7, 8)]
    assert charts.bar(rows, "decile", "clv", "t", sort="x")["encoding"]["x"]["sort"] == [f"D{k}" for k in range(1, 11)]
    assert charts.bar(rows, "decile", "clv", "t")["encoding"]["x"]["sort"] == "-y"  # tallest first by default
    weeks = [{"week": w, "n": 1} for w in ("week 10", "week 9", "Week 1")]
    assert charts.category_order(weeks, "week") == ["Week 1", "week 9", "week 10"]
    split = charts.bar([{"c": "a", "v": 1, "s": "current"}, {"c": "a", "v": 2, "s": "recommended"}], "c", "v", "t",
                       color="s")
    assert split["encoding"]["color"]["sort"] == ["current", "recommended"] == split["encoding"]["xOffset"]["sort"]


def test_styled_spec_fits_its_container_with_the_legend_below_and_a_whole_title():
    from tools import charts
    from ui.present import LEGEND_ROOM, styled_spec

    title = "Attributed conversions by channel and by model over the last ninety days"
    spec = charts.bar([{"c": "a", "v": 1, "m": "x"}], "c", "v", title, color="m")
    web = styled_spec(spec, width="container")
    assert web["width"] == "container" and web["autosize"] == {"type": "fit", "contains": "padding", "resize": True}
    assert web["height"] == 240 + LEGEND_ROOM and web["config"]["legend"]["orient"] == "bottom"
    lines = web["title"]["text"]
    assert isinstance(lines, list) and " ".join(lines) == title and all(len(line) <= 44 for line in lines)
    assert web["config"]["title"]["limit"] == 0  # never an ellipsis
    assert web["usermeta"]["embedOptions"]["renderer"] == "svg"
    assert spec["title"] == title  # the tool's spec is left as it was (Slack names the PNG after it)


def test_the_same_spec_renders_as_a_png_for_slack_at_a_fixed_width():
    import io

    import vl_convert
    from PIL import Image

    from tools import charts
    from ui.present import styled_spec

    rows = [{"channel": c, "budget": b, "split": s} for c, b in (("search", 41000), ("email", 3900))
            for s in ("current", "recommended")]
    spec = charts.bar(rows, "channel", "budget", "Budget over 30 days", color="split")
    png = vl_convert.vegalite_to_png(styled_spec(spec, width=640, height=320), scale=1)
    width, height = Image.open(io.BytesIO(png)).size
    assert width == 640 and 320 < height <= 400, (width, height)  # the legend below, inside the width
    svg = vl_convert.vegalite_to_svg(styled_spec(spec, width=640, height=320))
    assert "Budget over 30 days" in svg and "recommended" in svg
