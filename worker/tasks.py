"""Celery tasks of the run queue. They take ids, open their own sessions and are idempotent."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

import structlog

from blocks.registry import load_registry
from core.settings import get_settings
from models.db import session_factory
from worker.celery_app import celery_app
from worker.engine import RunEngine
from worker.hooks import build_services
from worker.observability import run_logging
from worker.reviews import sweep
from worker.transport import RUNS_QUEUE, send_advance

log = structlog.get_logger("mantle.tasks")


def enqueue_advance(run_id: uuid.UUID, eta: datetime | None = None) -> None:
    """Ask a run worker to advance the run (now, or at `eta`), from a worker."""
    send_advance(celery_app, run_id, eta)


@lru_cache
def engine() -> RunEngine:
    """This process's run engine (built after the worker forks)."""
    settings = get_settings()
    return RunEngine(
        sessions=session_factory(settings.resolved_database_url),
        registry=load_registry(tuple(settings.block_plugins)),
        settings=settings,
        enqueue=enqueue_advance,
        services=build_services(settings),
    )


@celery_app.task(name="runs.advance", acks_late=True, reject_on_worker_lost=True)
def advance(run_id: str) -> str | None:
    """Run every node of the run that can run now."""
    with run_logging(run_id):  # the engine adds the organization and app
        status = engine().advance(uuid.UUID(run_id))
        return status.value if status else None


@celery_app.task(name="runs.resume", acks_late=True, reject_on_worker_lost=True)
def resume(run_id: str, node_id: str, result: dict[str, Any]) -> bool:
    """Record a deferred node's result and advance its run."""
    with run_logging(run_id, node_id=node_id):
        return engine().record_result(uuid.UUID(run_id), node_id, result)


@celery_app.task(name="runs.reap")
def reap() -> int:
    """Re-enqueue runs whose worker stopped and runs due to wake up."""
    return engine().reap()


@celery_app.task(name="reviews.expire", queue=RUNS_QUEUE)
def expire_reviews() -> int:
    """Apply review deadlines (scheduled by beat)."""
    runs = engine()
    return sweep(runs.sessions, lambda run_id: runs.enqueue(run_id, None))
