"""Check cases (analytics_reference, content): each names a check function with its parameters."""

from __future__ import annotations

CHECKS: dict = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def run_check(case: dict) -> list[str]:
    name = case["check"]
    if name not in CHECKS:
        return [f"unknown check {name!r}"]
    return CHECKS[name](case)
