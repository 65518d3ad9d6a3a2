"""The PostgreSQL pool checks a connection before use only after it sat idle: a connection the
server dropped meanwhile is replaced before the caller's query, which then succeeds."""

from __future__ import annotations

from collections.abc import Iterator
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
