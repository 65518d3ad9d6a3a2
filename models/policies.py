"""Organization policies: named, versioned governance rules, attached to apps and pinned at publish.

* A policy's rules are stored per version; every update adds a version, none is ever changed.
* Attaching policies to an app applies them around every `llm.prompt` of the app's draft
  runs, and of every version published from then on.
* Publishing copies the attached policies' latest versions, rules included, onto the app
  version (`app_version_policies`): a published version keeps behaving the same whatever
  happens to the policy later, deletion included.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from models.apps import App, AppVersion
from models.base import Base, TimestampMixin, new_id, utcnow


class Policy(TimestampMixin, Base):
    """A named policy of one organization; `latest_version` is the number of its newest version."""

    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    latest_version: Mapped[int] = mapped_column(default=1)


class PolicyVersion(Base):
    """The rules of a policy as of one update; never changed after insert."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    number: Mapped[int]
    rules: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")


class AppPolicy(Base):
    """A policy attached to an app, in the order they apply."""

    __tablename__ = "app_policies"

    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    position: Mapped[int] = mapped_column(default=0)


class PinnedPolicy(Base):
    """A policy version as an app version was published with it (a copy of its rules)."""

    __tablename__ = "app_version_policies"
    __table_args__ = (UniqueConstraint("version_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("app_versions.id", ondelete="CASCADE"))
    position: Mapped[int]
    policy_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("policies.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(100))
    policy_version: Mapped[int]
    rules: Mapped[dict[str, Any]]


def get_policy(session: Session, *, org_id: uuid.UUID, policy_id: uuid.UUID, lock: bool = False) -> Policy:
    """The organization's policy, or NotFound (also for another organization's policy)."""
    stmt = select(Policy).where(Policy.id == policy_id, Policy.org_id == org_id)
    if lock:
        stmt = stmt.with_for_update()
    policy = session.scalar(stmt)
    if policy is None:
        raise NotFound("policy not found", loc=["path", "policy_id"])
    return policy


def list_policies(session: Session, *, org_id: uuid.UUID, limit: int, offset: int
                  ) -> tuple[list[Policy], int]:
    """A page of the organization's policies by name, and the total count."""
    total = session.scalar(select(func.count()).select_from(Policy).where(Policy.org_id == org_id)) or 0
    stmt = select(Policy).where(Policy.org_id == org_id).order_by(Policy.name).limit(limit).offset(offset)
    return list(session.scalars(stmt)), total


def _name_free(session: Session, *, org_id: uuid.UUID, name: str,
               other_than: uuid.UUID | None = None) -> None:
    found = session.scalar(select(Policy.id).where(Policy.org_id == org_id, Policy.name == name))
    if found is not None and found != other_than:
        raise Conflict(f"a policy called {name!r} exists", loc=["body", "name"])


def create_policy(session: Session, *, org_id: uuid.UUID, name: str, description: str,
                  rules: dict[str, Any], actor: str) -> Policy:
    """Add a policy with its first version; Conflict if the name is taken."""
    _name_free(session, org_id=org_id, name=name)
    policy = Policy(org_id=org_id, name=name, description=description, latest_version=1)
    session.add(policy)
    session.flush()
    session.add(PolicyVersion(policy_id=policy.id, number=1, rules=rules, created_by=actor))
    session.flush()
    return policy


def update_policy(session: Session, *, policy: Policy, name: str | None, description: str | None,
                  rules: dict[str, Any] | None, actor: str) -> PolicyVersion:
    """Apply an update as the policy's next version (the policy row must be locked)."""
    if name is not None and name != policy.name:
        _name_free(session, org_id=policy.org_id, name=name, other_than=policy.id)
        policy.name = name
    if description is not None:
        policy.description = description
    if rules is None:
        rules = get_version(session, policy=policy).rules
    policy.latest_version += 1
    policy.updated_at = utcnow()
    version = PolicyVersion(policy_id=policy.id, number=policy.latest_version, rules=rules, created_by=actor)
    session.add(version)
    session.flush()
    return version


def get_version(session: Session, *, policy: Policy, number: int | None = None) -> PolicyVersion:
    """Version `number` of the policy (its latest when None), or NotFound."""
    wanted = number if number is not None else policy.latest_version
    version = session.scalar(select(PolicyVersion).where(PolicyVersion.policy_id == policy.id,
                                                         PolicyVersion.number == wanted))
    if version is None:
        raise NotFound(f"the policy has no version {wanted}", loc=["path", "number"])
    return version


def list_versions(session: Session, *, policy: Policy) -> list[PolicyVersion]:
    """Every version of the policy, newest first."""
    stmt = (select(PolicyVersion).where(PolicyVersion.policy_id == policy.id)
            .order_by(PolicyVersion.number.desc()))
    return list(session.scalars(stmt))


def delete_policy(session: Session, *, policy: Policy) -> None:
    """Delete a policy no app has attached (Conflict otherwise); pinned copies stay with their versions."""
    apps = list(session.scalars(select(App.name).join(AppPolicy, AppPolicy.app_id == App.id)
                                .where(AppPolicy.policy_id == policy.id).order_by(App.name)))
    if apps:
        raise Conflict(f"the policy is attached to {len(apps)} app(s) ({', '.join(apps[:5])}): "
                       "detach it first", loc=["path", "policy_id"])
    session.delete(policy)


def attached(session: Session, *, app_id: uuid.UUID) -> list[Policy]:
    """The policies attached to an app, in the order they apply."""
    stmt = (select(Policy).join(AppPolicy, AppPolicy.policy_id == Policy.id)
            .where(AppPolicy.app_id == app_id).order_by(AppPolicy.position))
    return list(session.scalars(stmt))


def attach(session: Session, *, app: App, policy_ids: list[uuid.UUID]) -> list[Policy]:
    """Make `policy_ids` (the app's organization's own, in this order) the app's attached policies."""
    if len(set(policy_ids)) != len(policy_ids):
        raise Conflict("a policy may be attached once", loc=["body", "policy_ids"])
    policies = [get_policy(session, org_id=app.org_id, policy_id=pid) for pid in policy_ids]
    session.execute(delete(AppPolicy).where(AppPolicy.app_id == app.id))
    session.add_all(AppPolicy(app_id=app.id, policy_id=p.id, position=i) for i, p in enumerate(policies))
    session.flush()
    return policies


def pin(session: Session, *, version: AppVersion) -> list[PinnedPolicy]:
    """Copy the app's attached policies, at their latest versions, onto a newly published version."""
    pins = []
    for position, policy in enumerate(attached(session, app_id=version.app_id)):
        latest = get_version(session, policy=policy)
        pins.append(PinnedPolicy(version_id=version.id, position=position, policy_id=policy.id,
                                 name=policy.name, policy_version=latest.number, rules=latest.rules))
    session.add_all(pins)
    session.flush()
    return pins


def pinned(session: Session, *, version_id: uuid.UUID) -> list[PinnedPolicy]:
    """The policies a published version was published with, in order."""
    stmt = select(PinnedPolicy).where(PinnedPolicy.version_id == version_id).order_by(PinnedPolicy.position)
    return list(session.scalars(stmt))


def current_rules(session: Session, *, app_id: uuid.UUID) -> list[tuple[str, int, dict[str, Any]]]:
    """`(name, version, rules)` of the app's attached policies now (what a draft run applies)."""
    return [(p.name, p.latest_version, get_version(session, policy=p).rules)
            for p in attached(session, app_id=app_id)]
