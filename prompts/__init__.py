"""Prompts live here as text files, loaded by name and formatted in exactly one place each."""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


@cache
def load(name: str) -> str:
    """The text of prompts/NAME.txt."""
    path = HERE / f"{name}.txt"
    if not path.exists():
        raise FileNotFoundError(f"no prompt {name!r} in {HERE}")
    return path.read_text(encoding="utf-8")
