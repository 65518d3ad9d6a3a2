"""The threads an API process starts runs on: few, and kept apart from the rest of its work; and
when a run's start is better made on the event loop itself.

A request that starts a run (`POST /v1/apps/{id}/runs`, a webhook, an SMS, a web app's or an MCP
tool's or the OpenAI API's run) does its transaction on a thread, and a pure app's nodes run there
too (`worker/direct.py`). At most `MANTLE_API_RUN_THREADS` of them run at once; more requests wait
their turn on the event loop, where waiting costs nothing. Many at once only switch between
themselves under the GIL: bench/engine.py's 3-block runs at 50 clients went from 433 to 512 runs/s
with 10 threads instead of 40. The API's other blocking work (reads, polls, probes, every sync
route) keeps anyio's default pool (`MANTLE_API_THREADS`), so a burst of run starts never holds up
a read, and a slow read never holds up a run start.

The hop itself has a price: handing the work to a thread and its result back to the loop wakes
two threads, and a 10-block direct run waited for through `?wait=` answered 0.4 to 0.6 ms sooner
on the loop than on a thread (3.42 against 3.94 ms, alternating blocks of one process; the whole
run takes about 3 ms). So a start that is expected to be one round trip to PostgreSQL with no
broker (`Submitter.ends_at_once`: a direct run on a version this process knows) runs on the event
loop when the process serves no other request (`alone`, counted by `api.middleware.RequestContext`):
nobody is there to wait for the loop while it works. Under load there always is, and the thread
keeps the loop free. The loop is held for the run's pure nodes, at most `worker.direct.LOOP_SLICE_S`
(10 ms: a run that needs more is started again on a thread, nothing of it written), and one round
trip; if the guess was wrong (a version published meanwhile), the usual path's reads follow there
too, but a run that has to go to a worker is handed over from a thread (`starting_run` again), as
the broker may be slow to answer. A request that arrives meanwhile waits for the loop that long.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from starlette.datastructures import State

from worker.direct import NotOnLoop, on_event_loop

if TYPE_CHECKING:
    from worker.submit import Submitter

T = TypeVar("T")


class Serving:
    """How many HTTP requests an app is serving now (`api.middleware.RequestContext` counts them,
    on the app's event loop)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0


def install(state: State, threads: int) -> None:
    """Give the app its run-start threads (in its lifespan: a limiter belongs to an event loop)."""
    state.run_start_limiter = CapacityLimiter(threads)


def alone(state: State) -> bool:
    """Whether the request asking is the only one the app serves now."""
    serving: Serving | None = getattr(state, "serving", None)
    return serving is not None and serving.now <= 1


def at_once(state: State, org_id: uuid.UUID, app_id: uuid.UUID, *, wait_s: float,
            version_id: uuid.UUID | None = None) -> bool:
    """Whether a run of the app's latest version (`version_id`, if given) may start on the event
    loop: the app serves no other request, its database is PostgreSQL, and the run is expected to
    end where it starts, in one round trip (`Submitter.ends_at_once`). For a start with no
    Idempotency-Key and `end_here`, whose caller waits `wait_s`."""
    bind = state.session_factory.kw.get("bind")
    if (not alone(state) or bind is None or bind.dialect.name != "postgresql"
            or (wait_s <= 0 and state.settings.direct_run_s <= 0)):
        return False
    submitter: Submitter = state.submitter
    return submitter.ends_at_once(org_id, app_id, version_id)


async def starting_run(state: State, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` on one of the run-start threads (anyio's default pool before `install`)."""
    limiter: CapacityLimiter | None = getattr(state, "run_start_limiter", None)
    return await to_thread.run_sync(func, *args, limiter=limiter)


async def start_run(state: State, func: Callable[..., T], *args: Any, at_once: bool,
                    handed_over: Callable[[T], uuid.UUID | None]) -> T:
    """`func(*args, enqueue=...)`, a run's start: on the event loop when `at_once` (see `at_once`),
    else on a run-start thread (`starting_run`). On the loop, func hands no run to a worker
    (`enqueue=False`): the run that `handed_over(result)` names is handed over from a thread. A
    direct run whose nodes need more than the loop's slice is started again on a thread
    (`worker/direct.py`: nothing of it was written)."""
    if at_once:
        try:
            with on_event_loop():
                result = func(*args, enqueue=False)
        except NotOnLoop:
            pass
        else:
            run_id = handed_over(result)
            if run_id is not None:
                submitter: Submitter = state.submitter
                await starting_run(state, submitter.enqueue, run_id)
            return result
    return await starting_run(state, partial(func, *args, enqueue=True))
