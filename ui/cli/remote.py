"""The CLI as a client of a running `northstar serve`: found from NORTHSTAR_SERVER or the home's server.json.

`ask`, `chat`, `approvals`, `approve`, `tool` and `load` send their work to the server when one runs for the
home (so one process owns the warehouse and no command meets a lock), and run in-process only when none runs.
Answers come back in the same JSON shapes, errors with the same messages and exit codes (2 refused or bad
input, 3 not permitted, 1 failed). httpx is imported only when a server is found: `northstar --help` stays fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from ui.cli.common import fail

SERVER_ENV, TOKEN_ENV = "NORTHSTAR_SERVER", "NORTHSTAR_API_TOKEN"
EXIT = {400: 2, 404: 2, 409: 2, 401: 3, 403: 3, 422: 1, 499: 1}
START_PATIENCE_S = 15.0


class Remote:
    """A server's URL and the token to call it with."""

    def __init__(self, url: str, token: str | None, source: str, user: str | None = None):
        self.url, self.token, self.source = url.rstrip("/"), token, source
        self.user = user
        """NORTHSTAR_USER of this shell: who the commands act as when --user is not given (None: the token's)."""

    def _with_user(self, kwargs: dict) -> dict:
        if not self.user:
            return kwargs
        for key in ("json", "data"):
            if isinstance(kwargs.get(key), dict):
                kwargs[key] = {**kwargs[key], "user": kwargs[key].get("user") or self.user}
                return kwargs
        kwargs["params"] = {"user": self.user, **(kwargs.get("params") or {})}
        return kwargs

    def _client(self, read_s: float | None = 900.0):
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(10.0, read=read_s),
                            trust_env=False)

    def call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs):
        """One request; the decoded JSON answer, or `fail` with the server's message and the CLI's exit code
        (None for a 404 when `missing_ok`)."""
        import httpx

        kwargs = self._with_user(kwargs)
        deadline = time.monotonic() + (0 if self.source == SERVER_ENV else START_PATIENCE_S)
        while True:
            try:
                with self._client() as client:
                    response = client.request(method, "/api/v1" + path, **kwargs)
                break
            except httpx.ConnectError as exc:  # a server still starting (its file is written first): wait a little
                if time.monotonic() < deadline:
                    time.sleep(0.3)
                    continue
                self._unreachable(exc)
            except httpx.HTTPError as exc:
                self._unreachable(exc)
        if missing_ok and response.status_code == 404:
            return None
        return self._answer(response)

    def stream(self, path: str, body: dict, on_event: Callable[[dict], None]) -> dict:
        """POST and read server-sent events: each passed to `on_event`, the final answer returned."""
        import httpx

        from ui.server.sse import parse

        body = self._with_user({"json": body})["json"]
        try:
            with self._client() as client, client.stream("POST", "/api/v1" + path, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    return self._answer(response)
                for event in parse(response.iter_lines()):
                    if event["event"] == "result":
                        return event["result"]
                    if event["event"] == "error":
                        fail(event["message"], EXIT.get(event.get("status"), 1))
                    on_event(event)
        except httpx.HTTPError as exc:
            self._unreachable(exc)
        fail(f"the server at {self.url} ended the answer early; ask again (the thread keeps what was done).")

    def _answer(self, response):
        try:
            data = response.json()
        except ValueError:
            data = {"detail": response.text[:500]}
        if response.status_code >= 400:
            detail = data.get("detail") if isinstance(data, dict) else data
            if not isinstance(detail, str):  # FastAPI's validation errors: a list of {loc, msg}
                detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}"
                                   for d in detail or []) or str(detail)
            fail(detail, EXIT.get(response.status_code, 1))
        return data

    def _unreachable(self, exc) -> None:
        where = f"{SERVER_ENV}={self.url}" if self.source == SERVER_ENV else f"the server in {self.source} ({self.url})"
        fail(f"{where} is not answering ({type(exc).__name__}: {exc}). Start it with `northstar serve`, or "
             f"unset {SERVER_ENV} (or set it to 'off') to work without a server.")


def remote_of(ctx) -> Remote | None:
    """The server for this home: NORTHSTAR_SERVER (`off` for none), else the home's server.json if its process
    runs. The token: NORTHSTAR_API_TOKEN, else the home's own token from server.json (the local user's). The
    user: --user, else NORTHSTAR_USER, else the token's."""
    from agent.context import LOCAL_USER
    from ui.server import serverfile

    user = ctx.user if ctx.user != LOCAL_USER else None

    url = os.environ.get(SERVER_ENV, "").strip()
    if url.lower() in ("off", "none", "0", "no"):
        return None
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    info = serverfile.read(ctx.home)
    if url:
        if not url.startswith(("http://", "https://")):
            fail(f"{SERVER_ENV} must be a URL like http://127.0.0.1:7860, got {url!r}.", 2)
        if token is None and info and info["url"].rstrip("/") == url.rstrip("/"):
            token = info.get("token")
        return Remote(url, token, SERVER_ENV, user)
    if info is None:
        return None
    return Remote(info["url"], token or info.get("token"), str(serverfile.path_of(ctx.home)), user)


def upload(remote: Remote, table: str, file: Path, fields: dict) -> dict:
    if not file.is_file():
        fail(f"{file}: no such file.", 1)
    with file.open("rb") as handle:
        data = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in fields.items()
                if v is not None}
        return remote.call("POST", "/load", data={"table": table, **data}, files={"file": (str(file), handle)})
