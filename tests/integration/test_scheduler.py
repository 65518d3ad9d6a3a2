"""The scheduler on a real database (SQLite and PostgreSQL): it reads schedules from published
versions, fires each tick once, collapses ticks missed while it was down into one run, and
several schedulers sweeping at the same moment still start one run per tick.

Sweeps are given their `now`, so no test waits for a clock.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from blocks.registry import default_registry
from core.settings import Settings
from migrations.run import upgrade
from models import apps as app_store
from models.db import session_factory, session_scope
from models.orgs import create_org
from models.runs import Run
from models.schedules import AppSchedule
from tests.conftest import create_postgres_database, drop_postgres_database
from worker.schedules import Scheduler

T0 = datetime(2026, 1, 5, 10, 2, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[sessionmaker[Session]]:
    """A database of its own (schedulers look at every app of every organization)."""
    admin_url = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sched') / 'mantle.db'}"
    else:
        admin_url = request.getfixturevalue("postgres_admin_url")
        url = create_postgres_database(admin_url)
    upgrade(url)
    yield session_factory(url)
    if admin_url is not None:
        session_factory(url).kw["bind"].dispose()
        drop_postgres_database(admin_url, url)


def scheduler(sessions: sessionmaker[Session], tmp_path: Path, enqueued: list[uuid.UUID] | None = None
              ) -> Scheduler:
    settings = Settings(data_dir=tmp_path, secret_key="test-secret")
    sink = enqueued if enqueued is not None else []
    return Scheduler(sessions, default_registry(), settings, sink.append)


def schedule_graph(cron: str, timezone: str = "UTC") -> dict[str, Any]:
    tick = {"id": "tick", "type": "trigger.schedule", "config": {"cron": cron, "timezone": timezone}}
    say = {"id": "say", "type": "text.template", "config": {"template": "tick {{ scheduled_at }}"}}
    return {"nodes": [tick, say, {"id": "out", "type": "output"}],
            "edges": [{"source": "tick", "source_port": "scheduled_at", "target": "say",
                       "target_port": "scheduled_at"},
                      {"source": "say", "source_port": "text", "target": "out", "target_port": "text"}]}


def publish(sessions: sessionmaker[Session], graph: dict[str, Any],
            app_id: uuid.UUID | None = None) -> uuid.UUID:
    """Publish `graph` as a new app (or the next version of `app_id`)."""
    with session_scope(sessions) as session:
        if app_id is None:
            org = create_org(session, name=f"sched-{uuid.uuid4().hex[:8]}")
            app = app_store.create_app(session, org_id=org.id, name="scheduled", description="", draft=graph)
        else:
            app = session.get_one(app_store.App, app_id)
        app_store.publish(session, app=app, graph=graph, note="", actor="test")
        return app.id


def runs_of(sessions: sessionmaker[Session], app_id: uuid.UUID) -> list[Run]:
    with sessions() as session:
        return list(session.scalars(select(Run).where(Run.app_id == app_id).order_by(Run.created_at)))


def schedule_row(sessions: sessionmaker[Session], app_id: uuid.UUID) -> AppSchedule:
    with sessions() as session:
        return session.get_one(AppSchedule, app_id)


def test_each_tick_fires_once_with_the_published_version(sessions: sessionmaker[Session],
                                                         tmp_path: Path) -> None:
    app_id = publish(sessions, schedule_graph("*/5 * * * *"))
    enqueued: list[uuid.UUID] = []
    sched = scheduler(sessions, tmp_path, enqueued)
    sched.sweep(T0)
    assert schedule_row(sessions, app_id).next_at == datetime(2026, 1, 5, 10, 5, tzinfo=UTC)
    sched.sweep(T0 + timedelta(minutes=2))
    assert runs_of(sessions, app_id) == []
    sched.sweep(datetime(2026, 1, 5, 10, 5, 3, tzinfo=UTC))
    sched.sweep(datetime(2026, 1, 5, 10, 5, 40, tzinfo=UTC))
    (run,) = runs_of(sessions, app_id)
    assert (run.trigger, run.version_number, run.status) == ("schedule", 1, "queued")
    assert run.inputs == {"scheduled_at": "2026-01-05T10:05:00+00:00"} and run.id in enqueued
    row = schedule_row(sessions, app_id)
    assert row.next_at == datetime(2026, 1, 5, 10, 10, tzinfo=UTC) and row.last_run_id == run.id


def test_ticks_missed_while_down_run_once_on_return(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    app_id = publish(sessions, schedule_graph("*/5 * * * *"))
    sched = scheduler(sessions, tmp_path)
    sched.sweep(T0)
    sched.sweep(T0 + timedelta(hours=3, minutes=5))  # 37 ticks went by while nothing ran
    (run,) = runs_of(sessions, app_id)
    assert run.inputs == {"scheduled_at": "2026-01-05T13:05:00+00:00"}  # the latest of them
    assert schedule_row(sessions, app_id).next_at == datetime(2026, 1, 5, 13, 10, tzinfo=UTC)


def test_several_schedulers_sweeping_at_once_start_one_run_per_tick(sessions: sessionmaker[Session],
                                                                     tmp_path: Path) -> None:
    app_id = publish(sessions, schedule_graph("0 * * * *"))
    scheduler(sessions, tmp_path).sweep(T0)
    now = datetime(2026, 1, 5, 11, 0, 1, tzinfo=UTC)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(timeout=10)
            scheduler(sessions, tmp_path).sweep(now)
        except BaseException as exc:  # reported below, with the run count
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(runs_of(sessions, app_id)) == 1


def test_a_scheduler_that_read_a_row_before_it_moved_on_cannot_fire_the_tick_again(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    app_id = publish(sessions, schedule_graph("0 * * * *"))
    sched = scheduler(sessions, tmp_path)
    sched.sweep(T0)
    now = datetime(2026, 1, 5, 11, 0, 5, tzinfo=UTC)
    sched.sweep(now)
    with session_scope(sessions) as session:  # as a slow scheduler still sees it
        session.get_one(AppSchedule, app_id).next_at = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
    sched.sweep(now)
    assert len(runs_of(sessions, app_id)) == 1


def test_republishing_keeps_or_moves_the_schedule_and_other_triggers_never_fire(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    sched = scheduler(sessions, tmp_path)
    app_id = publish(sessions, schedule_graph("0 9 * * *", "Europe/Paris"))
    sched.sweep(T0)
    assert schedule_row(sessions, app_id).next_at == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)  # 9:00 in Paris
    publish(sessions, schedule_graph("0 9 * * *", "Europe/Paris"), app_id)
    sched.sweep(T0 + timedelta(hours=1))
    row = schedule_row(sessions, app_id)
    assert row.version_number == 2 and row.next_at == datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
    publish(sessions, schedule_graph("30 * * * *"), app_id)
    sched.sweep(T0)
    assert schedule_row(sessions, app_id).next_at == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    api_graph = {"nodes": [{"id": "in", "type": "trigger.api"}, {"id": "out", "type": "output"}],
                 "edges": [{"source": "in", "source_port": "text", "target": "out", "target_port": "text"}]}
    publish(sessions, api_graph, app_id)
    sched.sweep(T0 + timedelta(days=1))
    row = schedule_row(sessions, app_id)
    assert (row.version_number, row.cron, row.next_at) == (4, None, None)
    assert runs_of(sessions, app_id) == []
