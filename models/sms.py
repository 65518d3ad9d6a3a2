"""SMS: phone-number routes, inbound and outbound messages, and opt-outs.

* A route sends one phone number to one app of an organization. Numbers are unique within an
  organization, not across them: a route proves nothing about who owns a number (the API asks
  Twilio before routing), so a route of one tenant can never block, or reveal, another's. An
  inbound webhook names its route by id, or by number: then the route is the one whose
  organization's Twilio account sent it (the request's `AccountSid`, proven by its signature).
  A route outlives its app: messages to a number whose app was deleted are still stored.
* Inbound messages are unique per organization by Twilio's `MessageSid`, which is what makes
  Twilio's retries harmless. `answer_state` is the handshake with `twilio.sms_output`: while it
  is `waiting` the webhook may still answer inline, so a reply is recorded as `inline`; once
  the webhook `closed` it, replies go through the REST API. Both sides change it only through
  a conditional update of this one row, so exactly one of them delivers each reply.
* Outbound messages are unique per `(idempotency_key, part)`: the key is `run_id:node_id`, so
  a retried node finds what it already sent. Delivery status only moves forward.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Select,
    String,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from models.base import Base, JSONType, TimestampMixin, new_id, utcnow
from models.credentials import DEFAULT_NAME, Credential

E164 = r"^\+[1-9][0-9]{1,14}$"

# Twilio's delivery statuses in the order they happen; a later callback never moves a message back.
STATUS_RANK: dict[str, int] = {
    "claimed": 0, "accepted": 1, "scheduled": 1, "queued": 2, "sending": 3, "sent": 4,
    "delivered": 5, "undelivered": 5, "failed": 5, "canceled": 5, "read": 6,
}
# Organizations routing one number (each must own it in Twilio): a webhook by number looks at this many.
MAX_SHARED_ROUTES = 20
# Replies that went back as TwiML, or were never sent, take no callbacks.
FINAL_OUTSIDE_CALLBACKS = ("inline", "opted_out")


class SmsNumber(Base):
    """A phone number routed to an app of the organization."""

    __tablename__ = "sms_numbers"
    __table_args__ = (UniqueConstraint("org_id", "number"), Index("ix_sms_numbers_number", "number"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")


class SmsInbound(Base):
    """A message Twilio delivered to a routed number; `kind` says if it was a keyword."""

    __tablename__ = "sms_inbound"
    __table_args__ = (
        UniqueConstraint("org_id", "message_sid"),
        Index("ix_sms_inbound_app_phone", "app_id", "from_number", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    route_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sms_numbers.id", ondelete="SET NULL"))
    app_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    message_sid: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(64))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="")
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    media_urls: Mapped[list[str]] = mapped_column(JSONType, default=list)
    kind: Mapped[str] = mapped_column(String(10), default="message")  # message, stop, start, help
    note: Mapped[str] = mapped_column(Text, default="")  # why no run started, when none did
    answer_state: Mapped[str] = mapped_column(String(10), default="closed")  # waiting, closed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsOutbound(TimestampMixin, Base):
    """One message part sent (or answered inline, or withheld) to a phone."""

    __tablename__ = "sms_outbound"
    __table_args__ = (
        UniqueConstraint("idempotency_key", "part"),
        Index("ix_sms_outbound_app_phone", "app_id", "to_number", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    app_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    node_id: Mapped[str | None] = mapped_column(String(64))
    inbound_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sms_inbound.id", ondelete="SET NULL"),
                                                         index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    part: Mapped[int] = mapped_column(default=0)
    to_number: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(10))  # rest, inline, none
    status: Mapped[str] = mapped_column(String(20), default="claimed")
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_message: Mapped[str | None] = mapped_column(Text)


class SmsOptOut(Base):
    """A phone that texted STOP (or the like) to the organization: nothing is sent to it until START."""

    __tablename__ = "sms_opt_outs"
    __table_args__ = (UniqueConstraint("org_id", "phone"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(64))
    keyword: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def route_number(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, number: str,
                 actor: str) -> tuple[SmsNumber, bool]:
    """Route `number` to the app; (route, created). The number routed to another of the organization's
    live apps is a Conflict (other organizations' routes are never looked at)."""
    mine = select(SmsNumber).where(SmsNumber.org_id == org_id, SmsNumber.number == number)
    route = session.scalar(mine.with_for_update())
    if route is None:
        try:
            with session.begin_nested():
                route = SmsNumber(org_id=org_id, app_id=app_id, number=number, created_by=actor)
                session.add(route)
            return route, True
        except IntegrityError:  # a concurrent request of the organization routed it first
            route = session.scalar(mine.with_for_update())
            assert route is not None
    if route.app_id == app_id:
        return route, False
    if route.app_id is not None:
        raise Conflict(f"{number} is already routed to another of your apps; remove that route first",
                       loc=["body", "number"])
    route.app_id, route.created_by, route.created_at = app_id, actor, utcnow()  # its app was deleted
    return route, True


def list_numbers(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID) -> list[SmsNumber]:
    """The numbers routed to the app."""
    stmt = select(SmsNumber).where(SmsNumber.org_id == org_id, SmsNumber.app_id == app_id)
    return list(session.scalars(stmt.order_by(SmsNumber.number)))


def get_number(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, route_id: uuid.UUID) -> SmsNumber:
    """One route of the app, or NotFound."""
    route = session.get(SmsNumber, route_id)
    if route is None or route.org_id != org_id or route.app_id != app_id:
        raise NotFound("phone number route not found", loc=["route_id"])
    return route


@cache
def _route_statement(by_id: bool) -> Select[SmsNumber, Credential]:
    # Built once: on the webhook's hot path, building it cost more than running it.
    target = SmsNumber.id if by_id else SmsNumber.number
    stored = and_(Credential.org_id == SmsNumber.org_id, Credential.type == bindparam("type"),
                  Credential.name == DEFAULT_NAME)
    statement = select(SmsNumber, Credential).outerjoin(Credential, stored)
    statement = statement.where(target == bindparam("target"))
    return statement.order_by(SmsNumber.created_at, SmsNumber.id).limit(MAX_SHARED_ROUTES)


def find_routes(session: Session, *, target: str, type_: str) -> list[tuple[SmsNumber, Credential | None]]:
    """The routes a webhook path names, each with its organization's default credential of `type_`
    (which checks the webhook's signature), in one query: a route id names one route; a number,
    every organization's route of it, oldest first (the caller keeps the one whose account signed)."""
    try:
        key: uuid.UUID | str = uuid.UUID(target)
    except ValueError:
        key = target
    statement = _route_statement(isinstance(key, uuid.UUID))
    rows = session.execute(statement, {"target": key, "type": type_})
    return [(route, credential) for route, credential in rows]


def app_number(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID) -> str | None:
    """A number routed to the app (the default sender of its messages), if any."""
    stmt = select(SmsNumber.number).where(SmsNumber.org_id == org_id, SmsNumber.app_id == app_id)
    return session.scalar(stmt.order_by(SmsNumber.created_at).limit(1))


def is_opted_out(session: Session, *, org_id: uuid.UUID, phone: str) -> bool:
    """Whether the phone asked the organization to stop texting it."""
    return session.scalar(select(SmsOptOut.id).where(SmsOptOut.org_id == org_id, SmsOptOut.phone == phone)) \
        is not None


def set_opt_out(session: Session, *, org_id: uuid.UUID, phone: str, keyword: str, opted_out: bool) -> None:
    """Record a STOP (opted_out) or a START (not) from the phone; idempotent."""
    row = session.scalar(select(SmsOptOut).where(SmsOptOut.org_id == org_id, SmsOptOut.phone == phone))
    if opted_out and row is None:
        try:
            with session.begin_nested():
                session.add(SmsOptOut(org_id=org_id, phone=phone, keyword=keyword))
        except IntegrityError:
            pass  # a concurrent STOP from the same phone recorded it first
    elif not opted_out and row is not None:
        session.delete(row)


def media_list(value: Any) -> list[str]:
    """A JSON media column as a list of URLs (tolerating rows written as null)."""
    return [str(v) for v in value] if isinstance(value, list) else []
