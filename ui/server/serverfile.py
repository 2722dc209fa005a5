"""The home's `server.json`: where a running `northstar serve` listens, so the CLI can send it its commands.

Written at start-up (mode 0600: it holds the home's own API token) and removed at shutdown; a file whose process
is gone (a crash, a kill -9) is stale and ignored. Standard library only: the CLI reads it on every command.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path

NAME = "server.json"


def path_of(home: Path | str) -> Path:
    return Path(home) / NAME


def alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie or a recycled id is beyond what we check)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def write(home: Path | str, url: str, token: str) -> Path:
    """Record this process as the home's server (atomically: a reader never sees half a file)."""
    path = path_of(home)
    tmp = path.with_name(f".{NAME}.{os.getpid()}")
    info = {"url": url, "pid": os.getpid(), "host": socket.gethostname(), "token": token}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out)
    os.replace(tmp, path)
    return path


def read(home: Path | str) -> dict | None:
    """The running server's record, or None when there is none or it is stale (its process has ended)."""
    path = path_of(home)
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
        str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("host") == socket.gethostname() and not alive(pid):
        return None
    return info


def remove(home: Path | str) -> None:
    """Remove the record if it is this process's (a second server that refused to start must not remove it)."""
    path = path_of(home)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def new_token() -> str:
    return "nsl_" + secrets.token_urlsafe(24)
