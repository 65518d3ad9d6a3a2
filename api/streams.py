"""Following a run as it changes: the Server-Sent Events loop and the wait for its end.

Both wake on the run watcher (PostgreSQL NOTIFY, or short polls on SQLite), so a waiting
client costs one subscription, not a query loop. What a stream sends is up to its reader:
the builder API sends every event of the run's log, the public pages a visitor's view.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.watch import RunWatcher
from core.statuses import TERMINAL, RunStatus
from models.runs import Run


@dataclass(frozen=True, slots=True)
class Message:
    """One Server-Sent Event: its id (the run event it reflects), name and JSON data."""

    id: int
    event: str
    data: Any
    last: bool = False


@dataclass(frozen=True, slots=True)
class Batch:
    """What a reader found after a cursor: messages to send, the new cursor, whether the run ended."""

    messages: list[Message] = field(default_factory=list)
    cursor: int = 0
    ended: bool = False


Reader = Callable[[int], Batch]


async def follow_run(request: Request, run_id: uuid.UUID, after: int, read: Reader,
                     keep_alive_s: float = 15) -> AsyncIterator[str]:
    """Server-Sent Events for one run until a `last` message, the run's end or the client leaves."""
    watcher: RunWatcher = request.app.state.watcher
    cursor, quiet_since = after, time.monotonic()
    yield "retry: 1000\n\n"
    with watcher.subscribe(run_id) as changed:
        while True:
            batch = await run_in_threadpool(read, cursor)
            for message in batch.messages:
                yield f"id: {message.id}\nevent: {message.event}\ndata: {json.dumps(message.data)}\n\n"
                if message.last:
                    return
            if batch.cursor != cursor:
                cursor, quiet_since = batch.cursor, time.monotonic()
                continue
            if batch.ended or await request.is_disconnected():
                return  # ended without a last message we have not sent: nothing more will come
            if time.monotonic() - quiet_since > keep_alive_s:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
            await watcher.next_change(changed, watcher.poll_interval * 5)


def _run_status(request: Request, run_id: uuid.UUID) -> str | None:
    with request.app.state.read_sessions() as session:
        found: str | None = session.scalar(select(Run.status).where(Run.id == run_id))
        return found


async def wait_until_ended(request: Request, run_id: uuid.UUID, seconds: float,
                           created_while: int | None = None) -> None:
    """Return once the run has ended (or is gone), or after `seconds`. The run's status is read
    from the database only when no notice has said what it is. `created_while`: the watcher's
    `listening()` mark taken before this request created the run; while it holds, the run's
    notices tell all (`RunWatcher.created_while`), and the first look needs no query."""
    watcher: RunWatcher = request.app.state.watcher
    deadline = time.monotonic() + seconds
    with watcher.subscribe(run_id) as changed:
        told = watcher.created_while(created_while, run_id)  # "": not changed since it was created
        while True:  # look first: the run may have ended before this subscription
            now = changed.status or told
            told = None
            if now is None:
                now = await run_in_threadpool(_run_status, request, run_id)
                if now is None:  # gone
                    return
            if (now and RunStatus(now) in TERMINAL) or (left := deadline - time.monotonic()) <= 0:
                return
            await watcher.next_change(changed, min(left, watcher.poll_interval))
