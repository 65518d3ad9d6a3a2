"""Requests to the OpenAI-compatible API: the record an inference worker serves and the API reads.

A request is stored before it is sent (the Celery message carries only its id), so a resent
message asks for exactly the same thing and a worker that died mid-answer is replaced: a row
whose heartbeat went quiet is claimed again. The worker writes the text as it grows (in bulk, see
`worker/inference/completions.py`) and the result with its usage in one transaction; the API
streams the text from the row. An `Idempotency-Key` names one request per organization: a retry
with the same key gets the same answer, never a second billed one. Rows are pruned a day after
they end.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict
from models.base import Base, new_id, utcnow


class CompletionStatus(enum.StrEnum):
    """Where a request stands."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


ENDED = frozenset({CompletionStatus.succeeded, CompletionStatus.failed, CompletionStatus.cancelled})


class Completion(Base):
    """One chat completion request and, as it is generated, its answer."""

    __tablename__ = "completions"
    __table_args__ = (UniqueConstraint("org_id", "idempotency_key"),
                      Index("ix_completions_status_heartbeat", "status", "heartbeat_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    deployment: Mapped[str] = mapped_column(String(100))
    # What to generate: messages, sampling, limits (the inference worker's payload).
    request: Mapped[dict[str, Any]]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default=CompletionStatus.queued.value)
    text: Mapped[str] = mapped_column(Text, default="")
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int] = mapped_column(default=0)
    finish_reason: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


def create_completion(session: Session, *, org_id: uuid.UUID, deployment: str, request: dict[str, Any],
                      idempotency_key: str | None = None) -> tuple[Completion, bool]:
    """A queued request and whether it is new (False: the Idempotency-Key's earlier request)."""
    if idempotency_key is not None:
        earlier = _by_key(session, org_id=org_id, key=idempotency_key)
        if earlier is not None:
            return _same(earlier, deployment, request), False
    row = Completion(org_id=org_id, deployment=deployment, request=request, idempotency_key=idempotency_key)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its completion.
        earlier = _by_key(session, org_id=org_id, key=idempotency_key or "")
        if earlier is None:
            raise
        return _same(earlier, deployment, request), False
    return row, True


def _by_key(session: Session, *, org_id: uuid.UUID, key: str) -> Completion | None:
    return session.scalar(select(Completion).where(Completion.org_id == org_id,
                                                   Completion.idempotency_key == key))


def _same(earlier: Completion, deployment: str, request: dict[str, Any]) -> Completion:
    if earlier.deployment != deployment or earlier.request != request:
        raise Conflict("this Idempotency-Key was used for a different request",
                       loc=["header", "Idempotency-Key"])
    return earlier


def read_completion(session: Session, *, org_id: uuid.UUID, completion_id: uuid.UUID) -> Completion | None:
    """The organization's request, if it exists."""
    row = session.get(Completion, completion_id)
    return row if row is not None and row.org_id == org_id else None


def claim(session: Session, *, completion_id: uuid.UUID, stale_before: datetime) -> Completion | None:
    """Take a request to serve: a queued one, or one whose worker went quiet; None if another has it."""
    taken = session.execute(
        update(Completion).where(Completion.id == completion_id, or_(
            Completion.status == CompletionStatus.queued.value,
            (Completion.status == CompletionStatus.running.value) & (Completion.heartbeat_at < stale_before)))
        .values(status=CompletionStatus.running.value, heartbeat_at=utcnow(), text="", completion_tokens=0))
    if getattr(taken, "rowcount", 0) != 1:
        return None
    return session.get(Completion, completion_id)


def cancel(session: Session, *, completion_id: uuid.UUID) -> None:
    """Stop a request nobody waits for any more (its worker drops it at the next write)."""
    session.execute(update(Completion).where(Completion.id == completion_id,
                                             Completion.status.in_((CompletionStatus.queued.value,
                                                                    CompletionStatus.running.value)))
                    .values(status=CompletionStatus.cancelled.value, finished_at=utcnow()))


def quiet(session: Session, *, stale_before: datetime,
          limit: int = 200) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """Requests not finished whose worker (or message) was lost: (id, organization, deployment)."""
    rows = session.execute(select(Completion.id, Completion.org_id, Completion.deployment).where(
        Completion.status.in_((CompletionStatus.queued.value, CompletionStatus.running.value)),
        Completion.heartbeat_at < stale_before).limit(limit)).all()
    if rows:  # one resend per quiet period
        session.execute(update(Completion).where(Completion.id.in_([r[0] for r in rows]))
                        .values(heartbeat_at=utcnow()))
    return [(r[0], r[1], r[2]) for r in rows]


def prune(session: Session, *, ended_before: datetime) -> int:
    """Forget requests that ended before the given time (their usage stays); returns how many."""
    result = session.execute(delete(Completion).where(Completion.finished_at < ended_before))
    return int(getattr(result, "rowcount", 0) or 0)
