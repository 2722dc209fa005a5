"""The HTML report of an eval run: pass rates, each failure with expected vs what happened, latency."""

from __future__ import annotations

import html
import json


def render(result: dict) -> str:
    rows, details = [], []
    for s in result["suites"]:
        ok = s["pass_rate"] >= s["threshold"]
        rows.append(f"<tr class={'ok' if ok else 'bad'}><td>{html.escape(s['name'])}</td><td>{s['passed']}/{s['cases']}"
                    f"</td><td>{100 * s['pass_rate']:.1f} %</td><td>{100 * s['threshold']:.0f} %</td>"
                    f"<td>{'pass' if ok else 'FAIL'}</td></tr>")
        for f in s["failures"]:
            details.append(f"<tr><td>{html.escape(s['name'])}</td><td><code>{html.escape(f['id'])}</code></td>"
                           f"<td>{html.escape(str(f.get('question', '')))}</td>"
                           f"<td><code>{html.escape(json.dumps(f.get('expected'), default=str))}</code></td>"
                           f"<td>{html.escape(f['why'])}</td></tr>")
    lat = result.get("latency_ms") or {}
    failures = ("<table><tr><th>suite</th><th>case</th><th>question</th><th>expected</th><th>what happened</th></tr>"
                + "".join(details) + "</table>") if details else "<p>No failures.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Northstar eval report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2937}} table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #d1d5db;padding:.35rem .6rem;text-align:left;vertical-align:top}} tr.ok td:last-child{{color:#047857}}
tr.bad td:last-child{{color:#b91c1c;font-weight:bold}} code{{font-size:.85em}}</style></head><body>
<h1>Northstar evaluation</h1><p>Provider: <b>{html.escape(result['provider'])}</b> · repeat (pass^k): {result.get('repeat', 1)}
· latency p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms</p>
<table><tr><th>suite</th><th>passed</th><th>pass rate</th><th>threshold</th><th></th></tr>{''.join(rows)}</table>
<h2>Failures</h2>{failures}</body></html>"""
