"""Model deployments an organization defined through `/v1/models` (settings define the rest).

The spec is kept as JSON and validated by `inference.deployments.Deployment` where it
is written and where it is served, so a new deployment field needs no migration.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from models.base import Base, TimestampMixin, new_id


class ModelDeployment(TimestampMixin, Base):
    """One organization's named model deployment."""

    __tablename__ = "model_deployments"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]]


def list_deployments(session: Session, *, org_id: uuid.UUID) -> list[ModelDeployment]:
    """The organization's deployments, by name."""
    stmt = select(ModelDeployment).where(ModelDeployment.org_id == org_id).order_by(ModelDeployment.name)
    return list(session.scalars(stmt))


def find_deployment(session: Session, *, org_id: uuid.UUID, name: str) -> ModelDeployment | None:
    """The organization's deployment called `name`, if any."""
    return session.scalar(select(ModelDeployment).where(ModelDeployment.org_id == org_id,
                                                        ModelDeployment.name == name))


def get_deployment(session: Session, *, org_id: uuid.UUID, name: str) -> ModelDeployment:
    """The organization's deployment called `name`, or NotFound."""
    row = find_deployment(session, org_id=org_id, name=name)
    if row is None:
        raise NotFound(f"no model deployment called {name!r}", loc=["path", "name"])
    return row


def create_deployment(session: Session, *, org_id: uuid.UUID, spec: dict[str, Any]) -> ModelDeployment:
    """Add a deployment; Conflict if the organization already has one of that name."""
    name = str(spec["name"])
    if find_deployment(session, org_id=org_id, name=name) is not None:
        raise Conflict(f"a model deployment called {name!r} exists", loc=["body", "name"])
    row = ModelDeployment(org_id=org_id, name=name, spec=spec)
    session.add(row)
    session.flush()
    return row


def names(session: Session, *, org_id: uuid.UUID) -> list[str]:
    """Names of the organization's deployments."""
    return list(session.scalars(select(ModelDeployment.name).where(ModelDeployment.org_id == org_id)))


def pinned_specs(session: Session) -> list[dict[str, Any]]:
    """Specs of every organization's pinned deployments (an inference worker preloads them)."""
    return [row.spec for row in session.scalars(select(ModelDeployment)) if row.spec.get("pinned")]
