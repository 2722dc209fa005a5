"""Vega-Lite specs as plain dicts (Gradio renders them; Slack gets a PNG through vl-convert)."""

from __future__ import annotations

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


def bar(rows: list[dict], x: str, y: str, title: str, color: str | None = None, sort: str = "-y") -> dict:
    enc = {"x": {"field": x, "type": "nominal", "sort": sort, "title": x.replace("_", " ")},
           "y": {"field": y, "type": "quantitative", "title": y.replace("_", " ")},
           "tooltip": [{"field": k} for k in rows[0]] if rows else []}
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
        enc["xOffset"] = {"field": color}
    return {"$schema": SCHEMA, "title": title, "data": {"values": rows}, "mark": {"type": "bar"}, "encoding": enc,
            "width": "container"}


def line(rows: list[dict], x: str, y: str, title: str, color: str | None = None, x_type: str = "temporal") -> dict:
    enc = {"x": {"field": x, "type": x_type, "title": x.replace("_", " ")},
           "y": {"field": y, "type": "quantitative", "title": y.replace("_", " ")},
           "tooltip": [{"field": k} for k in rows[0]] if rows else []}
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
    return {"$schema": SCHEMA, "title": title, "data": {"values": rows}, "mark": {"type": "line", "point": True},
            "encoding": enc, "width": "container"}
