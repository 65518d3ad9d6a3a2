"""A short-lived, per-process memory of API keys already checked against the database.

Checking the key cost every authenticated request its own pooled connection, a ping, a query
and a commit: on the list and read routes that was as much database work as the route itself.
A key found valid is remembered by its digest for `MANTLE_AUTH_CACHE_S` seconds (default 5).

Revocation is honoured at once in the process that revokes (`forget` is called by the route,
and a forgotten key is never remembered again here) and within `MANTLE_AUTH_CACHE_S` seconds
in every other process (other API workers, `mantle` commands). 0 turns the cache off.
Hand-written because it is a dozen lines: a TTL dict with a size bound, under a lock, since
sync routes authenticate from the threadpool.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 10_000


class KeyCache(Generic[T]):
    """Digest → principal, each entry kept `ttl_s` seconds."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, uuid.UUID, T]] = {}
        self._forgotten: set[uuid.UUID] = set()
        self._lock = threading.Lock()

    def get(self, digest: str) -> T | None:
        """The principal remembered for `digest`, if it is still fresh."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return entry[2]

    def put(self, digest: str, key_id: uuid.UUID, principal: T) -> None:
        """Remember a key just found valid (unless it was revoked through this process)."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if key_id in self._forgotten:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # many distinct live keys at once: start over, cheaply
            self._entries[digest] = (time.monotonic() + self.ttl_s, key_id, principal)

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a revoked key now and never remember it again in this process."""
        with self._lock:
            self._forgotten.add(key_id)
            for digest in [d for d, (_, kid, _) in self._entries.items() if kid == key_id]:
                del self._entries[digest]

    def drop(self, digest: str) -> None:
        """Drop one entry now (a browser session that signed out)."""
        with self._lock:
            self._entries.pop(digest, None)
