"""An API on a database of its own, where every request commits: for races between real connections.

The usual `api` fixture shares one connection inside a rolled-back transaction, which serializes
everything; a race needs each request on its own connection, as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from migrations.run import upgrade
from models.db import session_factory, session_scope
from models.orgs import Role, create_key, create_org
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database, require_postgres


@dataclass
class Committed:
    """An API on its own migrated database, an admin key of one organization and its client."""

    url: str
    app: FastAPI
    sessions: sessionmaker[Session]
    org_id: uuid.UUID
    key: str
    client: TestClient


@contextmanager
def committed_api(kind: str, tmp: Path, **settings: Any) -> Iterator[Committed]:
    """The API on a fresh `sqlite` or `postgresql` database that is dropped afterwards.

    A test module makes it a fixture of its own, parametrized over both backends.
    """
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'mantle.db'}"
    else:
        require_postgres()
        url = create_postgres_database(POSTGRES_URL)
    try:
        upgrade(url)
        sessions = session_factory(url)
        with session_scope(sessions) as session:
            org = create_org(session, name=f"race-{uuid.uuid4().hex[:8]}")
            _, key = create_key(session, org_id=org.id, name="admin", role=Role.admin)
            org_id = org.id
        app = create_app(Settings(data_dir=tmp, database_url=url, secret_key="test-secret", **settings))
        client = TestClient(app, headers={"Authorization": f"Bearer {key}"}, raise_server_exceptions=False)
        yield Committed(url, app, sessions, org_id, key, client)
    finally:
        if kind != "sqlite":
            session_factory(url).kw["bind"].dispose()
            drop_postgres_database(POSTGRES_URL, url)
