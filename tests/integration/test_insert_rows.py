"""`models.db.insert_rows` and `update_rows` write on PostgreSQL (the rows as one JSON document,
through psycopg) exactly what SQLAlchemy's INSERT and UPDATE write: the same values and
timestamps, a JSON column's None as JSON null, integers past 64 bits, and the columns'
Python-side defaults for what the rows leave out. And a worker's step reads through psycopg
(`worker.engine.load_step`) what the ORM reads."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.errors import NotFound
from migrations.run import upgrade
from models import db
from models.apps import create_app
from models.base import Base, utcnow
from models.orgs import create_org
from models.runs import NodeRun, Run, get_run_and_nodes
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database, require_postgres
from worker.engine import load_step

REPO = Path(__file__).resolve().parents[2]
RUNS, NODE_RUNS, EVENTS, APPS = (Base.metadata.tables[name]
                                 for name in ("runs", "node_runs", "run_events", "apps"))


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


def changes(run_id: uuid.UUID, node_ids: dict[str, uuid.UUID], now: datetime
            ) -> dict[str, list[dict[str, Any]]]:
    """What a step writes back: the run ended, one node failed with an accented error, one waiting."""
    later = now.astimezone(timezone(timedelta(hours=-5))) + timedelta(seconds=2)  # another zone
    return {
        "runs": [{"id": run_id, "status": "failed", "outputs": None,
                  "error": {"message": "r\u00e9sum\u00e9 \U0001f600", "big": 2**70}, "started_at": now,
                  "finished_at": later, "heartbeat_at": later, "wake_at": None}],
        "node_runs": [{"id": node_ids["n0"], "status": "failed", "outputs": None, "error": "\u00e9chec",
                       "error_type": "timeout", "attempts": 2, "finished_at": later, "waiting_for": None,
                       "result": None, "continued": True},
                      {"id": node_ids["n2"], "status": "waiting", "outputs": {"partial": [1, None]},
                       "error": None, "error_type": None, "attempts": 1, "finished_at": None,
                       "waiting_for": {"kind": "review"}, "result": {"decision": "approve"},
                       "continued": False}],
    }


def test_updates_through_psycopg_are_the_updates_sqlalchemy_makes(sessions: sessionmaker[Session]) -> None:
    with db.session_scope(sessions) as session:
        org = create_org(session, name="updates")
        org_id, app_id = org.id, create_app(session, org_id=org.id, name="a", description="", draft={}).id
    now = utcnow()
    ours, theirs = rows(org_id, app_id, now), rows(org_id, app_id, now)
    with db.session_scope(sessions) as session:
        for table in (RUNS, NODE_RUNS, EVENTS):
            session.execute(insert(table), ours[table.name] + theirs[table.name])

    def ids(side: dict[str, list[dict[str, Any]]]) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
        return side["runs"][0]["id"], {row["node_id"]: row["id"] for row in side["node_runs"]}

    mine, reference = changes(*ids(ours), now), changes(*ids(theirs), now)
    with db.session_scope(sessions) as session, db.pipelined(session):
        for table in (RUNS, NODE_RUNS):
            db.update_rows(session, table, mine[table.name])
    with db.session_scope(sessions) as session:
        for table in (RUNS, NODE_RUNS):
            for row in reference[table.name]:
                values = {k: v for k, v in row.items() if k != "id"}
                session.execute(update(table).where(table.c.id == row["id"]).values(values))

    def stored(run_id: uuid.UUID) -> list[tuple[Any, ...]]:
        with sessions() as session:
            run = session.execute(text(
                "SELECT status, jsonb_typeof(outputs), error, started_at, finished_at, heartbeat_at, wake_at "
                "FROM runs WHERE id = :id"), {"id": run_id}).all()
            nodes = session.execute(text(
                "SELECT node_id, status, jsonb_typeof(outputs), outputs, error, error_type, attempts, "
                "finished_at, jsonb_typeof(waiting_for), waiting_for, result, continued FROM node_runs "
                "WHERE run_id = :id ORDER BY node_id"), {"id": run_id}).all()
        return [tuple(row) for row in [*run, *nodes]]

    assert stored(ours["runs"][0]["id"]) == stored(theirs["runs"][0]["id"])
    ended = stored(ours["runs"][0]["id"])
    assert ended[0][:3] == ("failed", "null", {"message": "r\u00e9sum\u00e9 \U0001f600", "big": 2**70})
    assert ended[0][4] == now + timedelta(seconds=2) and ended[0][6] is None
    assert ended[1][:5] == ("n0", "failed", "null", None, "\u00e9chec")
    assert ended[2][1] == "succeeded"  # not named: untouched
    assert ended[3][1:4] == ("waiting", "object", {"partial": [1, None]})


def test_a_step_reads_through_psycopg_what_the_orm_reads(sessions: sessionmaker[Session]) -> None:
    with db.session_scope(sessions) as session:
        org = create_org(session, name="reads")
        org_id, app_id = org.id, create_app(session, org_id=org.id, name="a", description="", draft={}).id
    side = rows(org_id, app_id, utcnow())
    run_id = side["runs"][0]["id"]
    with db.session_scope(sessions) as session:
        for table in (RUNS, NODE_RUNS, EVENTS):
            session.execute(insert(table), side[table.name])
    with db.session_scope(sessions) as session:
        loaded = load_step(session, run_id)
        assert load_step(session, uuid.uuid4()) is None
    with sessions() as session:
        run = session.get_one(Run, run_id)
        nodes = {n.node_id: n for n in session.scalars(select(NodeRun).where(NodeRun.run_id == run_id))}
        assert loaded is not None
        step_run, step_nodes = loaded
        for column in RUNS.columns:
            assert getattr(step_run, column.name) == getattr(run, column.name), column.name
        assert step_run.outputs == {"text": "b", "big": 2**70} and step_run.created_at.tzinfo is not None
        assert set(step_nodes) == set(nodes) == {"n0", "n1", "n2"}
        for node_id, row in step_nodes.items():
            assert row == {c.name: getattr(nodes[node_id], c.name) for c in NODE_RUNS.columns}, node_id

        # What GET /v1/runs/{id} reads, in one round trip: the same, and only for the run's organization.
        read, read_nodes = get_run_and_nodes(session, org_id=org_id, run_id=run_id)
        assert all(getattr(read, c.name) == getattr(run, c.name) for c in RUNS.columns)
        assert {n.node_id: n for n in read_nodes}.keys() == nodes.keys()
        for value in read_nodes:
            assert all(getattr(value, name) == getattr(nodes[value.node_id], name)
                       for name in ("status", "inputs", "outputs", "error", "attempts", "started_at",
                                    "waiting_for", "result", "reused", "block_type"))
        with pytest.raises(NotFound):
            get_run_and_nodes(session, org_id=uuid.uuid4(), run_id=run_id)


# A process whose first database work is a step (a prefork child's first task): nothing in it has
# built an ORM object or query yet, so the mappers are not configured when the step reads its run.
FIRST_STEP = """
import sys, uuid
from models import db
from worker.engine import load_step
with db.session_scope(db.session_factory(sys.argv[1])) as session:
    run, nodes = load_step(session, uuid.UUID(sys.argv[2]))
    print(run.org_id, run.status, sorted(nodes))
