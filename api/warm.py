"""What an API server does once, before it takes its first request, so no first user pays for it.

The first request to start a run after a start used to pay about 0.1 s that no later one does:
Celery resolves its result backend on the first `send_task` (an entry-point scan and imports)
and opens the broker connection; the first text to an SMS app also built its published
version's blocks (templates compiled). An SMS webhook has Twilio waiting on it, so `warm_up`
does all of this in the lifespan, before uvicorn accepts connections (and so before `/readyz`
can answer). A broker or database that is down is not an error here: `/readyz` names it.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import select

from models.apps import AppVersion, published_version
from models.sms import SmsNumber

log = structlog.get_logger("mantle.api")


def warm_up(app: FastAPI) -> None:
    """Open the broker connection and build the SMS apps' published versions (see the docstring)."""
    started = time.perf_counter()
    state = app.state
    celery: Any = state.submitter.celery
    try:
        celery.backend  # noqa: B018  (resolving it is the work: an entry-point scan and imports)
        with celery.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:  # down now: /readyz says so, and the first run retries the connection
        log.warning("warm_up_broker_unavailable", error=type(exc).__name__)
    versions = 0
    try:
        with state.read_sessions() as session:
            routes = session.execute(select(SmsNumber.org_id, SmsNumber.app_id)
                                     .where(SmsNumber.app_id.is_not(None)).distinct().limit(1000)).all()
            for org_id, app_id in routes:
                version = published_version(session, org_id=org_id, app_id=app_id)
                if version is not None:
                    graph = session.get_one(AppVersion, version.id).graph
                    state.submitter.analyses.get(version.id, lambda graph=graph: graph)
                    versions += 1
    except Exception as exc:  # a database that is down: /readyz says so
        log.warning("warm_up_database_unavailable", error=type(exc).__name__)
    log.info("api_warm", seconds=round(time.perf_counter() - started, 3), sms_app_versions=versions)
