"""Waiting for runs to change without hammering the database.

On PostgreSQL the run worker sends `NOTIFY mantle_runs, '<run id> <status>'` in the same
transaction as each step of a run, so the notice arrives exactly when the change is visible. One
listening connection per API process wakes every waiter of that run and hands it the status, so
a request waiting for a run to end looks the run up once, not after every step. On SQLite (one machine)
one task per API process reads `PRAGMA data_version` every 20 ms (it changes whenever another
connection commits: microseconds, no ORM) and wakes every waiter when it moves, instead of each
waiter querying its run 50 times a second; on a 2-core machine those queries took CPU from the
model generating the answer. Waiters still look slowly on their own, in case a notice was lost.

The listener also remembers the last statuses it was told (`RECENT_RUNS` runs), so a request that
has just created a run and waits for it need not look it up first (`created_while`): a notice
of its run arrived either before it subscribed (remembered) or after (it wakes the waiter), as
long as the listener was listening, without a reconnect, since before the run was created.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn

log = structlog.get_logger("mantle.watch")

CHANNEL = "mantle_runs"
SQLITE_CHECK_S = 0.02
RECENT_RUNS = 4096


class RunChange(asyncio.Event):
    """Set at each change of one run. `status`: the run's status as the last notice gave it, or
    None when it must be looked up (a notice without one, a reconnect, a poll timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.status: str | None = None


class RunWatcher:
    """Lets coroutines wait for the next change of a run."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.enabled = url.get_backend_name() == "postgresql"
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._sqlite_file = (url.database if url.get_backend_name() == "sqlite"
                             and url.database not in (None, "", ":memory:") else None)
        self._waiters: dict[uuid.UUID, set[RunChange]] = defaultdict(set)
        self._recent: dict[uuid.UUID, str] = {}  # run → its last notified status ("": none given)
        self._listening = 0  # counts the listener's connections: a reconnect may have lost notices
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def poll_interval(self) -> float:
        """How often a waiter checks the database anyway (often without a listener)."""
        return 0.5 if self.connected.is_set() else 0.02

    async def start(self) -> None:
        """Begin listening (PostgreSQL) or watching the database file's commits (SQLite)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="mantle-run-watcher")
        elif self._sqlite_file is not None and self._task is None:
            self._task = asyncio.create_task(self._watch_sqlite(self._sqlite_file), name="mantle-run-watcher")

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
                    # Notices psycopg reads itself (with the LISTEN's answer) come through here.
                    conn.add_notify_handler(lambda notice: self._wake(notice.payload))
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._recent.clear()
                    self._listening += 1
                    self.connected.set()
                    await self._receive(conn.pgconn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; waiters poll meanwhile
                log.warning("run_watcher_disconnected", error=str(exc).splitlines()[0] if str(exc) else "")
            finally:
                self.connected.clear()
                self._wake_all()
            await asyncio.sleep(1)

    async def _receive(self, pgconn: PGconn) -> None:
        """Wake waiters at each notice the connection receives, until it fails (raised).

        psycopg's `AsyncConnection.notifies()` does this too, but it adds a reader to the event loop,
        makes a future and removes the reader again for every notice, which cost the API about 3%
        of its CPU in `bench/load.py`. Here one reader stays on the socket while the connection
        lives, and each time it is readable libpq's input is read and every notice it holds is
        taken (`consume_input`, `notifies`: the documented libpq calls, which psycopg makes too).
        The connection runs nothing else meanwhile."""
        loop = asyncio.get_running_loop()
        broken: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                pgconn.consume_input()  # raises once the server is gone
                while (notice := pgconn.notifies()) is not None:
                    self._wake(notice.extra.decode())
            except Exception as exc:
                if not broken.done():
                    broken.set_exception(exc)

        socket = pgconn.socket
        loop.add_reader(socket, readable)
        try:
            readable()  # what arrived before the reader was added
            await broken
        finally:
            loop.remove_reader(socket)

    async def _watch_sqlite(self, path: str) -> None:
        while True:
            try:
                conn = sqlite3.connect(path, check_same_thread=False)
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    self.connected.set()
                    while True:
                        await asyncio.sleep(SQLITE_CHECK_S)
                        now = conn.execute("PRAGMA data_version").fetchone()[0]
                        if now != version:
                            version = now
                            self._wake_all()
                finally:
                    conn.close()
            except asyncio.CancelledError:
                raise
            except sqlite3.Error as exc:  # not created yet, or locked: waiters poll meanwhile
                log.warning("run_watcher_sqlite_failed", error=str(exc))
            finally:
                self.connected.clear()
                self._wake_all()
            await asyncio.sleep(1)

    def _wake(self, payload: str) -> None:
        run, _, status = payload.partition(" ")  # "<run id>" alone from senders that know no status
        try:
            run_id = uuid.UUID(run)
        except ValueError:
            return
        self._recent.pop(run_id, None)  # "" when the notice named no status
        self._recent[run_id] = status
        if len(self._recent) > RECENT_RUNS:
            del self._recent[next(iter(self._recent))]
        for event in self._waiters.get(run_id, ()):
            event.status = status or None
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.status = None
                event.set()

    def listening(self) -> int | None:
        """A mark of the listener's connection (PostgreSQL), to take before creating a run and hand
        to `created_while` after; None without a listener."""
        return self._listening if self.enabled and self.connected.is_set() else None

    def created_while(self, mark: int | None, run_id: uuid.UUID) -> str | None:
        """For a run created after `listening` gave `mark`: its last notified status, or "" when
        no notice has come since it was created. None when that is not known (no mark, or the
        listener reconnected since, and may have lost a notice): the caller must look it up."""
        if mark is None or mark != self.listening():
            return None
        told = self._recent.get(run_id)
        if told is None:
            return ""
        return told or None  # a notice without a status: look it up

    @contextlib.contextmanager
    def subscribe(self, run_id: uuid.UUID) -> Iterator[RunChange]:
        """An event set at each change of the run; subscribe before looking, so none is missed."""
        event = RunChange()
        self._waiters[run_id].add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[run_id]

    async def next_change(self, event: RunChange, timeout: float) -> None:
        """Wait until `event` is set (then clear it) or `timeout` passes; short polls without a listener.
        After a timeout the status is unknown (a notice may have been lost)."""
        if not self.connected.is_set():
            timeout = min(timeout, 0.02)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            event.status = None
        event.clear()
