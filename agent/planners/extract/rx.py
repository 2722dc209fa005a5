"""`re`'s functions for patterns built at run time (a phrase, a name, a channel as whole words), compiled once.

`re` keeps only 512 compiled patterns and evicts the oldest when full. The planner builds over a thousand (every
declared phrase, name and channel as a pattern, beside its own fixed ones), so `re`'s cache turned over on every
request and each turn recompiled hundreds of patterns, the fixed ones too: 2,688 compilations (~190 ms) over the
agent bench's 50 turns, up to 25 ms in one (issue 19 goal 4). Patterns built from the text go through this cache
instead, which leaves `re`'s own to the fixed patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=8192)
def compiled(pattern: str, flags: int = 0) -> re.Pattern:
    return re.compile(pattern, flags)


def search(pattern: str, string: str, flags: int = 0) -> re.Match | None:
    return compiled(pattern, flags).search(string)


def match(pattern: str, string: str, flags: int = 0) -> re.Match | None:
    return compiled(pattern, flags).match(string)


def finditer(pattern: str, string: str, flags: int = 0):
    return compiled(pattern, flags).finditer(string)


def findall(pattern: str, string: str, flags: int = 0) -> list:
    return compiled(pattern, flags).findall(string)


def sub(pattern: str, repl, string: str, count: int = 0, flags: int = 0) -> str:
    return compiled(pattern, flags).sub(repl, string, count)


def split(pattern: str, string: str, maxsplit: int = 0, flags: int = 0) -> list[str]:
    return compiled(pattern, flags).split(string, maxsplit)
