"""What an inference worker tells the database while it answers OpenAI-compatible requests.

The API streams a request's answer from its row (`models/completions.py`), so the worker writes
the text as it grows. Like `RunReporter`, one reporter per process writes every request's latest
text in one transaction every `every_s` (a `NOTIFY` per request on PostgreSQL, so the API's
waiter wakes at once), refreshes the heartbeat of the requests it serves, and learns in the
same pass which ones stopped running (the caller went away): their generation is stopped.
"""

from __future__ import annotations

import threading
import uuid
from typing import cast

import structlog
from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.completions import Completion, CompletionStatus
from models.db import session_scope
from worker.inference.reporter import BulkReporter

log = structlog.get_logger("mantle.inference")

_TABLE = cast(Table, Completion.__table__)
_PROGRESS = (update(_TABLE).where(_TABLE.c.id == bindparam("row_id"),
                                  _TABLE.c.status == CompletionStatus.running.value)
             .values(text=bindparam("so_far"), completion_tokens=bindparam("tokens"),
                     heartbeat_at=bindparam("now")))


def notify(session: Session, completion_id: uuid.UUID) -> None:
    """Wake the API's waiter of the request when the transaction commits (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify('mantle_runs', :id)"), {"id": str(completion_id)})


class CompletionReporter(BulkReporter):
    """Writes the growing text and heartbeats of the requests this process serves, in bulk."""

    failure_event = "completion_reporter_failed"

    def __init__(self, sessions: sessionmaker[Session], heartbeat_s: float, every_s: float = 0.1) -> None:
        self.sessions = sessions
        self.heartbeat_s = heartbeat_s
        self.every_s = every_s
        self._lock = threading.Lock()
        self._write = threading.Lock()
        self._pending: dict[uuid.UUID, tuple[str, int]] = {}
        self._texts: dict[uuid.UUID, list[str]] = {}
        self._stopped: dict[uuid.UUID, threading.Event] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mantle-completions")
        self._thread.start()

    def watch(self, completion_id: uuid.UUID) -> threading.Event:
        """Start serving a request; the event is set once it stops running."""
        with self._lock:
            self._texts[completion_id] = []
            return self._stopped.setdefault(completion_id, threading.Event())

    def unwatch(self, completion_id: uuid.UUID) -> None:
        """Done serving the request."""
        with self._lock:
            self._texts.pop(completion_id, None)
            self._stopped.pop(completion_id, None)
            self._pending.pop(completion_id, None)

    def progress(self, completion_id: uuid.UUID, delta: str, tokens: int) -> None:
        """Queue more of the request's text."""
        with self._lock:
            parts = self._texts.get(completion_id)
            if parts is None:
                return
            parts.append(delta)
            self._pending[completion_id] = ("".join(parts), tokens)

    def restart(self, completion_id: uuid.UUID) -> None:
        """Forget the text so far (a fallback model answers from the start)."""
        with self._lock:
            if completion_id in self._texts:
                self._texts[completion_id] = []
                self._pending[completion_id] = ("", 0)

    def flush(self) -> None:
        """Write every queued text now (before the result, so the stream has it all)."""
        with self._write:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            now = utcnow()
            with session_scope(self.sessions) as session:
                session.execute(_PROGRESS, [{"row_id": i, "so_far": t, "tokens": n, "now": now}
                                            for i, (t, n) in pending.items()])
                for completion_id in pending:
                    notify(session, completion_id)

    def _beat(self, ids: list[uuid.UUID]) -> None:
        with session_scope(self.sessions) as session:
            session.execute(update(Completion).where(Completion.id.in_(ids),
                                                     Completion.status == CompletionStatus.running.value)
                            .values(heartbeat_at=utcnow()))
            running = set(session.scalars(select(Completion.id).where(
                Completion.id.in_(ids), Completion.status == CompletionStatus.running.value)))
        self._stop_gone(ids, running)
