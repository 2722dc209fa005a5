"""System packages a test needs (Chromium, a Java runtime): installed from apt when missing, as the CI set-up; a
user's machine without apt skips with a one-line notice, CI fails with what to install."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure(binary: str, package: str, what: str) -> str:
    """The path of `binary`, installing Debian's `package` when it is missing."""
    if found := shutil.which(binary):
        return found
    problem = "apt-get is not available"
    if shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        proc = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=300, env=env)
            proc = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if found := shutil.which(binary):
            return found
        problem = f"apt-get install {package} failed: {(proc.stderr or proc.stdout)[-400:]}"
    message = f"{what} needs `{binary}` (Debian package {package}) and it could not be installed ({problem})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(f"NOTICE: {message}")
