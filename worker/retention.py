"""The pruner: deletes runs past their retention policy, on the scheduler (`runs.prune`).

Celery beat sends `runs.prune` every `MANTLE_RETENTION_INTERVAL_S`; each sweep goes through the
apps under a policy (models/retention.py says what is pruned and what is kept) and deletes their
runs in batches of `MANTLE_RETENTION_BATCH`, one short transaction each, for at most
`MANTLE_RETENTION_SWEEP_S`. The task holds one of a run worker's slots meanwhile, so with work left
it sends itself again, behind the runs already queued: a backlog (a policy just set on years of
runs) is worked off in many short tasks and transactions, never in one long one. On PostgreSQL a
batch waits at most a couple of seconds for a row lock (a reader holding a run `FOR UPDATE`) and
otherwise leaves the app to the next sweep, so the pruner queues behind the hot path, never the
other way round. Each batch logs one `runs_pruned` line and adds to `mantle_runs_pruned_total`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import structlog
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings, get_settings
from models.base import utcnow
from models.db import session_factory, session_scope
from models.retention import AppToPrune, apps_to_prune, count_boundary, drop_tombstones, prune_batch
from worker.celery_app import celery_app
from worker.observability import RUNS_PRUNED

log = structlog.get_logger("mantle.retention")

# A batch waits this long for a row lock held by someone else, then leaves the app for the next sweep.
LOCK_TIMEOUT = "2s"
TOMBSTONES_PER_SWEEP = 5000


@dataclass
class Sweep:
    """What one sweep did."""

    runs: int = 0
    batches: int = 0
    tombstones_dropped: int = 0
    finished: bool = True  # False: the time budget ran out with work left


class Pruner:
    """Applies every retention policy, batch by batch."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.batch = settings.retention_batch
        self.budget_s = settings.retention_sweep_s
        self.tombstone_days = settings.retention_tombstone_days

    def sweep(self, now: datetime | None = None) -> Sweep:
        """Prune what every policy says is past, as of `now`, within the time budget."""
        now = now or utcnow()
        deadline = time.monotonic() + self.budget_s
        done = Sweep()
        with session_scope(self.sessions) as session:
            apps = apps_to_prune(session)
        for app in apps:
            if not self._app(app, now, deadline, done):
                done.finished = False
                break
        with session_scope(self.sessions) as session:
            before = now - timedelta(days=self.tombstone_days)
            done.tombstones_dropped = drop_tombstones(session, before=before, limit=TOMBSTONES_PER_SWEEP)
        if done.runs or not done.finished:
            log.info("retention_sweep", runs=done.runs, batches=done.batches, finished=done.finished,
                     tombstones_dropped=done.tombstones_dropped)
        return done

    def _app(self, app: AppToPrune, now: datetime, deadline: float, done: Sweep) -> bool:
        """Prune one app's runs batch by batch; False when the time budget ran out."""
        boundary = None
        if app.policy.keep_runs is not None:
            # Computed once per sweep: newer runs only push it forward, so a stale one prunes less.
            with session_scope(self.sessions) as session:
                boundary = count_boundary(session, app_id=app.app_id, keep_runs=app.policy.keep_runs)
        while True:
            if time.monotonic() > deadline:
                return False
            started = time.perf_counter()
            try:
                with session_scope(self.sessions) as session:
                    if session.get_bind().dialect.name == "postgresql":
                        session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                    pruned = prune_batch(session, app=app, now=now, boundary=boundary, limit=self.batch)
            except OperationalError as exc:  # a lock held too long (or the database away): next sweep
                log.warning("retention_batch_failed", org_id=str(app.org_id), app_id=str(app.app_id),
                            error=str(exc.orig or exc).splitlines()[0])
                return True
            if pruned.runs == 0:
                return True
            RUNS_PRUNED.labels(app.source).inc(pruned.runs)
            done.runs += pruned.runs
            done.batches += 1
            log.info("runs_pruned", org_id=str(app.org_id), app_id=str(app.app_id),
                     policy=app.policy.describe(), source=app.source, runs=pruned.runs,
                     node_runs=pruned.node_runs, events=pruned.events, reviews=pruned.reviews,
                     sms_detached=pruned.sms_detached, seconds=round(time.perf_counter() - started, 4))


@lru_cache
def pruner() -> Pruner:
    """This process's pruner (built after the worker forks)."""
    settings = get_settings()
    return Pruner(session_factory(settings.resolved_database_url), settings)


@celery_app.task(name="runs.prune")
def prune() -> int:
    """Delete runs past their retention policy; returns how many (child runs included)."""
    done = pruner().sweep()
    if not done.finished:
        prune.apply_async()
    return done.runs
