"""Deterministic checks behind the analytics_reference and content suites: the check registry and its helpers
(`base`), and the analytics reference checks (`reference`), imported here so that each registers."""

from evals.checks import reference  # noqa: F401  (registers the analytics reference checks)
from evals.checks.base import MissingData, run_check

__all__ = ["MissingData", "run_check"]
