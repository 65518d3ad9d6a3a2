"""On SQLite the API learns of another process's commit from `PRAGMA data_version`, within a
few milliseconds, instead of every waiter querying its run; on PostgreSQL each notice carries
the run's status."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import sqlean.dbapi2 as sqlite3  # the SQLite library Mantle opens the file with in this process
from sqlalchemy import create_engine, text

from api.streams import wait_until_ended
from api.watch import RunWatcher
from tests.conftest import POSTGRES_URL, require_postgres


def test_a_commit_by_another_connection_wakes_waiters_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "mantle.db"
    writer = sqlite3.connect(path, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE runs (id TEXT, status TEXT)")
    writer.commit()

    async def scenario() -> tuple[bool, bool]:
        watcher = RunWatcher(f"sqlite:///{path}")
        await watcher.start()
        try:
            await asyncio.wait_for(watcher.connected.wait(), 5)
            with watcher.subscribe(uuid.uuid4()) as event:
                quiet = not event.is_set()
                writer.execute("INSERT INTO runs VALUES ('r', 'succeeded')")
                writer.commit()
                await asyncio.wait_for(event.wait(), 5)
                return quiet, watcher.poll_interval >= 0.5
        finally:
            await watcher.stop()

    # A loop of its own, in a thread: a browser test's sync client may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        quiet, slow_polls = pool.submit(asyncio.run, scenario()).result(timeout=30)
    writer.close()
    assert quiet, "woken before anything changed"
    assert slow_polls, "waiters should only look on their own rarely while the watcher runs"


def test_a_request_waiting_for_a_run_learns_its_end_from_the_notice_on_postgresql() -> None:
    """Each step's notice carries the run's status: a waiting request (an SMS webhook, `?wait=`)
    looks the run up once, not after every step."""
    require_postgres()
    run_id = uuid.uuid4()
    lookups: list[str] = []
    looked = threading.Event()

    class Session:  # what the waiter reads the run's status with: counts the reads
        def scalar(self, _statement: object) -> str:
            lookups.append("read")
            looked.set()
            return "running"

    async def scenario() -> tuple[str | None, float]:
        watcher = RunWatcher(POSTGRES_URL)
        await watcher.start()
        notifier = create_engine(POSTGRES_URL)
        try:
            await asyncio.wait_for(watcher.connected.wait(), 10)
            state = SimpleNamespace(watcher=watcher, read_sessions=lambda: contextlib.nullcontext(Session()))
            request = SimpleNamespace(app=SimpleNamespace(state=state))
            with watcher.subscribe(run_id) as event:

                def notify(payload: str) -> None:
                    with notifier.begin() as conn:
                        conn.execute(text("SELECT pg_notify('mantle_runs', :p)"), {"p": payload})

                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, notify, f"{run_id} running")
                await asyncio.wait_for(event.wait(), 10)
                seen = event.status
            started = time.monotonic()
            waiting = asyncio.create_task(wait_until_ended(request, run_id, 30))  # type: ignore[arg-type]
            assert await loop.run_in_executor(None, looked.wait, 10), "no first look"  # no notice yet: a read
            for payload in (f"{run_id} running", f"{run_id} waiting", f"{run_id} succeeded"):
                await loop.run_in_executor(None, notify, payload)
            await asyncio.wait_for(waiting, 10)
            return seen, time.monotonic() - started
        finally:
            notifier.dispose()
            await watcher.stop()

    with ThreadPoolExecutor(1) as pool:
        seen, took = pool.submit(asyncio.run, scenario()).result(timeout=60)
    assert seen == "running", "the notice's status reaches the waiter"
    assert lookups == ["read"], f"looked the run up {len(lookups)} times; the notices said it all"
    assert took < 30, "the wait ended on the notice, not at its deadline"


def test_a_request_that_created_the_run_waits_on_notices_alone_while_the_listener_holds() -> None:
    """A webhook that has just created a run (an SMS's) took a first look at it in the database,
    in case it ended before the wait subscribed. The listener remembers the notices it was given,
    so that look is needed only when the listener reconnected since the run was created, or a
    notice named no status."""
    require_postgres()
    lookups: list[str] = []

    class Session:  # what the waiter reads the run's status with: counts the reads
        def scalar(self, _statement: object) -> str:
            lookups.append("read")
            return "succeeded"

    async def scenario() -> dict[str, list[str]]:
        watcher = RunWatcher(POSTGRES_URL)
        await watcher.start()
        notifier = create_engine(POSTGRES_URL)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(watcher.connected.wait(), 10)
            state = SimpleNamespace(watcher=watcher, read_sessions=lambda: contextlib.nullcontext(Session()))
            request = SimpleNamespace(app=SimpleNamespace(state=state))

            async def notify(payload: str, run_id: uuid.UUID) -> None:
                def send() -> None:
                    with notifier.begin() as conn:
                        conn.execute(text("SELECT pg_notify('mantle_runs', :p)"), {"p": payload})

                with watcher.subscribe(run_id) as seen:  # returns once the listener has it
                    await loop.run_in_executor(None, send)
                    await asyncio.wait_for(seen.wait(), 10)

            async def wait(run_id: uuid.UUID, mark: int | None) -> list[str]:
                lookups.clear()
                ended = wait_until_ended(request, run_id, 30, created_while=mark)  # type: ignore[arg-type]
                await asyncio.wait_for(ended, 10)
                return list(lookups)

            seen: dict[str, list[str]] = {}
            mark = watcher.listening()
            ended_first, later, silent, stale = (uuid.uuid4() for _ in range(4))
            await notify(f"{ended_first} succeeded", ended_first)  # ended before the wait subscribed
            seen["ended before the wait"] = await wait(ended_first, mark)
            waiting = asyncio.create_task(wait(later, mark))  # nothing said yet: it waits for the notice
            await notify(f"{later} running", later)
            await notify(f"{later} succeeded", later)
            seen["ended during the wait"] = await waiting
            await notify(f"{silent}", silent)  # a notice that names no status
            seen["a notice without a status"] = await wait(silent, mark)
            seen["a mark from an earlier connection"] = await wait(stale, (mark or 0) - 1)
            seen["no mark"] = await wait(stale, None)
            return seen
        finally:
            notifier.dispose()
            await watcher.stop()

    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, scenario()).result(timeout=60)
    assert seen["ended before the wait"] == [], "the remembered notice said it ended"
    assert seen["ended during the wait"] == [], "the notices said it all"
    assert len(seen["a notice without a status"]) == 1, "a notice without a status must be looked up"
    assert len(seen["a mark from an earlier connection"]) == 1, "after a reconnect notices may be lost"
    assert len(seen["no mark"]) == 1


def test_the_listener_reconnects_when_its_connection_is_cut_and_notices_reach_waiters_again() -> None:
    """The listening connection killed by the server (a restart, an administrator): the listener
    says it is not connected (waiters then poll), connects again, and the next notices wake their
    waiters, each notice once, including a burst that arrives in one read."""
    require_postgres()

    name = f"watch-test-{uuid.uuid4().hex[:8]}"  # to cut this listener only, not another test's

    async def scenario() -> tuple[list[str | None], int, bool]:
        watcher = RunWatcher(f"{POSTGRES_URL}?application_name={name}")
        await watcher.start()
        admin = create_engine(POSTGRES_URL)
        loop = asyncio.get_running_loop()

        def run(sql: str, params: dict[str, str]) -> None:
            with admin.begin() as conn:
                conn.execute(text(sql), params)

        try:
            await asyncio.wait_for(watcher.connected.wait(), 10)
            first = watcher.listening()
            assert first is not None
            await loop.run_in_executor(None, run, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE application_name = :name", {"name": name})

            async def reconnected() -> None:  # the listener waits a second before connecting again
                while watcher.listening() in (None, first):
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(reconnected(), 20)
            was_cut = watcher.listening() == first + 1
            run_ids = [uuid.uuid4() for _ in range(5)]
            statuses: list[str | None] = []
            with contextlib.ExitStack() as stack:
                events = [stack.enter_context(watcher.subscribe(run_id)) for run_id in run_ids]
                # Five notices in one transaction: delivered together, at its commit.
                await loop.run_in_executor(None, run, "SELECT " + ", ".join(
                    f"pg_notify('mantle_runs', :p{i})" for i in range(5)),
                    {f"p{i}": f"{run_id} succeeded" for i, run_id in enumerate(run_ids)})
                for event in events:
                    await asyncio.wait_for(event.wait(), 10)
                    statuses.append(event.status)
            return statuses, (watcher.listening() or 0) - first, was_cut
        finally:
            admin.dispose()
            await watcher.stop()

    with ThreadPoolExecutor(1) as pool:
        statuses, connections, was_cut = pool.submit(asyncio.run, scenario()).result(timeout=60)
    assert was_cut and connections == 1, "the listener connected once more after being cut"
    assert statuses == ["succeeded"] * 5, "every waiter heard its run's notice after the reconnect"
