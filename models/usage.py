"""What every model call consumed, per organization: one row per answered call.

A row is written in the same transaction as the call's result (a run node's result, or an
OpenAI-compatible completion), so a call is counted exactly when its answer is kept: a resent
request whose result is refused as a duplicate adds nothing. App, version, run and node are
copied as plain values, not foreign keys, so accounting outlives a deleted app. The cost comes
from the deployment's prices per million input and output tokens at the time of the call (None
when it has none).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, new_id, utcnow


class UsageSource(enum.StrEnum):
    """Where a model call came from."""

    run = "run"
    openai = "openai"


class GroupBy(enum.StrEnum):
    """How usage is summed up."""

    day = "day"
    app = "app"
    model = "model"


class ModelUsage(Base):
    """One answered model call and what it consumed."""

    __tablename__ = "model_usage"
    __table_args__ = (Index("ix_model_usage_org_created", "org_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(20))
    app_id: Mapped[uuid.UUID | None]
    version_number: Mapped[int | None]
    run_id: Mapped[uuid.UUID | None]
    node_id: Mapped[str | None] = mapped_column(String(64))
    # The OpenAI-compatible request it answered (with no app, run or node).
    completion_id: Mapped[uuid.UUID | None]
    deployment: Mapped[str] = mapped_column(String(100))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    cost: Mapped[float | None] = mapped_column(Float)
    day: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def price(*, prompt_tokens: int, completion_tokens: int, input_price: float | None,
          output_price: float | None) -> float | None:
    """The cost of a call at prices per million tokens (None when the deployment has no prices)."""
    if input_price is None and output_price is None:
        return None
    return round(prompt_tokens * (input_price or 0) / 1e6 + completion_tokens * (output_price or 0) / 1e6, 9)


def record_usage(session: Session, *, org_id: uuid.UUID, source: UsageSource, deployment: str,
                 prompt_tokens: int, completion_tokens: int, latency_s: float, cost: float | None,
                 app_id: uuid.UUID | None = None, version_number: int | None = None,
                 run_id: uuid.UUID | None = None, node_id: str | None = None,
                 completion_id: uuid.UUID | None = None, at: datetime | None = None) -> ModelUsage:
    """Add one call's usage to the caller's transaction."""
    at = at or utcnow()
    row = ModelUsage(org_id=org_id, source=source.value, app_id=app_id, version_number=version_number,
                     run_id=run_id, node_id=node_id, completion_id=completion_id, deployment=deployment,
                     prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                     latency_s=round(latency_s, 4), cost=cost, day=at.astimezone(UTC).date(), created_at=at)
    session.add(row)
    return row


@dataclass(frozen=True)
class UsageSum:
    """Calls, tokens, cost and mean latency of a set of usage rows."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    latency_s: float | None
    key: str | None = None


def tokens_on(session: Session, *, org_id: uuid.UUID, day: date) -> int:
    """Prompt and completion tokens the organization's calls used on a UTC day."""
    used = func.sum(ModelUsage.prompt_tokens + ModelUsage.completion_tokens)
    total = session.scalar(select(func.coalesce(used, 0))
                           .where(ModelUsage.org_id == org_id, ModelUsage.day == day))
    return int(total or 0)


def summarize(session: Session, *, org_id: uuid.UUID, start: datetime, end: datetime,
              app_id: uuid.UUID | None = None, deployment: str | None = None,
              group_by: GroupBy | None = None) -> tuple[list[UsageSum], UsageSum]:
    """The organization's usage in [start, end), filtered, grouped (by day, app or model), and in total."""
    where: list[Any] = [ModelUsage.org_id == org_id, ModelUsage.created_at >= start,
                        ModelUsage.created_at < end]
    if app_id is not None:
        where.append(ModelUsage.app_id == app_id)
    if deployment is not None:
        where.append(ModelUsage.deployment == deployment)
    sums = (func.count(ModelUsage.id), func.coalesce(func.sum(ModelUsage.prompt_tokens), 0),
            func.coalesce(func.sum(ModelUsage.completion_tokens), 0), func.sum(ModelUsage.cost),
            func.avg(ModelUsage.latency_s))
    total = _sum(session.execute(select(*sums).where(*where)).one(), None)
    if group_by is None:
        return [], total
    column: Any = {GroupBy.day: ModelUsage.day, GroupBy.app: ModelUsage.app_id,
                   GroupBy.model: ModelUsage.deployment}[group_by]
    rows = session.execute(select(column, *sums).where(*where).group_by(column).order_by(column)).all()
    return [_sum(row[1:], None if row[0] is None else str(row[0])) for row in rows], total


def _sum(row: Any, key: str | None) -> UsageSum:
    count, prompt, completion, cost, latency = row
    return UsageSum(requests=int(count), prompt_tokens=int(prompt), completion_tokens=int(completion),
                    cost=None if cost is None else round(float(cost), 9),
                    latency_s=None if latency is None else round(float(latency), 4), key=key)
