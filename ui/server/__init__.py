"""`northstar serve`: one process for a team: the web UI, the Slack bot and the JSON API on one port.

app.py builds the FastAPI app (Gradio mounted, Slack's events, /api/v1) and runs it; api.py the JSON API; turns.py
runs agent turns in threads and streams their events (sse.py: the wire format); auth.py the API's tokens;
serverfile.py the home's `server.json` that the CLI reads to find the server. Only serverfile.py is imported by
the CLI when no server runs, so it needs nothing but the standard library.
"""
