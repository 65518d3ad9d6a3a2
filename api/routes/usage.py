"""What the organization's model calls consumed (`GET /v1/usage`) and may consume (its quota).

Usage is summed from the rows each answered call wrote with its result (`models/usage.py`):
runs' model nodes and OpenAI-compatible requests alike, filtered by time, app and model and
grouped by UTC day, app or model, with totals. The quota (tokens per UTC day, model requests per
minute) is read by builders and set by admins, like `mantle orgs quota`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Admin, Builder, SessionDep
from api.schemas import Request as RequestBody
from core.errors import InvalidInputs
from models import audit, quotas
from models.base import utcnow
from models.usage import GroupBy, UsageSum, summarize

router = APIRouter(tags=["usage"])
DEFAULT_SPAN = timedelta(days=30)


class UsageTotals(BaseModel):
    """Calls, tokens, cost and mean latency."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="From the deployments' prices; null when none has prices.")
    mean_latency_s: float | None


class UsageGroup(UsageTotals):
    """One group's sums."""

    key: str | None = Field(description="The UTC day (YYYY-MM-DD), app id or model name of the group.")


class UsageReport(BaseModel):
    """Usage between `start` (inclusive) and `end` (exclusive), grouped if asked, with totals."""

    start: datetime
    end: datetime
    group_by: GroupBy | None
    groups: list[UsageGroup]
    totals: UsageTotals


def _totals(found: UsageSum) -> UsageTotals:
    return UsageTotals(requests=found.requests, prompt_tokens=found.prompt_tokens,
                       completion_tokens=found.completion_tokens,
                       total_tokens=found.prompt_tokens + found.completion_tokens, cost=found.cost,
                       mean_latency_s=found.latency_s)


@router.get("/usage", response_model=UsageReport)
def get_usage(
    principal: Builder, session: SessionDep,
    start: Annotated[datetime | None, Query(alias="from", description="Default: 30 days before `to`.")
                     ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Default: now.")] = None,
    app_id: Annotated[uuid.UUID | None, Query(description="Only this app's calls.")] = None,
    model: Annotated[str | None, Query(max_length=100, description="Only this deployment's calls.")] = None,
    group_by: Annotated[GroupBy | None, Query(description="Sum by UTC day, app or model.")] = None,
) -> UsageReport:
    """The organization's model usage: calls, prompt and completion tokens, cost, mean latency."""
    end = end or utcnow()
    start = start or end - DEFAULT_SPAN
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInputs([{"loc": ["query", "from" if start.tzinfo is None else "to"],
                              "msg": "give a time zone (2030-01-31T00:00:00Z)", "type": "timezone_missing"}])
    if start >= end:
        raise InvalidInputs([{"loc": ["query", "from"], "msg": "`from` must be before `to`",
                              "type": "value_error"}])
    groups, total = summarize(session, org_id=principal.org_id, start=start, end=end, app_id=app_id,
                              deployment=model, group_by=group_by)
    return UsageReport(start=start, end=end, group_by=group_by, totals=_totals(total),
                       groups=[UsageGroup(key=g.key, **_totals(g).model_dump()) for g in groups])


class QuotaUpdate(RequestBody):
    """The organization's limits (null: unlimited) and what a run's model node does over them."""

    tokens_per_day: int | None = Field(default=None, ge=0, le=10**15,
                                       description="Prompt and completion tokens per UTC day.")
    requests_per_minute: int | None = Field(default=None, ge=0, le=10**9,
                                            description="Model calls per minute.")
    on_exceed: quotas.OnExceed = Field(default=quotas.OnExceed.fail, description=(
        "A run's model node over quota: `fail` with the reason, or `wait` until the window reopens. "
        "The OpenAI-compatible API always answers 429 with Retry-After."))


class QuotaRead(QuotaUpdate):
    """The limits and what was counted against them now."""

    tokens_today: int = Field(description="Tokens counted against today's (UTC) limit.")
    requests_this_minute: int


def _quota_read(session: SessionDep, org_id: uuid.UUID) -> QuotaRead:
    row = quotas.get_quota(session, org_id=org_id)
    tokens, requests = quotas.used(session, org_id=org_id)
    if row is None:
        return QuotaRead(tokens_today=tokens, requests_this_minute=requests)
    return QuotaRead(tokens_per_day=row.tokens_per_day, requests_per_minute=row.requests_per_minute,
                     on_exceed=quotas.OnExceed(row.on_exceed), tokens_today=tokens,
                     requests_this_minute=requests)


@router.get("/org/quota", response_model=QuotaRead)
def get_quota(principal: Builder, session: SessionDep) -> QuotaRead:
    """The organization's model quota and what it used of it."""
    return _quota_read(session, principal.org_id)


@router.put("/org/quota", response_model=QuotaRead)
def put_quota(body: QuotaUpdate, principal: Admin, session: SessionDep) -> QuotaRead:
    """Set the organization's model quota (admins)."""
    row = quotas.set_quota(session, org_id=principal.org_id, tokens_per_day=body.tokens_per_day,
                           requests_per_minute=body.requests_per_minute, on_exceed=body.on_exceed)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="quota.update",
                 target_type="organization", target_id=row.org_id, details=body.model_dump(mode="json"))
    return _quota_read(session, principal.org_id)
