"""Quotas per organization: model tokens per UTC day and model requests per minute.

An organization's limits are one row (`org_quotas`), set by an admin; what it used is counted in
`quota_counters`, one row per organization and window (`m:2030-01-31T10:05`, `d:2030-01-31`).
A call is admitted by one conditional upsert per limit (`INSERT ... ON CONFLICT DO UPDATE SET
used = used + 1 WHERE used + 1 <= limit RETURNING used`): the database decides, so API and
worker processes on any machine count together, and of two concurrent calls only one can take
the last unit. Both limits are taken in one savepoint: a call refused by the second gives back
what the first took.

Tokens are known only after a call, so admission takes one token (there must be one left) and
`charge_tokens` adds the rest with the call's usage, in the same transaction: the day's count is
exact once calls end, and the last admitted call may go past the limit by its own size.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, ForeignKey, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
from models.usage import tokens_on


class OnExceed(enum.StrEnum):
    """What a run's model node does over quota (the OpenAI-compatible API always answers 429)."""

    fail = "fail"
    wait = "wait"


class OrgQuota(Base):
    """An organization's limits; a missing row or a null limit means unlimited."""

    __tablename__ = "org_quotas"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                              primary_key=True)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger)
    requests_per_minute: Mapped[int | None]
    on_exceed: Mapped[str] = mapped_column(String(10), default=OnExceed.fail.value)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuotaCounter(Base):
    """What an organization used in one window."""

    __tablename__ = "quota_counters"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                              primary_key=True)
    window: Mapped[str] = mapped_column(String(30), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]


@dataclass(frozen=True)
class Refusal:
    """Why a call is over quota, and when to try again."""

    message: str
    retry_after_s: int
    on_exceed: OnExceed


class _Over(Exception):
    """Carries a refusal out of the savepoint, rolling it back."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def day_window(now: datetime) -> tuple[str, datetime]:
    """The UTC day's counter name and when it ends."""
    start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    return f"d:{start.date().isoformat()}", start + timedelta(days=1)


def minute_window(now: datetime) -> tuple[str, datetime]:
    """The minute's counter name and when it ends."""
    start = now.astimezone(UTC).replace(second=0, microsecond=0)
    return f"m:{start.strftime('%Y-%m-%dT%H:%M')}", start + timedelta(minutes=1)


def get_quota(session: Session, *, org_id: uuid.UUID) -> OrgQuota | None:
    """The organization's limits, if any were set."""
    return session.get(OrgQuota, org_id)


def set_quota(session: Session, *, org_id: uuid.UUID, tokens_per_day: int | None,
              requests_per_minute: int | None, on_exceed: OnExceed) -> OrgQuota:
    """Set the organization's limits; today's token count starts from what its calls used today."""
    row = session.get(OrgQuota, org_id)
    if row is None:
        row = OrgQuota(org_id=org_id)
        session.add(row)
    row.tokens_per_day, row.requests_per_minute = tokens_per_day, requests_per_minute
    row.on_exceed = on_exceed.value
    now = utcnow()
    window, ends = day_window(now)
    if session.get(QuotaCounter, (org_id, window)) is None:
        session.add(QuotaCounter(org_id=org_id, window=window, expires_at=ends,
                                 used=tokens_on(session, org_id=org_id, day=now.date())))
    session.flush()
    return row


def used(session: Session, *, org_id: uuid.UUID, now: datetime | None = None) -> tuple[int, int]:
    """Tokens used today and requests this minute, as counted for the quota."""
    now = now or utcnow()
    counts = [session.scalar(select(QuotaCounter.used).where(QuotaCounter.org_id == org_id,
                                                             QuotaCounter.window == window))
              for window, _ in (day_window(now), minute_window(now))]
    return int(counts[0] or 0), int(counts[1] or 0)


def _add(session: Session, *, org_id: uuid.UUID, window: str, expires_at: datetime, amount: int,
         limit: int | None) -> bool:
    """Add `amount` to a window's count, only if it stays within `limit` (None: always); atomic."""
    if limit is not None and amount > limit:
        return False
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(QuotaCounter).values(org_id=org_id, window=window, used=amount, expires_at=expires_at)
    counted = QuotaCounter.__table__.c.used
    stmt = stmt.on_conflict_do_update(
        index_elements=["org_id", "window"], set_={"used": counted + amount},
        where=None if limit is None else counted + amount <= limit)
    found = session.execute(stmt.returning(counted)).first()
    if found is not None and found[0] == amount:  # a new window: forget the organization's old ones
        session.execute(delete(QuotaCounter).where(QuotaCounter.org_id == org_id,
                                                   QuotaCounter.expires_at < utcnow() - timedelta(days=1)))
    return found is not None


def admit(session: Session, *, org_id: uuid.UUID, now: datetime | None = None) -> Refusal | None:
    """Count one model request against the organization's quota, or say why it is over (then
    nothing is counted)."""
    quota = session.get(OrgQuota, org_id)
    if quota is None or (quota.tokens_per_day is None and quota.requests_per_minute is None):
        return None
    now = now or utcnow()
    mode = OnExceed(quota.on_exceed)
    try:
        with session.begin_nested():
            if quota.requests_per_minute is not None:
                window, ends = minute_window(now)
                if not _add(session, org_id=org_id, window=window, expires_at=ends, amount=1,
                            limit=quota.requests_per_minute):
                    raise _Over(Refusal(f"the organization's quota of {quota.requests_per_minute} model "
                                        "requests per minute is used up", _seconds(now, ends), mode))
            if quota.tokens_per_day is not None:
                window, ends = day_window(now)
                if not _add(session, org_id=org_id, window=window, expires_at=ends, amount=1,
                            limit=quota.tokens_per_day):
                    raise _Over(Refusal(f"the organization's quota of {quota.tokens_per_day} model tokens "
                                        "per day (UTC) is used up", _seconds(now, ends), mode))
    except _Over as over:  # the savepoint gave back what the first limit took
        return over.refusal
    return None


def charge_tokens(session: Session, *, org_id: uuid.UUID, tokens: int, now: datetime | None = None) -> None:
    """Add a finished call's tokens to the day's count (admission already took one of them)."""
    quota = session.get(OrgQuota, org_id)
    if quota is None or quota.tokens_per_day is None or tokens <= 1:
        return
    window, ends = day_window(now or utcnow())
    _add(session, org_id=org_id, window=window, expires_at=ends, amount=tokens - 1, limit=None)


def _seconds(now: datetime, ends: datetime) -> int:
    return max(1, int((ends - now).total_seconds() + 0.999))

