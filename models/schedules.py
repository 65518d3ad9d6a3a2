"""What the scheduler knows about each published app: its cron, time zone and next tick.

There is one row per published app the scheduler has looked at (`cron` is null when the app's
latest version does not start with `trigger.schedule`), so finding the apps whose latest version
it has not read yet is one join. The row is also the lock that keeps several schedulers from
firing the same tick: the one that locks it starts the run and moves `next_at` on.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, and_, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.apps import App
from models.base import Base, utcnow


class AppSchedule(Base):
    """The schedule of an app's latest published version (none when `cron` is null)."""

    __tablename__ = "app_schedules"
    __table_args__ = (Index("ix_app_schedules_next_at", "next_at"),)

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    version_number: Mapped[int]
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str | None] = mapped_column(String(64))
    next_at: Mapped[datetime | None]
    last_tick_at: Mapped[datetime | None]
    last_run_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def unread_versions(session: Session, *, limit: int = 500) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """(app id, org id, latest version) of published apps whose latest version has no schedule row yet."""
    stmt = (select(App.id, App.org_id, App.latest_version)
            .outerjoin(AppSchedule, AppSchedule.app_id == App.id)
            .where(App.latest_version > 0,
                   or_(AppSchedule.app_id.is_(None), AppSchedule.version_number != App.latest_version))
            .limit(limit))
    return [(r[0], r[1], r[2]) for r in session.execute(stmt)]


def due(session: Session, *, now: datetime, limit: int = 100) -> list[AppSchedule]:
    """Schedules whose next tick has come, locked; rows another scheduler holds are passed over."""
    stmt = (select(AppSchedule)
            .where(and_(AppSchedule.cron.is_not(None), AppSchedule.next_at <= now))
            .order_by(AppSchedule.next_at).limit(limit)
            .with_for_update(skip_locked=True))
    return list(session.scalars(stmt))


def for_app(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID) -> AppSchedule | None:
    """The organization's schedule row of the app, if the scheduler has made one."""
    return session.scalar(select(AppSchedule).where(AppSchedule.org_id == org_id,
                                                    AppSchedule.app_id == app_id))