"""


def test_the_first_step_of_a_fresh_process_reads_its_run(sessions: sessionmaker[Session]) -> None:
    with db.session_scope(sessions) as session:
        org = create_org(session, name="first step")
        org_id, app_id = org.id, create_app(session, org_id=org.id, name="a", description="", draft={}).id
    side = rows(org_id, app_id, utcnow())
    with db.session_scope(sessions) as session:
        for table in (RUNS, NODE_RUNS, EVENTS):
            session.execute(insert(table), side[table.name])
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)

    done = subprocess.run([sys.executable, "-c", FIRST_STEP, url, str(side["runs"][0]["id"])],
                          capture_output=True, text=True, timeout=120, cwd=REPO)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split(maxsplit=2) == [str(org_id), "succeeded", "['n0', 'n1', 'n2']\n"]


def test_a_statement_skipped_after_a_failed_check_is_not_taken_for_prepared(
        sessions: sessionmaker[Session]) -> None:
    """psycopg prepares a statement on its sixth use. When that use is queued after a check that
    fails (a version published meanwhile), PostgreSQL skips it and rolls the implicit transaction
    back on its own; the pooled connection must not then believe it prepared: the statement's next
    use on it once failed with "prepared statement _pg3_5 does not exist" (a 500 on an SMS)."""
    with db.session_scope(sessions) as session:
        org_id = create_org(session, name="prepared").id

    def write(name: str, *, holds: bool = True) -> None:
        with db.session_scope(sessions) as session, db.pipelined(session, commit=True):
            db.send_check(session, "%(holds)s", {"holds": holds}, "the check failed")
            db.insert_rows(session, APPS, [{"id": uuid.uuid4(), "org_id": org_id, "name": name,
                                            "description": "", "draft": {}}])

    for i in range(5):
        write(f"app {i}")
    with pytest.raises(Exception) as failed:
        write("refused", holds=False)
    assert db.check_failed(failed.value)
    write("after")  # the same statement on the same pooled connection
    with db.session_scope(sessions) as session:
        names = session.execute(text("SELECT name FROM apps WHERE org_id = :o ORDER BY name"),
                                {"o": org_id}).scalars().all()
    assert names == ["after", "app 0", "app 1", "app 2", "app 3", "app 4"]
