"""The threads an API process starts runs on: few, and kept apart from the rest of its work.

A request that starts a run (`POST /v1/apps/{id}/runs`, a webhook, an SMS, a web app's or an MCP
tool's or the OpenAI API's run) does its transaction on a thread, and a pure app's nodes run there
too (`worker/direct.py`). At most `MANTLE_API_RUN_THREADS` of them run at once; more requests wait
their turn on the event loop, where waiting costs nothing. Many at once only switch between
themselves under the GIL: bench/engine.py's 3-block runs at 50 clients went from 433 to 512 runs/s
with 10 threads instead of 40. The API's other blocking work (reads, polls, probes, every sync
route) keeps anyio's default pool (`MANTLE_API_THREADS`), so a burst of run starts never holds up
a read, and a slow read never holds up a run start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from starlette.datastructures import State

T = TypeVar("T")


def install(state: State, threads: int) -> None:
    """Give the app its run-start threads (in its lifespan: a limiter belongs to an event loop)."""
    state.run_start_limiter = CapacityLimiter(threads)


async def starting_run(state: State, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` on one of the run-start threads (anyio's default pool before `install`)."""
    limiter: CapacityLimiter | None = getattr(state, "run_start_limiter", None)
    return await to_thread.run_sync(func, *args, limiter=limiter)
