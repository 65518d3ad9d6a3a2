"""Bounds shared by everything that runs a builder-written regular expression (conditions, the
governance deny list): one place, so a block and a policy never disagree on what is too slow."""

from __future__ import annotations

# How long one builder-written regular expression may search one text (the `regex` package's
# timeout), whatever backtracking it would do.
REGEX_TIMEOUT_S = 0.1
