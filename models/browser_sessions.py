"""Browser sessions and one-time sign-in links.

A person in a browser (the builder, the review page) never holds a secret that JavaScript can
read: signing in with an API key or a one-time link creates a row here, and the browser keeps
only a random session secret in an HttpOnly, SameSite=Strict cookie. The row stores a digest
of that secret (like API keys), the key the session acts for, its expiry, and the CSRF token
every write from that browser must echo in a header. Signing out, or revoking the key, ends
the session at once: the row is the session, so nothing has to be waited out.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, new_id, utcnow
from models.orgs import ApiKey, Organization

SESSION_TTL = timedelta(hours=12)
LINK_TTL = timedelta(hours=24)


def _digest(secret: str) -> str:
    # 256 random bits: a fast hash is as safe as a slow one (see models.orgs.hash_key).
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class BrowserSession(Base):
    """One signed-in browser."""

    __tablename__ = "browser_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
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


def open_session(session: Session, *, key: ApiKey, ttl: timedelta = SESSION_TTL
                 ) -> tuple[BrowserSession, str]:
    """Start a browser session acting as `key`; the clear secret is returned once, for the cookie."""
    secret = secrets.token_urlsafe(32)
    row = BrowserSession(digest=_digest(secret), org_id=key.org_id, key_id=key.id,
                         csrf_token=secrets.token_urlsafe(32), expires_at=utcnow() + ttl)
    session.add(row)
    session.flush()
    return row, secret


def find_session(session: Session, *, secret: str) -> tuple[BrowserSession, ApiKey, Organization] | None:
    """The live session of a cookie's secret, with its key and organization; None if there is none."""
    row = session.execute(
        select(BrowserSession, ApiKey, Organization)
        .join(ApiKey, ApiKey.id == BrowserSession.key_id)
        .join(Organization, Organization.id == BrowserSession.org_id)
        .where(BrowserSession.digest == _digest(secret))
    ).first()
    if row is None:
        return None
    browser, key, org = row
    if browser.revoked_at is not None or browser.expires_at <= utcnow() or key.revoked_at is not None:
        return None
    return browser, key, org


def close_session(session: Session, *, secret: str) -> uuid.UUID | None:
    """End the session of a cookie's secret (idempotent); returns its id if there was one."""
    row = session.scalar(select(BrowserSession).where(BrowserSession.digest == _digest(secret)))
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row.id


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
