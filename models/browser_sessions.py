"""Browser sessions and one-time sign-in links.

A person in a browser (the builder, the review page) never holds a secret that JavaScript can
read: signing in with an email and password, an API key or a one-time link creates a row here,
and the browser keeps only a random session secret in an HttpOnly, SameSite=Strict cookie. The
row stores a digest of that secret (like API keys), what the session acts for, its expiry, and
the CSRF token every write from that browser must echo in a header. A session acts either for
a key (`key_id`: the key's role) or for a person (`user_id`) in one of their organizations
(`org_id`, which switching organization changes: the role is the membership's, read on every
request). Signing out, revoking the key, an admin's revocation or leaving the organization ends
the session at once: the row is the session, so nothing has to be waited out.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import NotFound
from models.accounts import Membership, User
from models.base import Base, new_id, utcnow
from models.orgs import ApiKey, Organization, Role

SESSION_TTL = timedelta(hours=12)
LINK_TTL = timedelta(hours=24)


def _digest(secret: str) -> str:
    # 256 random bits: a fast hash is as safe as a slow one (see models.orgs.hash_key).
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class BrowserSession(Base):
    """One signed-in browser, acting for a key or for a person."""

    __tablename__ = "browser_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                                     index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    via: Mapped[str] = mapped_column(String(20), default="api_key")
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SignInLink(Base):
    """A one-time link that signs a browser in as a key (what `mantle up` prints)."""

    __tablename__ = "sign_in_links"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A live session with what it acts for: a key, or a person and their role in `org`."""

    browser: BrowserSession
    org: Organization
    role: Role
    key: ApiKey | None
    user: User | None


def _open(session: Session, row: BrowserSession) -> tuple[BrowserSession, str]:
    secret = secrets.token_urlsafe(32)
    row.digest, row.csrf_token = _digest(secret), secrets.token_urlsafe(32)
    session.add(row)
    session.flush()
    return row, secret


def open_session(session: Session, *, key: ApiKey, ttl: timedelta = SESSION_TTL, via: str = "api_key"
                 ) -> tuple[BrowserSession, str]:
    """Start a browser session acting as `key`; the clear secret is returned once, for the cookie."""
    row = BrowserSession(org_id=key.org_id, key_id=key.id, via=via, expires_at=utcnow() + ttl)
    return _open(session, row)


def open_user_session(session: Session, *, user: User, org_id: uuid.UUID, via: str = "password",
                      ttl: timedelta = SESSION_TTL) -> tuple[BrowserSession, str]:
    """Start a browser session for a person in one of their organizations; the clear secret once."""
    return _open(session, BrowserSession(org_id=org_id, user_id=user.id, via=via, expires_at=utcnow() + ttl))


def find_session(session: Session, *, secret: str) -> LiveSession | None:
    """The live session of a cookie's secret, with what it acts for; None if there is none.

    A key's session ends with its key; a person's needs their membership of its organization.
    """
    row = session.execute(
        select(BrowserSession, Organization, ApiKey, User, Membership)
        .join(Organization, Organization.id == BrowserSession.org_id)
        .outerjoin(ApiKey, ApiKey.id == BrowserSession.key_id)
        .outerjoin(User, User.id == BrowserSession.user_id)
        .outerjoin(Membership, (Membership.user_id == BrowserSession.user_id)
                   & (Membership.org_id == BrowserSession.org_id))
        .where(BrowserSession.digest == _digest(secret))
    ).first()
    if row is None:
        return None
    browser, org, key, user, membership = row
    if browser.revoked_at is not None or browser.expires_at <= utcnow():
        return None
    if key is not None and key.revoked_at is None:
        return LiveSession(browser=browser, org=org, role=key.role, key=key, user=None)
    if user is not None and membership is not None:
        return LiveSession(browser=browser, org=org, role=membership.role, key=None, user=user)
    return None


def close_session(session: Session, *, secret: str) -> uuid.UUID | None:
    """End the session of a cookie's secret (idempotent); returns its id if there was one."""
    row = session.scalar(select(BrowserSession).where(BrowserSession.digest == _digest(secret)))
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row.id


def switch_org(session: Session, *, secret: str, org_id: uuid.UUID) -> None:
    """Move a person's session to another of their organizations (the caller checked membership)."""
    row = session.scalar(select(BrowserSession).where(BrowserSession.digest == _digest(secret)))
    if row is not None:
        row.org_id = org_id


def list_sessions(session: Session, *, org_id: uuid.UUID
                  ) -> list[tuple[BrowserSession, ApiKey | None, User | None]]:
    """The organization's live browser sessions, newest first, with the key or person of each."""
    rows = session.execute(
        select(BrowserSession, ApiKey, User)
        .outerjoin(ApiKey, ApiKey.id == BrowserSession.key_id)
        .outerjoin(User, User.id == BrowserSession.user_id)
        .where(BrowserSession.org_id == org_id, BrowserSession.revoked_at.is_(None),
               BrowserSession.expires_at > utcnow())
        .order_by(BrowserSession.created_at.desc())).all()
    return [(b, k, u) for b, k, u in rows]


def live_digests(session: Session, *, org_id: uuid.UUID, user_id: uuid.UUID) -> list[str]:
    """The digests of a person's live sessions in an organization (to forget them in caches)."""
    return list(session.scalars(select(BrowserSession.digest).where(
        BrowserSession.org_id == org_id, BrowserSession.user_id == user_id,
        BrowserSession.revoked_at.is_(None))))


def revoke_sessions(session: Session, *, org_id: uuid.UUID, session_id: uuid.UUID | None = None,
                    user_id: uuid.UUID | None = None) -> list[str]:
    """End one session of the organization, or every session a person has in it; the digests of
    those ended (to forget them in caches). An unknown or foreign session id is NotFound."""
    stmt = select(BrowserSession).where(BrowserSession.org_id == org_id, BrowserSession.revoked_at.is_(None))
    if session_id is not None:
        stmt = stmt.where(BrowserSession.id == session_id)
    if user_id is not None:
        stmt = stmt.where(BrowserSession.user_id == user_id)
    rows = list(session.scalars(stmt))
    if session_id is not None and not rows:
        found = session.get(BrowserSession, session_id)
        if found is None or found.org_id != org_id:
            raise NotFound("no session of this organization has this id", loc=["path", "session_id"])
    now = utcnow()
    for row in rows:
        row.revoked_at = now
    return [row.digest for row in rows]


def create_link(session: Session, *, key: ApiKey, ttl: timedelta = LINK_TTL) -> str:
    """A one-time sign-in secret for `key` (put it in a link); valid once, for `ttl`."""
    secret = secrets.token_urlsafe(32)
    session.add(SignInLink(digest=_digest(secret), org_id=key.org_id, key_id=key.id,
                           expires_at=utcnow() + ttl))
    session.flush()
    return secret


def redeem_link(session: Session, *, secret: str) -> ApiKey | None:
    """Use a one-time link: its key if the link is unused, unexpired and its key live; else None."""
    link = session.scalar(select(SignInLink).where(SignInLink.digest == _digest(secret))
                          .with_for_update())
    if link is None or link.used_at is not None or link.expires_at <= utcnow():
        return None
    link.used_at = utcnow()
    key = session.get(ApiKey, link.key_id)
    if key is None or key.revoked_at is not None:
        return None
    return key
