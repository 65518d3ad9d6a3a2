"""A run is looked up by its primary key, whatever PostgreSQL planned for the statement: reading one
run of an organization with thousands costs what reading one of a new organization does.

With the organization in the WHERE clause as well, a connection that had sent the look-up a few
times while the organization had few runs kept a generic plan on the index of the organization's
runs (PostgreSQL caches it for a prepared statement; psycopg prepares a statement on its fifth
use), and then read every run of the organization to find one: in the load benchmark each read
cost more as runs were added, 0.6 ms of the server's time after a minute. The plans checked here
are the server's own, sent back by `auto_explain` as the statements run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import NotFound
from migrations.run import upgrade
from models.apps import create_app
from models.db import driver, session_factory, session_scope
from models.orgs import create_org
from models.runs import check_run, get_run, get_run_and_nodes
from tests.conftest import create_postgres_database, drop_postgres_database

MORE_RUNS = 5000
ADD_RUNS = ("INSERT INTO runs (id, org_id, app_id, draft, trigger, kind, status, inputs, created_at, "
            "heartbeat_at) SELECT gen_random_uuid(), :org, :app, false, 'api', 'run', 'succeeded', "
            "'{}'::jsonb, now(), now() FROM generate_series(1, :n)")


@pytest.fixture
def database(postgres_admin_url: str) -> Iterator[str]:
    url = create_postgres_database(postgres_admin_url)
    try:
        upgrade(url)
        yield url
    finally:
        drop_postgres_database(postgres_admin_url, url)


def test_a_run_is_read_by_its_key_however_many_runs_its_organization_gets(database: str) -> None:
    sessions = session_factory(database)
    with session_scope(sessions) as session:
        org, other = create_org(session, name="busy"), create_org(session, name="other")
        app = create_app(session, org_id=org.id, name="app", description="", draft={"nodes": [], "edges": []})
        session.execute(text(ADD_RUNS), {"org": org.id, "app": app.id, "n": 3})
        org_id, other_id, app_id = org.id, other.id, app.id
        run_id: uuid.UUID = session.scalar(text("SELECT id FROM runs LIMIT 1"))

    def look_up_all(session: Session) -> None:
        run, nodes = get_run_and_nodes(session, org_id=org_id, run_id=run_id)
        assert run.id == run_id and nodes == []
        check_run(session, org_id=org_id, run_id=run_id)
        assert get_run(session, org_id=org_id, run_id=run_id).id == run_id

    plans: list[str] = []
    with sessions() as session:  # one connection throughout, as a pooled one is
        for _ in range(20):  # prepared, and planned, while the organization has three runs
            look_up_all(session)
        with session_scope(sessions) as other_session:
            other_session.execute(text(ADD_RUNS), {"org": org_id, "app": app_id, "n": MORE_RUNS})
        connection = driver(session)
        connection.add_notice_handler(lambda notice: plans.append(str(notice.message_primary)))
        for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                        "SET auto_explain.log_analyze = on", "SET client_min_messages = log"):
            connection.execute(setting)
        look_up_all(session)
        assert get_run(session, org_id=org_id, run_id=run_id, lock=True).status == "succeeded"
        # Another organization's caller is told the run does not exist, by every look-up.
        for look_up in (get_run_and_nodes, check_run, get_run):
            with pytest.raises(NotFound):
                look_up(session, org_id=other_id, run_id=run_id)
        with pytest.raises(NotFound):
            get_run(session, org_id=other_id, run_id=run_id, lock=True)
        session.rollback()

    of_runs = [plan for plan in plans if " on runs" in plan]
    assert len(of_runs) >= 8, plans
    for plan in of_runs:
        assert "Index Scan using pk_runs on runs" in plan, plan
        assert "Rows Removed by Filter" not in plan, plan
