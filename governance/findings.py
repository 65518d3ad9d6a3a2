"""What a rule found, and how found spans become redacted text.

A finding locates a hit by character offsets into the text that was evaluated and names its
kind (`EMAIL_ADDRESS`, `keyword`, `ignore_instructions`); it never carries the text itself, so
findings can be stored, logged and shown to a reviewer without leaking what they point at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One hit of one rule: `text[start:end]` is what it found (whole text: 0 and len)."""

    rule: str
    kind: str
    start: int
    end: int
    score: float

    def as_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        data = asdict(self)
        data["score"] = round(self.score, 4)
        return data


def without_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """The strongest of overlapping findings (higher score, then longer span), in text order.

    Two recognizers often claim one span (an SSN also parses as a phone number); redaction
    needs disjoint spans and a reader wants the best label.
    """
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: (f.start, f.end))


def redact(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    """`text` with each `(start, end, placeholder)` span replaced; overlapping spans merge into
    one, under the placeholder of the one that starts first, so no part of either is left.

    Hand-written rather than presidio-anonymizer's `replace`: the spans come from every rule, not
    only Presidio's, and importing the anonymizer loads spaCy and the analyzer (seconds) into
    processes that may only run a keyword list."""
    merged: list[list[Any]] = []
    for start, end, placeholder in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, placeholder])
    pieces: list[str] = []
    cursor = 0
    for start, end, placeholder in merged:
        pieces += [text[cursor:start], placeholder]
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
