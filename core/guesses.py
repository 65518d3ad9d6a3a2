"""A process's bounded memory of things it found in the database, used as guesses that the round
trip recording a write checks (`models.db.send_check`), never as answers on their own."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Guesses(Generic[K, V]):
    """Up to `size` values by key, kept until forgotten; when full it starts over (cheaper than an
    LRU's bookkeeping on every hit, and a miss only costs the usual look-up). Reads take no lock:
    a dict's get is atomic under the GIL."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._items) >= self.size and key not in self._items:
                self._items.clear()
            self._items[key] = value

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)
