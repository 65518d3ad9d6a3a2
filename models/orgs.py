"""Organizations (tenants) and their API keys."""

from __future__ import annotations

import enum
import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import Conflict, NotFound
from models.base import Base, new_id, utcnow


class Role(enum.StrEnum):
    """What a key may do: admins manage keys, builders edit apps, reviewers decide reviews."""

    admin = "admin"
    builder = "builder"
    reviewer = "reviewer"


class Organization(Base):
    """A tenant: every other row belongs to exactly one."""

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="org", cascade="all, delete-orphan")


class ApiKey(Base):
    """An API key, stored as a SHA-256 digest; only its prefix is kept in clear for display."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20), default=Role.builder)
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Who made it (`user:<id>:<email>`, `key:<id>:<name>` or `cli`); a person's own keys name them
    # in `user_id` too, and end when they leave the organization.
    created_by: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    org: Mapped[Organization] = relationship(back_populates="keys")


KEY_PREFIX = "mk_"


def hash_key(secret: str) -> str:
    """Digest of an API key.

    Keys carry 256 random bits, so a fast hash is as safe as a slow one here and keeps the
    lookup on every request a single indexed query.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def create_org(session: Session, *, name: str) -> Organization:
    """Add an organization; a taken name is a conflict."""
    if session.scalar(select(Organization).where(Organization.name == name)) is not None:
        raise Conflict(f"an organization named {name!r} already exists", loc=["name"])
    org = Organization(name=name)
    session.add(org)
    session.flush()
    return org


def get_org_by_name(session: Session, *, name: str) -> Organization:
    """The organization called `name`, or NotFound."""
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"no organization named {name!r}", loc=["org"])
    return org


def create_key(
    session: Session, *, org_id: uuid.UUID, name: str, role: Role = Role.builder,
    created_by: str | None = None, user_id: uuid.UUID | None = None,
) -> tuple[ApiKey, str]:
    """Mint a key; the clear secret is returned once and never stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(org_id=org_id, name=name, role=role, prefix=secret[:10], digest=hash_key(secret),
                 created_by=created_by, user_id=user_id)
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, *, secret: str) -> ApiKey | None:
    """The live key matching `secret`, or None; records when it was last used."""
    key = session.scalar(select(ApiKey).where(ApiKey.digest == hash_key(secret)))
    if key is None or key.revoked_at is not None:
        return None
    now = utcnow()
    # Writing on every request would serialize the embedded database; a minute is precise enough.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now
    return key


def list_keys(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID | None = None) -> list[ApiKey]:
    """Every key of the organization (or only a person's own), newest first, revoked ones included."""
    stmt = select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at.desc())
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    return list(session.scalars(stmt))


def revoke_key(session: Session, *, org_id: uuid.UUID, key_id: uuid.UUID,
               user_id: uuid.UUID | None = None) -> ApiKey:
    """Revoke one key of the organization (or of a person's own keys) (idempotent)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.org_id != org_id or (user_id is not None and key.user_id != user_id):
        raise NotFound("API key not found", loc=["key_id"])
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key
