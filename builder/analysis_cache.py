"""Analyses of published versions, cached: versions never change, so each is validated once per
process (by the API to start runs, by the workers to advance them)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from blocks.registry import Registry
from builder.graph import Graph
from builder.validation import Analysis, analyze


class AnalysisCache:
    """Validated graphs by version id: versions never change, so each is analysed once."""

    def __init__(self, registry: Registry, size: int = 256) -> None:
        self.registry = registry
        self.size = size
        self._items: OrderedDict[object, Analysis] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: object) -> Analysis | None:
        """The analysis for `key` if it is cached; nothing is loaded."""
        with self._lock:
            return self._items.get(key)

    def get(self, key: object, load: Callable[[], dict[str, Any]]) -> Analysis:
        """The analysis for `key`, computing it from `load()` on a miss."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        analysis = analyze(Graph.model_validate(load()), self.registry)
        with self._lock:
            self._items[key] = analysis
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return analysis
