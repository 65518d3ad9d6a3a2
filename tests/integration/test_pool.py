"""The PostgreSQL pool checks a connection before use only after it sat idle: a connection the
server dropped meanwhile is replaced before the caller's query, which then succeeds. It keeps the
connections a burst of work opened, instead of closing and opening them again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from models import db
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database, require_postgres


@pytest.fixture
def pool() -> Iterator[tuple[Engine, Engine]]:
    """A pooled engine on a fresh database, and an admin engine to kill its connections with."""
    require_postgres()
    admin_url = POSTGRES_URL
    url = create_postgres_database(admin_url)
    engine = db.make_engine(url, pool_size=1, max_overflow=0)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        yield engine, admin
    finally:
        engine.dispose()
        admin.dispose()
        drop_postgres_database(admin_url, url)


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def kill(admin: Engine, pid: int) -> None:
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def counted_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The dialect's pings from now on (each still pings the server)."""
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counting(conn: Any) -> bool:
        pings.append(conn)
        return ping(conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pings


def test_a_connection_killed_while_idle_is_replaced_before_the_next_query(
        pool: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, admin = pool
    first = backend_pid(engine)
    kill(admin, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every check-out counts as after a wait
    pings = counted_pings(engine, monkeypatch)

    second = backend_pid(engine)  # no error: the dead connection was found and replaced

    assert second != first and len(pings) >= 1


def test_a_connection_back_in_use_at_once_is_not_pinged_and_still_works(
        pool: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ = pool
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    pings = counted_pings(engine, monkeypatch)

    pids = {backend_pid(engine) for _ in range(5)}

    assert len(pids) == 1 and pings == []


def test_connections_opened_under_load_are_kept_for_the_next_burst() -> None:
    """Thirty threads at once, twice: the second burst reuses the first one's connections. An
    "overflow" connection used to be closed as it came back, so under load each request opened a
    new one, and PostgreSQL forked a backend for it (bench/engine.py: 380 against 510 runs/s)."""
    require_postgres()
    url = create_postgres_database(POSTGRES_URL)
    engine = db.make_engine(url)  # the pool every process gets
    threads = 30
    try:
        def burst() -> set[int]:
            together = threading.Barrier(threads)

            def one(_: int) -> int:
                with engine.connect() as conn:
                    together.wait(timeout=30)  # every thread holds a connection at once
                    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

            with ThreadPoolExecutor(threads) as pool_threads:
                return set(pool_threads.map(one, range(threads)))

        first, second = burst(), burst()
    finally:
        engine.dispose()
        drop_postgres_database(POSTGRES_URL, url)

    assert len(first) == threads and second == first


def test_the_apis_read_sessions_hold_no_transaction_open_between_reads() -> None:
    """A polling reader (the API's `read_sessions`) leaves its connection idle, not "idle in
    transaction", between two reads of one session: no snapshot is held open for VACUUM to wait
    on, and each read is one round trip. It still sees every commit made meanwhile."""
    require_postgres()
    url = create_postgres_database(POSTGRES_URL)
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    reads = db.session_factory(url, readonly=True, autocommit=True)
    writes = db.session_factory(url)
    try:
        with writes.begin() as session:
            session.execute(text("CREATE TABLE notes (body text)"))
        with reads() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as conn:
                state = conn.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                                     {"pid": pid}).scalar_one()
            assert state == "idle"
            with writes.begin() as other:
                other.execute(text("INSERT INTO notes VALUES ('written meanwhile')"))
            assert session.execute(text("SELECT body FROM notes")).scalars().all() == ["written meanwhile"]
        # The writers' sessions, from the same URL, still run in transactions.
        with writes() as session:
            session.execute(text("SELECT 1"))
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as conn:
                state = conn.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :pid"),
                                     {"pid": pid}).scalar_one()
            assert state == "idle in transaction"
    finally:
        for factory in (reads, writes):
            factory.kw["bind"].dispose()
        admin.dispose()
        drop_postgres_database(POSTGRES_URL, url)
