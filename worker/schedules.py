"""The scheduler: starts runs of published apps whose trigger is `trigger.schedule`.

Celery beat sends `schedules.fire` every `MANTLE_SCHEDULE_INTERVAL_S`; each sweep

1. reads the latest published version of every app it has not read yet, and records its cron,
   time zone and next tick in `app_schedules` (a republished app keeps its next tick when its
   schedule did not change);
2. locks the rows whose tick has come (`FOR UPDATE SKIP LOCKED`: a second scheduler running
   at the same time passes them over), starts one run per row for the latest tick that has
   passed, and moves `next_at` past *now*. Ticks missed while nothing ran therefore become one
   run on return, not one per missed tick.

The run's idempotency key (`schedule:<app>:<tick>`, unique per organization) guards the same
tick a second time: even a scheduler that read a row before another moved it on cannot start
a second run for that tick.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from blocks.registry import Registry, load_registry
from blocks.trigger_schedule import ScheduleConfig, ScheduleTriggerBlock, last_tick, next_tick
from core.errors import MantleError
from core.settings import Settings, get_settings
from models.apps import AppVersion
from models.base import utcnow
from models.db import session_factory, session_scope
from models.schedules import AppSchedule, due, unread_versions
from worker.celery_app import celery_app
from worker.submit import Submitter
from worker.tasks import enqueue_advance

log = structlog.get_logger("mantle.schedules")


def schedule_of(graph: dict[str, Any]) -> ScheduleConfig | None:
    """The schedule trigger's config in a published graph, if it starts with one."""
    for node in graph.get("nodes", []):
        if node.get("type") == ScheduleTriggerBlock.type:
            try:
                return ScheduleConfig.model_validate(node.get("config") or {})
            except ValidationError:  # published before a stricter check: never fire it
                log.warning("schedule_unreadable", node_id=node.get("id"))
                return None
    return None


class Scheduler:
    """Reads schedules and starts the runs that are due; `enqueue` hands a new run to a worker."""

    def __init__(self, sessions: sessionmaker[Session], registry: Registry, settings: Settings,
                 enqueue: Callable[[uuid.UUID], None]) -> None:
        self.sessions = sessions
        self.submitter = Submitter(registry, settings)
        self.enqueue = enqueue

    def sweep(self, now: datetime | None = None) -> list[uuid.UUID]:
        """Read new versions, then start what is due at `now`; returns the runs started."""
        now = now or utcnow()
        self.read_versions(now)
        return self.fire(now)

    def read_versions(self, now: datetime) -> int:
        """Record the schedule of each app whose latest version is new to the scheduler."""
        with session_scope(self.sessions) as session:
            unread = unread_versions(session)
            for app_id, org_id, number in unread:
                try:
                    with session.begin_nested():  # another scheduler may record the same app first
                        self._record(session, app_id, org_id, number, now)
                except IntegrityError:
                    log.info("schedule_recorded_elsewhere", app_id=str(app_id))
        return len(unread)

    def _record(self, session: Session, app_id: uuid.UUID, org_id: uuid.UUID, number: int,
                now: datetime) -> None:
        version = session.scalar(select(AppVersion).where(AppVersion.app_id == app_id,
                                                          AppVersion.number == number))
        config = schedule_of(version.graph) if version is not None else None
        row = session.get(AppSchedule, app_id, with_for_update=True)
        if row is None:
            row = AppSchedule(app_id=app_id, org_id=org_id, version_number=number)
            session.add(row)
        row.version_number = number
        if config is None:
            row.cron = row.timezone = row.next_at = None
        elif (row.cron, row.timezone) != (config.cron, config.timezone) or row.next_at is None:
            row.cron, row.timezone = config.cron, config.timezone
            row.next_at = next_tick(config.cron, config.timezone, now)
            log.info("schedule_set", app_id=str(app_id), cron=config.cron, timezone=config.timezone,
                     next_at=row.next_at.isoformat())
        session.flush()

    def fire(self, now: datetime) -> list[uuid.UUID]:
        """Start one run for each schedule whose tick has come; returns the runs started."""
        started: list[uuid.UUID] = []
        with session_scope(self.sessions) as session:
            for row in due(session, now=now):
                assert row.cron is not None and row.timezone is not None
                tick = last_tick(row.cron, row.timezone, now)
                try:
                    with session.begin_nested():
                        run, created = self.submitter.create(
                            session, org_id=row.org_id, app_id=row.app_id,
                            inputs={"scheduled_at": tick.isoformat()}, version=row.version_number,
                            trigger="schedule", idempotency_key=f"schedule:{row.app_id}:{tick.isoformat()}")
                except MantleError as exc:  # a deleted version, say: skip the tick, keep the schedule
                    log.warning("schedule_run_refused", app_id=str(row.app_id), error=exc.message)
                    created = False
                if created:
                    row.last_run_id = run.id
                    started.append(run.id)
                row.last_tick_at = tick
                row.next_at = next_tick(row.cron, row.timezone, now)
        for run_id in started:  # committed: a worker may take them now
            self.enqueue(run_id)
        if started:
            log.info("schedules_fired", runs=len(started))
        return started


@lru_cache
def scheduler() -> Scheduler:
    """This process's scheduler."""
    settings = get_settings()
    return Scheduler(session_factory(settings.resolved_database_url),
                     load_registry(tuple(settings.block_plugins)), settings, enqueue_advance)


@celery_app.task(name="schedules.fire")
def fire() -> int:
    """Start the runs whose cron tick has come; returns how many."""
    return len(scheduler().sweep())
