"""Review items: the human review queue of an organization.

An item is opened in the same transaction that makes its node wait (one per node attempt),
and closed exactly once: `decided` by a reviewer, `expired` by its deadline's default action,
or `cancelled` when its run stopped waiting for it. Writing the node's result happens in
`models.review_decisions`, in the transaction that closes the item.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from models import audit
from models.base import Base, JSONType, new_id, utcnow

PENDING, DECIDED, EXPIRED, CANCELLED = "pending", "decided", "expired", "cancelled"
STATUSES = (PENDING, DECIDED, EXPIRED, CANCELLED)
ALL_ACTIONS = ["approve", "edit", "reject"]


class ReviewItem(Base):
    """One request for a person's decision on a text, held by a waiting node of a run."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("run_id", "node_id", "attempt"),
        Index("ix_review_items_org_status_created", "org_id", "status", "created_at"),
        Index("ix_review_items_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    instructions: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[str]] = mapped_column(JSONType)
    assignee_group: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    context: Mapped[Any] = mapped_column(JSONType, nullable=True)
    findings: Mapped[Any] = mapped_column(JSONType, nullable=True)
    default_action: Mapped[str] = mapped_column(String(20), default="fail")
    deadline_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    claim_expires_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(String(20))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    final_text: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)

    def claimant(self, now: datetime) -> str | None:
        """Who holds a live claim on the item, if anyone."""
        if self.claimed_by and self.claim_expires_at is not None and self.claim_expires_at > now:
            return self.claimed_by
        return None


def open_item(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, run_id: uuid.UUID, node_id: str,
              attempt: int, payload: Mapping[str, Any]) -> ReviewItem:
    """Queue a review for a node that suspends with `payload` (see `blocks.human_review`)."""
    now = utcnow()
    deadline_s = payload.get("deadline_s")
    item = ReviewItem(
        org_id=org_id, app_id=app_id, run_id=run_id, node_id=node_id, attempt=attempt, status=PENDING,
        instructions=str(payload.get("instructions") or ""),
        actions=[a for a in payload.get("actions") or ALL_ACTIONS if a in ALL_ACTIONS],
        assignee_group=payload.get("assignee_group"), text=str(payload.get("text") or ""),
        context=payload.get("context"), findings=payload.get("findings"),
        default_action=str(payload.get("default_action") or "fail"), created_at=now,
        deadline_at=now + timedelta(seconds=float(deadline_s)) if deadline_s else None,
    )
    session.add(item)
    return item


def get_item(session: Session, *, org_id: uuid.UUID, item_id: uuid.UUID, lock: bool = False) -> ReviewItem:
    """The organization's review item, or NotFound (also for another organization's item).

    Read by its id alone and its organization compared here, as `models.runs.get_run` does, so the
    plan is always the primary key's, never a scan of the organization's items; `lock`: the row is
    locked once it is known to be the organization's."""
    item = session.get(ReviewItem, item_id)
    if item is None or item.org_id != org_id:
        raise NotFound("review not found", loc=["review_id"])
    if lock:
        session.refresh(item, with_for_update=True)
    return item


def _filters(org_id: uuid.UUID, app_id: uuid.UUID | None, assignee_group: str | None) -> list[Any]:
    where: list[Any] = [ReviewItem.org_id == org_id]
    if app_id is not None:
        where.append(ReviewItem.app_id == app_id)
    if assignee_group is not None:
        where.append(ReviewItem.assignee_group == assignee_group)
    return where


def list_items(session: Session, *, org_id: uuid.UUID, status: str | None, app_id: uuid.UUID | None,
               assignee_group: str | None, limit: int, offset: int) -> tuple[list[ReviewItem], int]:
    """A page of the queue, oldest first, and the total count."""
    where = _filters(org_id, app_id, assignee_group)
    if status is not None:
        where.append(ReviewItem.status == status)
    total = session.scalar(select(func.count()).select_from(ReviewItem).where(*where)) or 0
    stmt = (select(ReviewItem).where(*where).order_by(ReviewItem.created_at, ReviewItem.id)
            .limit(limit).offset(offset))
    return list(session.scalars(stmt)), total


def count_by_status(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID | None = None,
                    assignee_group: str | None = None) -> dict[str, int]:
    """How many items the queue holds in each status (every status present, zeros included)."""
    stmt = (select(ReviewItem.status, func.count()).where(*_filters(org_id, app_id, assignee_group))
            .group_by(ReviewItem.status))
    counts = dict.fromkeys(STATUSES, 0)
    counts.update(session.execute(stmt).all())
    return counts


def queue_depth(session: Session) -> dict[str, int]:
    """Items in each status across every organization (for the operator's metrics)."""
    counts = dict.fromkeys(STATUSES, 0)
    stmt = select(ReviewItem.status, func.count()).group_by(ReviewItem.status)
    counts.update(session.execute(stmt).all())
    return counts


def claim(session: Session, *, item: ReviewItem, actor: str, ttl_s: float) -> ReviewItem:
    """Take a pending item for `ttl_s` seconds (the item row must be locked); renewing is allowed."""
    now = utcnow()
    if item.status != PENDING:
        raise Conflict(f"this review is already {item.status}", loc=["review_id"])
    holder = item.claimant(now)
    if holder is not None and holder != actor:
        until = f"{item.claim_expires_at:%Y-%m-%d %H:%M:%S} UTC"
        raise Conflict(f"{holder} has claimed this review until {until}", loc=["review_id"])
    item.claimed_by, item.claimed_at = actor, now
    item.claim_expires_at = now + timedelta(seconds=ttl_s)
    audit.record(session, org_id=item.org_id, actor=actor, action="review.claim", target_type="review",
                 target_id=item.id, details={"run_id": str(item.run_id), "node_id": item.node_id,
                                             "text": item.text,
                                             "expires_at": item.claim_expires_at.isoformat()})
    return item
