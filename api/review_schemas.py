"""Request and response bodies of the review queue API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy.orm import Session

from api.schemas import PageOf, Read, Request, RunRead
from api.trace import run_read
from blocks.registry import Registry
from core.settings import Settings
from models.base import utcnow
from models.reviews import ReviewItem
from models.runs import Run

ReviewStatus = Literal["pending", "decided", "expired", "cancelled"]
PREVIEW_CHARS = 280


class ReviewSummary(Read):
    """A review item in the queue; `claimed_by` is set only while a claim is live."""

    id: uuid.UUID
    app_id: uuid.UUID
    run_id: uuid.UUID
    node_id: str
    status: ReviewStatus
    preview: str = Field(description=f"The first {PREVIEW_CHARS} characters of the text.")
    instructions: str
    actions: list[str]
    assignee_group: str | None
    default_action: str
    deadline_at: datetime | None
    created_at: datetime
    claimed_by: str | None = None
    claim_expires_at: datetime | None = None
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None


class ReviewRead(ReviewSummary):
    """A review item with everything a reviewer needs: the text, its context, the run so far."""

    text: str
    context: Any = None
    findings: Any = Field(default=None,
                          description="What sent it to review (a governance policy's findings).")
    final_text: str | None
    note: str | None
    run: RunRead | None = None


class ReviewPage(PageOf[ReviewSummary]):
    """A page of the queue, and how many items each status holds (under the same app/group filter)."""

    counts: dict[str, int]


class _Decision(Request):
    note: str = Field(default="", max_length=5000, description="Why; kept in the audit log.")


class Approve(_Decision):
    """Send the text on as it is."""

    action: Literal["approve"]


class Edit(_Decision):
    """Send the reviewer's `text` on instead of the original."""

    action: Literal["edit"]
    text: str = Field(max_length=100_000, description="The edited text.")


class Reject(_Decision):
    """Send nothing on: the run takes the `rejected` branch, with the note."""

    action: Literal["reject"]


DecisionRequest = Annotated[Approve | Edit | Reject, Field(discriminator="action")]


def _fields(item: ReviewItem) -> dict[str, Any]:
    live = item.claimant(utcnow()) is not None
    return {
        "id": item.id, "app_id": item.app_id, "run_id": item.run_id, "node_id": item.node_id,
        "status": item.status, "preview": item.text[:PREVIEW_CHARS], "instructions": item.instructions,
        "actions": item.actions, "assignee_group": item.assignee_group, "default_action": item.default_action,
        "deadline_at": item.deadline_at, "created_at": item.created_at,
        "claimed_by": item.claimed_by if live else None,
        "claim_expires_at": item.claim_expires_at if live else None,
        "decision": item.decision, "decided_by": item.decided_by, "decided_at": item.decided_at,
    }


def review_summary(item: ReviewItem) -> ReviewSummary:
    """An item as the queue lists it."""
    return ReviewSummary(**_fields(item))


def review_read(session: Session, item: ReviewItem, registry: Registry, settings: Settings) -> ReviewRead:
    """An item with its text, context, findings and its run's trace so far."""
    run = session.get(Run, item.run_id)
    return ReviewRead(**_fields(item), text=item.text, context=item.context, findings=item.findings,
                      final_text=item.final_text, note=item.note,
                      run=run_read(session, run, registry, settings) if run is not None else None)
