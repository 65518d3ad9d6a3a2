"""The `Idempotency-Key` header of the routes that start runs: a retry with the same key gets the
first request's run. An empty key is refused (422) instead of being taken as a key: every client
sending an empty header would otherwise share one run."""

from __future__ import annotations

from pydantic import AfterValidator


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("Idempotency-Key is empty: send a key (visible text) or leave the header out")
    return value


NOT_BLANK = AfterValidator(_not_blank)
