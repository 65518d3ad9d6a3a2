"""Readiness probes shared by the API, the workers' health endpoint and `mantle db upgrade --wait`.

Each probe returns None when its dependency answers, or a short reason when it does not, so a
`/readyz` answer can name everything that is down at once.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from models.db import no_fork_meanwhile

log = structlog.get_logger("mantle.probes")

Probe = Callable[[], str | None]


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def database_probe(sessions: sessionmaker[Session]) -> Probe:
    """A probe that runs `SELECT 1` through `sessions`."""
    def probe() -> str | None:
        try:  # never half-done in a child forked meanwhile (see models/db.py)
            with no_fork_meanwhile(), sessions() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means unreachable; say how
            return f"database unreachable: {_reason(exc)}"
        return None

    return probe


def broker_probe(celery: Any) -> Probe:
    """A probe that connects to `celery`'s broker (Redis: a ping; the folder broker: a file written)."""
    def probe() -> str | None:
        folder = celery.conf.broker_transport_options.get("data_folder_out")
        try:
            if folder is not None:
                # kombu's folder transport "connects" without touching the disk: write a file.
                with tempfile.NamedTemporaryFile(dir=folder, prefix=".ready-", suffix=".part"):
                    pass
                return None
            with celery.connection_for_write(connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1, interval_start=0.1, timeout=2)
        except Exception as exc:  # any failure means unreachable; say how
            return f"broker unreachable: {_reason(exc)}"
        return None

    return probe


def run_probes(probes: Mapping[str, Probe]) -> dict[str, str]:
    """What is down: component name to reason (empty when everything answers)."""
    down = {}
    for name, probe in probes.items():
        reason = probe()
        if reason is not None:
            down[name] = reason
    return down


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Retry connecting until the database answers; raise its last error after `timeout` seconds.

    A database container reports healthy a moment before it accepts this user's connections,
    and a restarted one takes a while: the migration waits instead of failing the deployment.
    """
    deadline = time.monotonic() + timeout
    pause = 0.5
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except Exception as exc:  # retried until the deadline, then raised
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database_not_ready", error=_reason(exc), retry_in_s=pause)
        time.sleep(pause)
        pause = min(pause * 2, 5.0)
