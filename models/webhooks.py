"""Webhook endpoints: the unguessable inbound URL of an app started by `trigger.webhook`.

The URL's token carries 256 random bits and is stored only as its SHA-256 digest (like API
keys): it is shown once, when made or rotated, and a leaked database does not reveal it.

A signed post's signature is accepted once: `claim_signature` records it in `webhook_nonces`
(unique per endpoint) in the transaction that starts the run, so a captured post sent again, or
the same post raced twice, finds it taken. Signatures older than the acceptance window are
refused by their timestamp alone, so rows past it are deleted as new ones come.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import ForeignKey, Select, String, and_, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from models.apps import App, AppVersion, VersionRef
from models.base import Base, new_id, utcnow
from models.db import send_check

TOKEN_PREFIX = "wh_"


class WebhookEndpoint(Base):
    """An app's inbound webhook URL (one per app); `digest` is the SHA-256 of its token."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200), default="")


class WebhookNonce(Base):
    """A signature an endpoint accepted (its HMAC), kept while a replay of it could still be in time."""

    __tablename__ = "webhook_nonces"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
                                                   primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


def claim_signature(session: Session, *, endpoint_id: uuid.UUID, signature: str, keep_s: float) -> bool:
    """Record a signature as used; False when it was used already (a replay). Forgets signatures
    older than `keep_s` seconds (refused by their timestamp by then)."""
    now = utcnow()
    session.execute(delete(WebhookNonce).where(WebhookNonce.endpoint_id == endpoint_id,
                                               WebhookNonce.seen_at < now - timedelta(seconds=keep_s)))
    try:
        with session.begin_nested():
            session.add(WebhookNonce(endpoint_id=endpoint_id, signature=signature, seen_at=now))
    except IntegrityError:
        return False
    return True


def digest(token: str) -> str:
    """The stored form of a token (256 random bits: a fast hash is as safe as a slow one)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_endpoint(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID,
                    actor: str) -> tuple[WebhookEndpoint, str]:
    """A new endpoint for the app and its token (shown once); Conflict if the app has one."""
    if find_for_app(session, org_id=org_id, app_id=app_id) is not None:
        raise Conflict("the app has a webhook URL already; rotate it to get a new one", loc=["app_id"])
    token = _new_token()
    row = WebhookEndpoint(org_id=org_id, app_id=app_id, digest=digest(token), prefix=token[:10],
                          created_by=actor)
    session.add(row)
    session.flush()
    return row, token


def rotate(session: Session, *, endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new token; the old URL stops working at once."""
    token = _new_token()
    endpoint.digest, endpoint.prefix, endpoint.rotated_at = digest(token), token[:10], utcnow()
    session.flush()
    return token


def find_for_app(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID) -> WebhookEndpoint | None:
    """The organization's endpoint of the app, if it has one."""
    return session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.org_id == org_id,
                                                        WebhookEndpoint.app_id == app_id))


def get_for_app(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID) -> WebhookEndpoint:
    """The app's endpoint, or NotFound."""
    row = find_for_app(session, org_id=org_id, app_id=app_id)
    if row is None:
        raise NotFound("the app has no webhook URL; make one with POST", loc=["app_id"])
    return row


@dataclass(frozen=True, slots=True)
class Opened:
    """What a presented token opens: its endpoint, and the app's latest version (None: none yet)."""

    endpoint_id: uuid.UUID
    org_id: uuid.UUID
    app_id: uuid.UUID
    version: VersionRef | None


@cache
def _opened_statement() -> Select[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID | None, int | None]:
    # Built once: a webhook post is a hot path, and building the statement cost more than running it.
    latest = and_(AppVersion.app_id == App.id, AppVersion.number == App.latest_version)
    return (select(WebhookEndpoint.id, WebhookEndpoint.org_id, WebhookEndpoint.app_id, AppVersion.id,
                   AppVersion.number)
            .join(App, and_(App.id == WebhookEndpoint.app_id, App.org_id == WebhookEndpoint.org_id))
            .outerjoin(AppVersion, latest)
            .where(WebhookEndpoint.digest == bindparam("digest")))


def open_token(session: Session, *, token: str) -> Opened | None:
    """The endpoint a presented token opens and its app's latest version, in one query, if any."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = session.execute(_opened_statement(), {"digest": digest(token)}).first()
    if row is None:
        return None
    version_id, number = row[3], row[4]
    version = VersionRef(version_id, number) if version_id is not None and number is not None else None
    return Opened(row[0], row[1], row[2], version)


def check_still_open(session: Session, *, endpoint_id: uuid.UUID, token_digest: str) -> None:
    """In `models.db.pipelined`: fail the transaction unless the endpoint still takes the token of
    `token_digest` (`models.db.check_failed` tells): a post to a URL this process opened before is
    checked in the round trip that records its run, instead of looked up first. A rotated token
    or a removed endpoint fails it at once."""
    send_check(session, f"EXISTS (SELECT 1 FROM {WebhookEndpoint.__tablename__} WHERE id = %(endpoint_id)s "
                        "AND digest = %(digest)s)",
               {"endpoint_id": endpoint_id, "digest": token_digest}, "the webhook URL was rotated or removed")
