"""On SQLite the API learns of another process's commit from `PRAGMA data_version`, within a
few milliseconds, instead of every waiter querying its run."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api.watch import RunWatcher


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
