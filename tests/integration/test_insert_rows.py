"""`models.db.insert_rows` writes on PostgreSQL (the rows as one JSON document) exactly what
SQLAlchemy's INSERT writes: the same values and timestamps, a JSON column's None as JSON null,
integers past 64 bits, and the columns' Python-side defaults for what the rows leave out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from migrations.run import upgrade
from models import db
from models.apps import create_app
from models.base import Base, utcnow
from models.orgs import create_org
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database, require_postgres

RUNS, NODE_RUNS, EVENTS = (Base.metadata.tables[name] for name in ("runs", "node_runs", "run_events"))


@pytest.fixture
def sessions() -> Iterator[sessionmaker[Session]]:
    require_postgres()
    url = create_postgres_database(POSTGRES_URL)
    upgrade(url)
    try:
        yield db.session_factory(url)
    finally:
        db.session_factory(url).kw["bind"].dispose()
        drop_postgres_database(POSTGRES_URL, url)


def written(session: Session, run_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """Each stored row of the run (ids left out), with the JSON type of each JSON value."""
    runs = session.execute(text(
        "SELECT status, draft, trigger, kind, jsonb_typeof(inputs), jsonb_typeof(outputs), "
        "inputs, outputs, created_at FROM runs WHERE id = :id"), {"id": run_id}).all()
    nodes = session.execute(text(
        "SELECT node_id, block_type, status, attempts, continued, reused, jsonb_typeof(inputs), "
        "outputs, jsonb_typeof(waiting_for), jsonb_typeof(result), error FROM node_runs "
        "WHERE run_id = :id ORDER BY node_id"), {"id": run_id}).all()
    events = session.execute(text(
        "SELECT type, node_id, at, data, jsonb_typeof(data) FROM run_events WHERE run_id = :id ORDER BY id"),
        {"id": run_id}).all()
    return [tuple(row) for row in [*runs, *nodes, *events]]


def rows(org_id: uuid.UUID, app_id: uuid.UUID, now: datetime) -> dict[str, list[dict[str, Any]]]:
    run_id = uuid.uuid4()
    return {
        "runs": [{"id": run_id, "org_id": org_id, "app_id": app_id, "status": "succeeded",
                  "inputs": {"text": "a\u00e9"}, "outputs": {"text": "b", "big": 2**70}, "created_at": now}],
        "node_runs": [{"id": uuid.uuid4(), "run_id": run_id, "node_id": f"n{i}",
                       "block_type": "text.template", "status": "succeeded",
                       "inputs": None if i else {"text": "x"}, "outputs": {"n": i},
                       "error": None, "attempts": 1, "waiting_for": None, "result": None}
                      for i in range(3)],
        "run_events": [{"run_id": run_id, "type": "node_finished", "node_id": f"n{i}", "at": now,
                        "data": {"i": i, "nested": {"list": [1.5, None, "\u00e9"]}}} for i in range(3)],
    }


def test_rows_written_through_psycopg_are_the_rows_sqlalchemy_writes(sessions: sessionmaker[Session]) -> None:
    with db.session_scope(sessions) as session:
        org = create_org(session, name="rows")
        org_id, app_id = org.id, create_app(session, org_id=org.id, name="a", description="", draft={}).id
    now = utcnow()
    ours, theirs = rows(org_id, app_id, now), rows(org_id, app_id, now)
    with db.session_scope(sessions) as session, db.pipelined(session):
        for table in (RUNS, NODE_RUNS, EVENTS):
            db.insert_rows(session, table, ours[table.name])
    with db.session_scope(sessions) as session:
        for table in (RUNS, NODE_RUNS, EVENTS):
            session.execute(insert(table), theirs[table.name])

    with sessions() as session:
        mine, reference = written(session, ours["runs"][0]["id"]), written(session, theirs["runs"][0]["id"])
    assert len(mine) == 1 + 3 + 3 and mine == reference
    none_as_json_null = ("n1", "text.template", "succeeded", 1, False, False, "null", {"n": 1}, "null",
                         "null", None)
    assert none_as_json_null in mine
