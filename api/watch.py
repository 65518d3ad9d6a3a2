"""Waiting for runs to change without hammering the database.

On PostgreSQL the run worker sends `NOTIFY mantle_runs, '<run id>'` in the same transaction
as each step of a run, so the notice arrives exactly when the change is visible. One
listening connection per API process wakes every waiter of that run. On SQLite (one machine)
waiters poll; they also poll slowly on PostgreSQL, in case a notice was lost to a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Iterator

import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger("mantle.watch")

CHANNEL = "mantle_runs"


class RunWatcher:
    """Lets coroutines wait for the next change of a run."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.enabled = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def poll_interval(self) -> float:
        """How often a waiter checks the database anyway (often without a listener)."""
        return 0.5 if self.connected.is_set() else 0.02

    async def start(self) -> None:
        """Begin listening (PostgreSQL only)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="mantle-run-watcher")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    async for notice in conn.notifies():
                        self._wake(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; waiters poll meanwhile
                log.warning("run_watcher_disconnected", error=str(exc).splitlines()[0] if str(exc) else "")
            finally:
                self.connected.clear()
                self._wake_all()
            await asyncio.sleep(1)

    def _wake(self, payload: str) -> None:
        try:
            run_id = uuid.UUID(payload)
        except ValueError:
            return
        for event in self._waiters.get(run_id, ()):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()

    @contextlib.contextmanager
    def subscribe(self, run_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set at each change of the run; subscribe before looking, so none is missed."""
        event = asyncio.Event()
        self._waiters[run_id].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[run_id]

    async def next_change(self, event: asyncio.Event, timeout: float) -> None:
        """Wait until `event` is set (then clear it) or `timeout` passes; short polls without a listener."""
        if not self.connected.is_set():
            timeout = min(timeout, 0.02)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()
