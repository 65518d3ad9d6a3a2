"""Closing review items exactly once, and writing the waiting node's result in the same transaction.

Lock order, everywhere: the review item, then its run (the run engine locks the run first and
only ever inserts items, so no cycle). On SQLite every writer holds the database lock instead.
A closed item is never reopened; the caller commits, then asks a worker to advance the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidRequest
from core.statuses import TERMINAL, NodeStatus
from models import audit
from models.base import utcnow
from models.reviews import CANCELLED, DECIDED, EXPIRED, PENDING, ReviewItem
from models.runs import NodeRun, Run, store_result, waiting_node

ENDED = tuple(sorted(TERMINAL))  # in a fixed order: the statement is the same in every process
DEADLINE_ACTOR = "system:deadline"


def _waiting_node(session: Session, item: ReviewItem) -> tuple[Run, NodeRun] | str:
    """The run (now locked) and the node run still waiting for this item, or why there is none."""
    found = waiting_node(session, run_id=item.run_id, node_id=item.node_id, attempt=item.attempt)
    if isinstance(found, str) and not found.startswith("the run has ended"):
        return "the run no longer waits for this review"
    return found


def _close(item: ReviewItem, status: str, decision: str, actor: str, now: datetime,
           final_text: str | None, note: str) -> None:
    item.status, item.decision, item.decided_by, item.decided_at = status, decision, actor, now
    item.final_text, item.note = final_text, note


def decide(session: Session, *, item: ReviewItem, actor: str, reviewer: str, action: str,
           text: str | None, note: str, max_result_bytes: int) -> ReviewItem:
    """Record a reviewer's decision and the node's result (the item row must be locked; a result
    over `max_result_bytes` fails the node instead, see `models.runs.store_result`).

    Raises Conflict if the item is closed, claimed by someone else, or its run stopped waiting.
    """
    now = utcnow()
    if item.status != PENDING:
        raise Conflict(f"this review was already {item.status}"
                       + (f" by {item.decided_by}" if item.decided_by else ""), loc=["review_id"])
    holder = item.claimant(now)
    if holder is not None and holder != actor:
        raise Conflict(f"{holder} has claimed this review", loc=["review_id"])
    if action not in item.actions:
        raise InvalidRequest(f"{action!r} is not allowed for this review; allowed: {', '.join(item.actions)}",
                             loc=["body", "action"])
    if action == "edit" and text is None:
        raise InvalidRequest("`edit` needs the new `text`", loc=["body", "text"])
    found = _waiting_node(session, item)
    if isinstance(found, str):
        raise Conflict(found, loc=["review_id"])
    run, row = found
    final = text if action == "edit" and text is not None else item.text
    store_result(run=run, node=row, max_bytes=max_result_bytes, result={
        "decision": action, "text": final, "reviewer": reviewer, "note": note, "review_id": str(item.id)})
    after = None if action == "reject" else final
    _close(item, DECIDED, action, actor, now, after, note)
    audit.record(session, org_id=item.org_id, actor=actor, action="review.decide", target_type="review",
                 target_id=item.id,
                 details={"decision": action, "before": item.text, "after": after, "note": note,
                          "run_id": str(item.run_id), "node_id": item.node_id})
    return item


def _default_result(item: ReviewItem) -> dict[str, Any]:
    waited = (item.deadline_at - item.created_at).total_seconds() if item.deadline_at else 0
    if item.default_action == "fail":
        return {"error": f"nobody reviewed it within {waited:g} s", "review_id": str(item.id)}
    return {"decision": item.default_action, "text": item.text, "reviewer": "deadline",
            "note": f"no decision within {waited:g} s; the default action was applied",
            "review_id": str(item.id)}


def expire_due(session: Session, *, max_result_bytes: int, limit: int = 100) -> list[ReviewItem]:
    """Apply the default action of pending items past their deadline; returns those expired.

    Items a reviewer is deciding right now are skipped (locked); the next sweep sees them closed.
    """
    now = utcnow()
    due = session.scalars(
        select(ReviewItem).where(ReviewItem.status == PENDING, ReviewItem.deadline_at <= now)
        .order_by(ReviewItem.deadline_at).with_for_update(skip_locked=True).limit(limit)
    ).all()
    expired = []
    for item in due:
        found = _waiting_node(session, item)
        if isinstance(found, str):
            _cancel(session, item, found, now)
            continue
        run, row = found
        stored = store_result(run=run, node=row, result=_default_result(item), max_bytes=max_result_bytes)
        after = item.text if item.default_action == "approve" else None
        _close(item, EXPIRED, item.default_action, DEADLINE_ACTOR, now, after,
               str(stored.get("note") or stored.get("error") or ""))
        audit.record(session, org_id=item.org_id, actor=DEADLINE_ACTOR, action="review.expire",
                     target_type="review", target_id=item.id,
                     details={"decision": item.default_action, "before": item.text, "after": after,
                              "run_id": str(item.run_id), "node_id": item.node_id})
        expired.append(item)
    return expired


def _cancel(session: Session, item: ReviewItem, reason: str, now: datetime) -> None:
    item.status, item.decided_at, item.note = CANCELLED, now, reason
    audit.record(session, org_id=item.org_id, actor="system", action="review.cancel", target_type="review",
                 target_id=item.id, details={"reason": reason, "run_id": str(item.run_id)})


def close_orphans(session: Session, *, limit: int = 200) -> int:
    """Cancel pending items whose run ended or stopped waiting for them (cancelled, timed out)."""
    now = utcnow()
    node = (NodeRun.run_id == ReviewItem.run_id) & (NodeRun.node_id == ReviewItem.node_id)
    orphans = session.scalars(
        select(ReviewItem).join(Run, Run.id == ReviewItem.run_id).outerjoin(NodeRun, node)
        .where(ReviewItem.status == PENDING,
               or_(Run.status.in_(ENDED), NodeRun.id.is_(None), NodeRun.status != NodeStatus.waiting,
                   NodeRun.attempts != ReviewItem.attempt))
        .with_for_update(of=ReviewItem, skip_locked=True).limit(limit)
    ).all()
    for item in orphans:
        _cancel(session, item, "the run no longer waits for this review", now)
    return len(orphans)
