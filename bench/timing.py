"""Timing helpers shared by the bench scripts."""

from __future__ import annotations

import time
from collections.abc import Callable


def timings_ms(action: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Wall-clock milliseconds of `runs` calls of `action`, after `warmup` calls."""
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
