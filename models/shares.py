"""Share links: a public, unguessable URL for one app, with an expiry, an access code and limits.

Usage is counted in `share_usage`, one row per (share, bucket, window), incremented with an
upsert in the caller's transaction: every API process sees the same counts, and a refused or
failed request that rolls back never spends any of the quota.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import NotFound
from models.base import Base, JSONType, new_id, utcnow

DEFAULT_LIMITS: dict[str, int] = {"visitor_per_minute": 10, "link_per_minute": 60, "daily_quota": 1000}


class Share(Base):
    """A public link to one app: a pinned version, or `version_number` None for the latest published."""

    __tablename__ = "shares"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    version_number: Mapped[int | None]
    access_code_hash: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # No column defaults: the ORM would put them in place of an explicit None ("no limit").
    visitor_per_minute: Mapped[int | None]
    link_per_minute: Mapped[int | None]
    daily_quota: Mapped[int | None]
    embed_origins: Mapped[list[str]] = mapped_column(JSONType, default=list)  # none: no site may frame it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def has_access_code(self) -> bool:
        """Whether visitors must enter a code."""
        return self.access_code_hash is not None

    def state(self, now: datetime | None = None) -> str:
        """`active`, `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


class ShareUsage(Base):
    """How many runs one bucket of a share (the link, a visitor, the day) started in one window."""

    __tablename__ = "share_usage"

    share_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(default=0)


def new_slug() -> str:
    """An unguessable slug: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def hash_code(code: str) -> str:
    """A salted, slow digest of an access code (codes are short, so they must not hash fast)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_code(stored: str, code: str) -> bool:
    """Whether `code` matches a digest made by `hash_code`."""
    try:
        _, salt, expected = stored.split("$")
        digest = hashlib.scrypt(code.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


def get_share(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, share_id: uuid.UUID,
              lock: bool = False) -> Share:
    """The organization's share of this app, or NotFound."""
    stmt = select(Share).where(Share.id == share_id, Share.org_id == org_id, Share.app_id == app_id)
    share = session.scalar(stmt.with_for_update() if lock else stmt)
    if share is None:
        raise NotFound("share not found", loc=["share_id"])
    return share


def list_shares(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, limit: int, offset: int
                ) -> tuple[list[Share], int]:
    """A page of the app's shares, newest first, and the total count."""
    where = [Share.org_id == org_id, Share.app_id == app_id]
    total = session.scalar(select(func.count()).select_from(Share).where(*where)) or 0
    stmt = select(Share).where(*where).order_by(Share.created_at.desc(), Share.id).limit(limit).offset(offset)
    return list(session.scalars(stmt)), total


def find_by_slug(session: Session, *, slug: str) -> Share | None:
    """The share behind a public slug, whatever its state (the caller decides 404 or 410)."""
    return session.scalar(select(Share).where(Share.slug == slug))


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit to count a request against: a bucket, its window length and its maximum."""

    bucket: str
    window_s: int
    maximum: int

    def window(self, now: datetime) -> int:
        """The start of the current window, in seconds since the epoch."""
        stamp = int(now.timestamp())
        return stamp - stamp % self.window_s

    def retry_after(self, now: datetime) -> int:
        """Seconds until the current window ends."""
        return max(1, self.window(now) + self.window_s - int(now.timestamp()))


def _upsert(session: Session, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ShareUsage).values(**values, count=1)
    return stmt.on_conflict_do_update(
        index_elements=["share_id", "bucket", "window_start"], set_={"count": ShareUsage.count + 1},
    ).returning(ShareUsage.count)


def count_usage(session: Session, *, share_id: uuid.UUID, limits: list[Limit], now: datetime
                ) -> Limit | None:
    """Count one run against every limit; the first limit it goes over, or None.

    The caller rolls back when a limit is returned, so a refused run is never counted.
    """
    exceeded = None
    for limit in limits:
        values = {"share_id": share_id, "bucket": limit.bucket, "window_start": limit.window(now)}
        count = session.execute(_upsert(session, values)).scalar_one()
        if count == 1 and limit.window_s >= 86400:
            # A new day: forget windows older than yesterday, so the table stays small.
            session.execute(delete(ShareUsage).where(ShareUsage.share_id == share_id,
                                                     ShareUsage.window_start < limit.window(now) - 86400))
        if count > limit.maximum and exceeded is None:
            exceeded = limit
    return exceeded


def release_usage(session: Session, *, share_id: uuid.UUID, limits: list[Limit], now: datetime) -> None:
    """Give back one count taken by `count_usage` in the same windows (a reservation not spent)."""
    for limit in limits:
        session.execute(update(ShareUsage).where(
            ShareUsage.share_id == share_id, ShareUsage.bucket == limit.bucket,
            ShareUsage.window_start == limit.window(now), ShareUsage.count > 0,
        ).values(count=ShareUsage.count - 1))


def over_limit(session: Session, *, share_id: uuid.UUID, limits: list[Limit], now: datetime) -> Limit | None:
    """The first limit already used up in its current window (without counting anything)."""
    for limit in limits:
        used = session.scalar(select(ShareUsage.count).where(
            ShareUsage.share_id == share_id, ShareUsage.bucket == limit.bucket,
            ShareUsage.window_start == limit.window(now)))
        if used is not None and used >= limit.maximum:
            return limit
    return None
