"""The review queue: list, read, claim and decide (keys with role reviewer or admin)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import PageDep, Reviewer, SessionDep
from api.review_schemas import (
    DecisionRequest,
    Edit,
    ReviewPage,
    ReviewRead,
    ReviewStatus,
    review_read,
    review_summary,
)
from models import reviews as review_store
from worker.reviews import decide_review

router = APIRouter(tags=["reviews"])

Group = Annotated[str | None, Query(max_length=100, description="Only this assignee group.")]


@router.get("/reviews", response_model=ReviewPage)
def list_reviews(
    principal: Reviewer, session: SessionDep, page: PageDep,
    status: Annotated[ReviewStatus | None, Query(description="Only items in this status.")] = None,
    app_id: Annotated[uuid.UUID | None, Query(description="Only this app's items.")] = None,
    assignee_group: Group = None,
) -> ReviewPage:
    """The organization's review queue, oldest first, with counts by status."""
    items, total = review_store.list_items(
        session, org_id=principal.org_id, status=status, app_id=app_id, assignee_group=assignee_group,
        limit=page.limit, offset=page.offset)
    counts = review_store.count_by_status(session, org_id=principal.org_id, app_id=app_id,
                                          assignee_group=assignee_group)
    return ReviewPage(items=[review_summary(i) for i in items], total=total, limit=page.limit,
                      offset=page.offset, counts=counts)


@router.get("/reviews/{review_id}", response_model=ReviewRead)
def get_review(review_id: uuid.UUID, request: Request, principal: Reviewer, session: SessionDep
               ) -> ReviewRead:
    """One item: the text, its context, what sent it to review and the run's trace so far."""
    item = review_store.get_item(session, org_id=principal.org_id, item_id=review_id)
    return review_read(session, item, request.app.state.registry, request.app.state.settings)


@router.post("/reviews/{review_id}/claim", response_model=ReviewRead)
def claim_review(review_id: uuid.UUID, request: Request, principal: Reviewer, session: SessionDep
                 ) -> ReviewRead:
    """Take the item for a while (`MANTLE_REVIEW_CLAIM_S`): others cannot decide it meanwhile (409)."""
    item = review_store.get_item(session, org_id=principal.org_id, item_id=review_id, lock=True)
    review_store.claim(session, item=item, actor=principal.actor,
                       ttl_s=request.app.state.settings.review_claim_s)
    session.flush()
    return review_read(session, item, request.app.state.registry, request.app.state.settings)


@router.post("/reviews/{review_id}/decision", response_model=ReviewRead)
def decide(review_id: uuid.UUID, body: DecisionRequest, request: Request, principal: Reviewer) -> ReviewRead:
    """Approve, edit or reject; the run resumes. A second decision on the same item is a 409."""
    decide_review(request.app.state.session_factory, request.app.state.submitter.enqueue,
                  org_id=principal.org_id, review_id=review_id, actor=principal.actor,
                  reviewer=principal.name, action=body.action,
                  text=body.text if isinstance(body, Edit) else None, note=body.note)
    with request.app.state.read_sessions() as session:
        item = review_store.get_item(session, org_id=principal.org_id, item_id=review_id)
        return review_read(session, item, request.app.state.registry, request.app.state.settings)
