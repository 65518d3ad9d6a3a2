"""Deny lists: keywords on word boundaries and user-supplied regular expressions.

Patterns come from users, so each is compiled once (cached by its text) and every search runs
with the same time limit as `logic.condition`'s `matches` (the `regex` module can stop a
match): a catastrophic pattern fails the evaluation with a clear error instead of holding a
worker. Everything matches case-insensitively.
"""

from __future__ import annotations

from functools import lru_cache

import regex

from core.errors import MantleError
from core.patterns import REGEX_TIMEOUT_S
from governance.findings import Finding


class PatternTimeout(MantleError):
    """A deny-list regular expression ran longer than its time limit on this text."""

    status_code = 422
    type = "pattern_timeout"


@lru_cache(maxsize=512)
def keyword_pattern(keywords: tuple[str, ...]) -> regex.Pattern[str]:
    """One pattern matching any keyword as whole words (spaces in a phrase match any whitespace)."""
    # Lookarounds rather than \b, so keywords that start or end with a symbol ("c++") work too.
    parts = sorted({r"\s+".join(regex.escape(w) for w in k.split()) for k in keywords}, key=len, reverse=True)
    return regex.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", regex.IGNORECASE)


@lru_cache(maxsize=512)
def user_pattern(pattern: str) -> regex.Pattern[str]:
    """A user's regular expression, compiled once."""
    return regex.compile(pattern, regex.IGNORECASE)


def _search(pattern: regex.Pattern[str], text: str, what: str) -> list[tuple[int, int]]:
    try:
        return [m.span() for m in pattern.finditer(text, timeout=REGEX_TIMEOUT_S) if m.end() > m.start()]
    except TimeoutError:
        raise PatternTimeout(f"the deny list's {what} took longer than {REGEX_TIMEOUT_S} s on this text; "
                             "simplify it", loc=["deny_list"]) from None


def find_denied(text: str, keywords: list[str], regexes: list[str]) -> list[Finding]:
    """Every keyword and regex hit in `text`."""
    found: list[Finding] = []
    if keywords:
        found += [Finding("deny_list", "keyword", s, e, 1.0)
                  for s, e in _search(keyword_pattern(tuple(keywords)), text, "keyword list")]
    for index, pattern in enumerate(regexes):
        found += [Finding("deny_list", f"regex:{index}", s, e, 1.0)
                  for s, e in _search(user_pattern(pattern), text, f"regexes[{index}]")]
    return found
