"""Shared fixtures: real databases (SQLite always, PostgreSQL where reachable and always in CI).

Each test runs inside a transaction that is rolled back, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from migrations.run import upgrade
from models.db import make_engine
from models.orgs import Role, create_key, create_org

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("MANTLE_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


TESTS = Path(__file__).resolve().parent
# Folders whose tests start worker processes, a whole deployment or a browser.
HEAVY = ("chaos", "deploy", "engine", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that start worker processes or a browser are marked `slow` (`make check` leaves them
    to `make test`), and go first: parallel test processes (pytest-xdist) then share out the long
    modules at the start instead of one of them ending the run alone."""
    def heavy(item: pytest.Item) -> bool:
        parts = item.path.resolve().relative_to(TESTS).parts
        return len(parts) > 1 and parts[0] in HEAVY

    for item in items:
        if heavy(item):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: not heavy(item))  # stable: a module's tests stay together


def redis_database(first: int) -> int:
    """A Redis database (of six from `first`) that no other test process running beside this one
    uses: one per xdist worker (`gw0`, `gw1`, ...), else by process id."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else os.getpid()
    return first + index % 6


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def require_postgres() -> None:
    """Skip without PostgreSQL locally; fail in CI, where it is required."""
    reason = postgres_available()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI and unreachable at {POSTGRES_URL}: {reason}")
    pytest.skip(f"PostgreSQL unreachable ({reason})")


def require_redis(url: str) -> None:
    """Skip without Redis locally; fail in CI, where it is required."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # any failure to reach it
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable at {url}: {exc}")
        pytest.skip(f"Redis unreachable ({exc})")


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL to the PostgreSQL server's maintenance database (to create test databases)."""
    require_postgres()
    return POSTGRES_URL


def create_postgres_database(admin_url: str) -> str:
    """A fresh, empty PostgreSQL database; returns its URL."""
    name = f"mantle_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    """Drop a database made by `create_postgres_database`."""
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """A migrated, empty database of each backend, shared by the session's tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'mantle.db'}"
        upgrade(url)
        yield url
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = create_postgres_database(admin_url)
    upgrade(url)
    yield url
    drop_postgres_database(admin_url, url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The engine of the session's database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions inside one transaction that is rolled back after the test."""
    conn = engine.connect()
    outer = conn.begin()
    factory = sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield factory
    outer.rollback()
    conn.close()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and checking rows directly."""
    with sessions() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an API under test (no Twilio answers here: tests/integration/test_sms_numbers.py
    checks number ownership against the Twilio simulator)."""
    return Settings(data_dir=tmp_path, database_url="sqlite://", secret_key="test-secret",
                    twilio_verify_numbers=False)


@dataclass
class Tenant:
    """An organization with an admin key, and a client that sends it."""

    org_id: uuid.UUID
    name: str
    key: str
    client: TestClient


@pytest.fixture
def api(settings: Settings, sessions: sessionmaker[Session]) -> TestClient:
    """The API, on the test's database, without credentials."""
    return TestClient(create_app(settings, sessions=sessions), raise_server_exceptions=False)


def make_tenant(sessions: sessionmaker[Session], app: TestClient, name: str,
                role: Role = Role.admin) -> Tenant:
    """An organization with one key of `role`, and a client sending that key."""
    with sessions() as s:
        org = create_org(s, name=name)
        _, secret = create_key(s, org_id=org.id, name=f"{name} key", role=role)
        s.commit()
        org_id = org.id
    client = TestClient(app.app, headers={"Authorization": f"Bearer {secret}"},
                        raise_server_exceptions=False)
    return Tenant(org_id=org_id, name=name, key=secret, client=client)


@pytest.fixture
def tenant(sessions: sessionmaker[Session], api: TestClient) -> Tenant:
    """An organization with an admin key."""
    return make_tenant(sessions, api, "acme")


@pytest.fixture
def other_tenant(sessions: sessionmaker[Session], api: TestClient) -> Tenant:
    """A second organization, to prove isolation."""
    return make_tenant(sessions, api, "globex")


CHROMIUM = os.environ.get("MANTLE_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright; required in CI, skipped locally if absent.

    One per module, not per session: Playwright's sync API keeps an event loop running in the
    main thread while it is started, and a later module of the same test process that runs its
    own (`asyncio.run`, as the chaos and MCP tests do) would find it there."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"Chromium is required in CI and missing at {CHROMIUM}")
        pytest.skip(f"Chromium missing at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        yield chromium
        chromium.close()


def free_port() -> int:
    """A TCP port nothing listens on now (to give a server before it starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """An app served over real HTTP on a free local port."""

    url: str
    server: object


@contextmanager
def serve(app: object, port: int | None = None) -> Iterator[LiveServer]:
    """Serve an ASGI app with uvicorn in a background thread until the block ends (on `port` or any)."""
    import threading
    import time

    import uvicorn

    if port is None:
        port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,  # type: ignore[arg-type]
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
