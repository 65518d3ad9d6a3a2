"""What an inference worker tells the database while it generates, written in bulk.

Sixteen requests streaming a few tokens at a time would mean a hundred small transactions a
second; on two cores that costs the model real time. One reporter per worker process instead
writes every request's partial text in one transaction every `every_s` (`node_progress` events,
with a PostgreSQL NOTIFY per run so streams wake), and refreshes the heartbeat of every run it
serves every `heartbeat_s` — learning in the same pass which runs stopped waiting (cancelled),
so their requests can leave their batch.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.db import session_scope
from models.runs import Run, RunEvent

log = structlog.get_logger("mantle.inference")


class BulkReporter:
    """What both reporters share: a daemon thread that writes what is pending every `every_s` and
    beats every `heartbeat_s`; a beat sets the stop event of each request found no longer served."""

    heartbeat_s: float
    every_s: float
    failure_event = "reporter_failed"
    _lock: threading.Lock
    _stopped: dict[uuid.UUID, threading.Event]

    def flush(self) -> None:
        """Write what is pending."""
        raise NotImplementedError

    def _beat(self, ids: list[uuid.UUID]) -> None:
        raise NotImplementedError

    def _watched_ids(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._stopped)

    def _stop_gone(self, ids: list[uuid.UUID], alive: set[uuid.UUID]) -> None:
        with self._lock:
            for gone in set(ids) - alive:
                event = self._stopped.get(gone)
                if event is not None:
                    event.set()

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while True:
            time.sleep(self.every_s)
            try:
                self.flush()
                if time.monotonic() - last_beat >= self.heartbeat_s:
                    last_beat = time.monotonic()
                    watched = self._watched_ids()
                    if watched:
                        self._beat(watched)
            except Exception:  # a missed write is made good by the next pass's events or beat
                log.exception(self.failure_event)


class RunReporter(BulkReporter):
    """Batches progress events and heartbeats of the runs this process is serving."""

    def __init__(self, sessions: sessionmaker[Session], heartbeat_s: float, every_s: float = 0.2) -> None:
        self.sessions = sessions
        self.heartbeat_s = heartbeat_s
        self.every_s = every_s
        self._lock = threading.Lock()
        self._write = threading.Lock()
        self._pending: list[tuple[uuid.UUID, str, str, int]] = []
        self._watched: Counter[uuid.UUID] = Counter()
        self._stopped: dict[uuid.UUID, threading.Event] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mantle-reporter")
        self._thread.start()

    def watch(self, run_id: uuid.UUID) -> threading.Event:
        """Start serving a run: its heartbeat now (so a resent copy of its request is dropped) and
        from then on; the event is set once the run stops waiting."""
        with self._lock:
            self._watched[run_id] += 1
            stopped = self._stopped.setdefault(run_id, threading.Event())
        self._beat([run_id])
        return stopped

    def unwatch(self, run_id: uuid.UUID) -> None:
        """Done serving the run."""
        with self._lock:
            self._watched[run_id] -= 1
            if self._watched[run_id] <= 0:
                del self._watched[run_id]
                self._stopped.pop(run_id, None)

    def progress(self, run_id: uuid.UUID, node_id: str, delta: str, tokens: int) -> None:
        """Queue partial text for the run's event stream."""
        with self._lock:
            self._pending.append((run_id, node_id, delta, tokens))

    def flush(self) -> None:
        """Write every queued event now (before a result is recorded, so the stream has the whole
        text before the run's end)."""
        with self._write:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return
            with session_scope(self.sessions) as session:
                session.add_all([RunEvent(run_id=run_id, type="node_progress", node_id=node_id,
                                          data={"delta": delta, "completion_tokens": tokens})
                                 for run_id, node_id, delta, tokens in pending])
                if session.get_bind().dialect.name == "postgresql":
                    for run_id in {p[0] for p in pending}:
                        session.execute(text("SELECT pg_notify('mantle_runs', :run)"), {"run": str(run_id)})

    def _beat(self, run_ids: list[uuid.UUID]) -> None:
        with session_scope(self.sessions) as session:
            session.execute(update(Run).where(Run.id.in_(run_ids), Run.status == "waiting")
                            .values(heartbeat_at=utcnow()))
            waiting = set(session.scalars(select(Run.id).where(Run.id.in_(run_ids), Run.status == "waiting")))
        self._stop_gone(run_ids, waiting)

    def _watched_ids(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._watched)
