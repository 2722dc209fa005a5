"""Vega-Lite specs as plain dicts (Gradio renders them; Slack gets a PNG through vl-convert).

A tool's spec says what to draw; `ui/present.styled_spec` decides how big, for the place it is shown: the web UI
fits it to its panel (`width: "container"`), Slack renders it at a fixed size. Categorical axes keep a stated
order: `sort="x"` means the categories' natural order (D1, D2 … D10, not D1, D10, D2), written out as a list so
every renderer draws the same.
"""

from __future__ import annotations

import re

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
DIGITS = re.compile(r"(\d+(?:\.\d+)?)")


def natural_key(value) -> tuple:
    """Sort key that reads numbers inside labels as numbers: D2 < D10, "week 9" < "week 10"."""
    parts = DIGITS.split(str(value))
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p.lower()) for i, p in enumerate(parts))


def category_order(rows: list[dict], field: str) -> list:
    """The distinct values of `field` in natural order."""
    return sorted(dict.fromkeys(r.get(field) for r in rows if r.get(field) is not None), key=natural_key)


def bar(rows: list[dict], x: str, y: str, title: str, color: str | None = None, sort: str | list = "-y") -> dict:
    """Bars of `y` per `x`; `sort` is "-y" (tallest first), "x" (natural order of the labels) or a list."""
    order = category_order(rows, x) if sort == "x" else sort
    enc = {"x": {"field": x, "type": "nominal", "sort": order, "title": x.replace("_", " ")},
           "y": {"field": y, "type": "quantitative", "title": y.replace("_", " ")},
           "tooltip": [{"field": k} for k in rows[0]] if rows else []}
    if color:  # the series in the order the tool wrote them (current before recommended, models as listed)
        series = list(dict.fromkeys(r.get(color) for r in rows if r.get(color) is not None))
        enc["color"] = {"field": color, "type": "nominal", "sort": series}
        enc["xOffset"] = {"field": color, "sort": series}
    return {"$schema": SCHEMA, "title": title, "data": {"values": rows}, "mark": {"type": "bar"}, "encoding": enc,
            "width": "container"}


def line(rows: list[dict], x: str, y: str, title: str, color: str | None = None, x_type: str = "temporal") -> dict:
    enc = {"x": {"field": x, "type": x_type, "title": x.replace("_", " ")},
           "y": {"field": y, "type": "quantitative", "title": y.replace("_", " ")},
           "tooltip": [{"field": k} for k in rows[0]] if rows else []}
    if x_type in ("nominal", "ordinal"):
        enc["x"]["sort"] = category_order(rows, x)
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
    return {"$schema": SCHEMA, "title": title, "data": {"values": rows}, "mark": {"type": "line", "point": True},
            "encoding": enc, "width": "container"}
