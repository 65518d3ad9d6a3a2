"""The audit log: who did what to which object, and when. Rows outlive what they describe."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, new_id, utcnow


class AuditEntry(Base):
    """One recorded action; `actor` is the API key's id and name, or `cli`."""

    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target_type: Mapped[str] = mapped_column(String(50))
    target_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


def record(
    session: Session,
    *,
    org_id: uuid.UUID,
    actor: str,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the organization's audit log (in the caller's transaction)."""
    entry = AuditEntry(
        org_id=org_id, actor=actor, action=action, target_type=target_type,
        target_id=str(target_id), details=details or {},
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session, *, org_id: uuid.UUID, target_id: str | None = None, limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    """A page of the organization's audit log, newest first, and the total count."""
    where = [AuditEntry.org_id == org_id]
    if target_id is not None:
        where.append(AuditEntry.target_id == target_id)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    stmt = select(AuditEntry).where(*where).order_by(AuditEntry.at.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt)), total
