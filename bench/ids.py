"""Making a random id while another thread of the process is busy: `uuid.uuid4()` against
`core.ids.random_uuid()`, in this process, in alternating blocks.

An API process under load has two busy threads (its event loop and the thread a run starts on).
`uuid.uuid4()` reads the OS's randomness with a system call that lets go of the GIL, and taking it
back waits for the busy thread, up to the switch interval (5 ms). `random_uuid` reads 4 KiB at a
time per thread. Prints one JSON line: microseconds per id, median of the blocks, with and without
a busy thread beside.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.ids import random_uuid  # noqa: E402


def per_call_us(make: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        make()
    return (time.perf_counter() - start) / calls * 1e6


def measure(blocks: int = 10, calls: int = 200) -> dict[str, float]:
    """Median microseconds per id of each way, over `blocks` alternating blocks of `calls` ids."""
    samples: dict[str, list[float]] = {"uuid4": [], "random_uuid": []}
    ways: dict[str, Callable[[], object]] = {"uuid4": uuid.uuid4, "random_uuid": random_uuid}
    for block in range(blocks):
        for name in (list(ways) if block % 2 == 0 else list(reversed(ways))):
            samples[name].append(per_call_us(ways[name], calls))
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def main() -> None:
    alone = measure()
    stop = threading.Event()

    def busy() -> None:  # pure Python work, as an event loop serving requests does
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=busy, daemon=True)
    spinner.start()
    try:
        beside = measure()
    finally:
        stop.set()
        spinner.join()
    print(json.dumps({"bench": "ids", "unit": "us_per_id", "baseline": "uuid.uuid4",
                      "alone": alone, "beside_a_busy_thread": beside,
                      "ratio_beside": round(beside["random_uuid"] / beside["uuid4"], 4)}))


if __name__ == "__main__":
    main()
