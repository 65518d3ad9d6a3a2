"""Query functions of SMS messages: recording inbound ones, claiming and tracking outbound ones,
the inline-answer handshake, a phone's history and the conversation view."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    CursorResult,
    Integer,
    Table,
    bindparam,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from core.errors import Conflict
from models.base import new_id, transient, utcnow
from models.db import driver, fetch_dicts, insert_rows, pipelined, select_sql
from models.sms import STATUS_RANK, SmsInbound, SmsNumber, SmsOptOut, SmsOutbound, is_opted_out


def find_inbound(session: Session, *, org_id: uuid.UUID, message_sid: str) -> SmsInbound | None:
    """The organization's inbound message with this Twilio SID, if stored."""
    return session.scalar(select(SmsInbound).where(SmsInbound.org_id == org_id,
                                                   SmsInbound.message_sid == message_sid))


@cache
def _insert_inbound(dialect: str) -> Any:
    # Built once per database kind: on the webhook's hot path, building it cost more than running it.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, SmsInbound.__table__)
    return (insert(table).on_conflict_do_nothing(index_elements=["org_id", "message_sid"])
            .returning(SmsInbound.id))


def inbound_row(*, route: SmsNumber, message_sid: str, from_number: str, to_number: str, body: str,
                truncated: bool, media_urls: list[str], kind: str, answer_state: str = "closed"
                ) -> dict[str, Any]:
    """Every column of a new inbound message's row, received now, with no run yet (the caller
    sets `run_id` once its run is made)."""
    return {
        "id": new_id(), "org_id": route.org_id, "route_id": route.id, "app_id": route.app_id,
        "run_id": None, "message_sid": message_sid, "from_number": from_number, "to_number": to_number,
        "body": body, "truncated": truncated, "media_urls": media_urls, "kind": kind, "note": "",
        "answer_state": answer_state, "created_at": utcnow(),
    }


_INBOUND = cast(Table, SmsInbound.__table__)


def insert_inbound(session: Session, row: dict[str, Any]) -> None:
    """INSERT an `inbound_row` (through `models.db.insert_rows`, queued in `pipelined` with what
    follows); a MessageSid the organization already stored fails the unique index (IntegrityError)."""
    insert_rows(session, _INBOUND, [row])


def record_inbound(session: Session, *, route: SmsNumber, message_sid: str, from_number: str,
                   to_number: str, body: str, truncated: bool, media_urls: list[str],
                   kind: str) -> tuple[SmsInbound, bool]:
    """Store an inbound message once: (row, created). A repeated MessageSid gives the first row.

    One statement in the common case (a new message): an INSERT that does nothing on the unique
    (org, MessageSid), where a Twilio retry lands; only then is the first delivery's row looked
    up. Every column is given here, so the returned object is the stored row, and what the
    caller changes on it later is written as an UPDATE.
    """
    values = inbound_row(route=route, message_sid=message_sid, from_number=from_number, to_number=to_number,
                         body=body, truncated=truncated, media_urls=media_urls, kind=kind)
    if session.scalar(_insert_inbound(session.get_bind().dialect.name), values) is None:
        existing = find_inbound(session, org_id=route.org_id, message_sid=message_sid)
        if existing is None:
            raise Conflict("a concurrent delivery of this message was being stored; Twilio will retry",
                           loc=["body", "MessageSid"])
        return existing, False
    row = SmsInbound(**values)
    make_transient_to_detached(row)  # inserted above: attach it as loaded, not as a new row
    session.add(row)
    return row, True


def close_answer(session: Session, *, inbound_id: uuid.UUID) -> None:
    """The webhook answers now: replies recorded after this go through the REST API."""
    session.execute(update(SmsInbound)
                    .where(SmsInbound.id == inbound_id, SmsInbound.answer_state == "waiting")
                    .values(answer_state="closed"))


def inline_replies(session: Session, *, inbound_id: uuid.UUID) -> list[SmsOutbound]:
    """The replies to answer an inbound message with, as TwiML, in order."""
    stmt = (select(SmsOutbound).where(SmsOutbound.inbound_id == inbound_id, SmsOutbound.via == "inline")
            .order_by(SmsOutbound.created_at, SmsOutbound.idempotency_key, SmsOutbound.part))
    return list(session.scalars(stmt))


_CLOSE_ANSWER = ('UPDATE "sms_inbound" SET "answer_state" = \'closed\' '
                 'WHERE "id" = %s AND "answer_state" = \'waiting\'')
_INLINE_BODIES = ('SELECT "body" FROM "sms_outbound" WHERE "inbound_id" = %s AND "via" = \'inline\' '
                  'ORDER BY "created_at", "idempotency_key", "part"')


def answer_now(session: Session, *, inbound_id: uuid.UUID) -> list[str]:
    """The webhook answers now: close the answer (`close_answer`), then the bodies of the replies
    to answer with (`inline_replies`), and commit; for a session that writes nothing more.

    On PostgreSQL the UPDATE, the SELECT and the COMMIT go in one round trip through psycopg
    (`models.db.pipelined`), instead of four (BEGIN, each statement, COMMIT); the SELECT runs
    after the UPDATE in the same transaction, so the handshake with `claim_state` holds as before.
    """
    if session.get_bind().dialect.name != "postgresql":
        close_answer(session, inbound_id=inbound_id)
        return [r.body for r in inline_replies(session, inbound_id=inbound_id)]
    with pipelined(session, commit=True):
        connection = driver(session)
        connection.execute(_CLOSE_ANSWER, (inbound_id,))
        replies = connection.execute(_INLINE_BODIES, (inbound_id,))
    return [str(row[0]) for row in replies.fetchall()]


def triggering_inbound(session: Session, *, run_id: uuid.UUID, lock: bool = False) -> SmsInbound | None:
    """The inbound message that started the run, if an SMS did (locked for the inline handshake)."""
    stmt = select(SmsInbound).where(SmsInbound.run_id == run_id, SmsInbound.kind == "message")
    return session.scalar(stmt.with_for_update() if lock else stmt)


def outbound_rows(session: Session, *, key: str) -> list[SmsOutbound]:
    """The parts already recorded under an idempotency key, in order."""
    return list(session.scalars(select(SmsOutbound).where(SmsOutbound.idempotency_key == key)
                                .order_by(SmsOutbound.part)))


_OUTBOUND = cast(Table, SmsOutbound.__table__)
_OUTBOUND_BY_KEY = select_sql(_OUTBOUND, '"idempotency_key" = %s', 'ORDER BY "part"')
_INBOUND_OF_RUN = select_sql(cast(Table, SmsInbound.__table__), "\"run_id\" = %s AND \"kind\" = 'message'",
                             "LIMIT 1 FOR UPDATE")
_OPTED_OUT = 'SELECT 1 FROM "sms_opt_outs" WHERE "org_id" = %s AND "phone" = %s'


def claim_state(session: Session, *, key: str, run_id: uuid.UUID, org_id: uuid.UUID, phone: str
                ) -> tuple[list[SmsOutbound], SmsInbound | None, bool]:
    """What a reply's claim decides on (`worker/sms.py`): the parts already recorded under its
    idempotency key (`outbound_rows`), the inbound message that started its run, locked
    (`triggering_inbound`), and whether the phone opted out (`models.sms.is_opted_out`).

    On PostgreSQL the three go in one round trip through psycopg (`models.db.fetch_dicts`), the
    rows as transient objects: as three ORM queries they cost a reply more CPU than its block.
    """
    if session.get_bind().dialect.name != "postgresql":
        return (outbound_rows(session, key=key), triggering_inbound(session, run_id=run_id, lock=True),
                is_opted_out(session, org_id=org_id, phone=phone))
    rows, inbound, opted_out = fetch_dicts(session, [(_OUTBOUND_BY_KEY, (key,)), (_INBOUND_OF_RUN, (run_id,)),
                                                     (_OPTED_OUT, (org_id, phone))])
    return ([transient(SmsOutbound, row) for row in rows],
            transient(SmsInbound, inbound[0]) if inbound else None,
            bool(opted_out))


def add_outbound(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID | None, run_id: uuid.UUID | None,
                 node_id: str | None, inbound_id: uuid.UUID | None, key: str, to: str, from_: str,
                 parts: list[str], via: str, status: str) -> list[SmsOutbound]:
    """Record the parts of one message under its idempotency key; their rows as stored (transient
    objects: written through `models.db.insert_rows`, not the unit of work)."""
    now = utcnow()
    values = [{"id": new_id(), "org_id": org_id, "app_id": app_id, "run_id": run_id, "node_id": node_id,
               "inbound_id": inbound_id, "idempotency_key": key, "part": i, "to_number": to,
               "from_number": from_, "body": body, "via": via, "status": status, "message_sid": None,
               "error_code": None, "error_message": None, "created_at": now, "updated_at": now}
              for i, body in enumerate(parts)]
    session.flush()  # what the rows refer to, first
    insert_rows(session, _OUTBOUND, values)
    return [SmsOutbound(**row) for row in values]


def advance_status(session: Session, *, outbound_id: uuid.UUID, status: str, message_sid: str | None = None,
                   error_code: str | None = None, error_message: str | None = None) -> bool:
    """Move a message's delivery status forward (never back); whether it moved."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        return False
    earlier = [s for s, r in STATUS_RANK.items() if r < rank]
    values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
    if error_code is not None or error_message is not None:
        values.update(error_code=error_code, error_message=error_message)
    if message_sid is not None:  # the first SID recorded stays (a part has exactly one)
        values["message_sid"] = func.coalesce(SmsOutbound.message_sid, message_sid)
    result = session.execute(update(SmsOutbound).where(SmsOutbound.id == outbound_id,
                                                       SmsOutbound.status.in_(earlier)).values(**values))
    moved = isinstance(result, CursorResult) and result.rowcount == 1
    if message_sid is not None and not moved:  # a late step still tells us the SID
        session.execute(update(SmsOutbound).where(SmsOutbound.id == outbound_id,
                                                  SmsOutbound.message_sid.is_(None))
                        .values(message_sid=message_sid))
    return moved


@cache
def _history_statement(bounded: bool) -> Any:
    # Built once: on the webhook's hot path, building it cost more than running it. The last
    # `limit` of each side, then (in Python) the last `limit` of both: as many rows as two queries.
    app_id: BindParameter[uuid.UUID] = bindparam("app_id")
    phone: BindParameter[str] = bindparam("phone")
    limit = bindparam("limit", type_=Integer)
    inbound = select(literal("inbound").label("direction"), SmsInbound.created_at.label("at"),
                     SmsInbound.body).where(SmsInbound.app_id == app_id, SmsInbound.from_number == phone,
                                            SmsInbound.kind == "message")
    outbound = select(literal("outbound").label("direction"), SmsOutbound.created_at.label("at"),
                      SmsOutbound.body).where(SmsOutbound.app_id == app_id, SmsOutbound.to_number == phone,
                                              SmsOutbound.run_id.is_not(None), SmsOutbound.via != "none")
    if bounded:
        inbound = inbound.where(SmsInbound.created_at < bindparam("before"))
        outbound = outbound.where(SmsOutbound.created_at < bindparam("before"))
    last_in = inbound.order_by(SmsInbound.created_at.desc()).limit(limit).subquery()
    last_out = outbound.order_by(SmsOutbound.created_at.desc()).limit(limit).subquery()
    return union_all(select(last_in), select(last_out))


def history(session: Session, *, app_id: uuid.UUID, phone: str, limit: int,
            before: datetime | None = None) -> list[dict[str, Any]]:
    """The last `limit` messages exchanged between the app and a phone, oldest first (one query)."""
    if limit <= 0:
        return []
    params: dict[str, Any] = {"app_id": app_id, "phone": phone, "limit": limit}
    if before is not None:
        params["before"] = before
    rows = session.execute(_history_statement(before is not None), params).all()
    items = [(r.direction, _aware(r.at), r.body) for r in rows]
    items.sort(key=lambda i: (i[1], i[0] != "inbound"))  # at the same instant, the inbound first
    return [{"direction": d, "body": b, "at": at.isoformat()} for d, at, b in items[-limit:]]


def _messages(org_id: uuid.UUID, app_id: uuid.UUID) -> Any:
    """Inbound and outbound messages of an app as one selectable with common columns."""
    inbound = select(
        literal("inbound").label("direction"), SmsInbound.id, SmsInbound.from_number.label("phone"),
        SmsInbound.created_at.label("at"), SmsInbound.body, SmsInbound.kind,
        literal("received").label("status"), SmsInbound.message_sid, SmsInbound.run_id,
        literal(0).label("part"), SmsInbound.to_number.label("number"),
    ).where(SmsInbound.org_id == org_id, SmsInbound.app_id == app_id)
    outbound = select(
        literal("outbound").label("direction"), SmsOutbound.id, SmsOutbound.to_number.label("phone"),
        SmsOutbound.created_at.label("at"), SmsOutbound.body, SmsOutbound.via.label("kind"),
        SmsOutbound.status, SmsOutbound.message_sid, SmsOutbound.run_id, SmsOutbound.part,
        SmsOutbound.from_number.label("number"),
    ).where(SmsOutbound.org_id == org_id, SmsOutbound.app_id == app_id)
    return union_all(inbound, outbound).subquery("messages")


def conversations(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, limit: int,
                  offset: int) -> tuple[list[dict[str, Any]], int]:
    """The app's conversations (one per phone), most recent first, and how many there are."""
    msgs = _messages(org_id, app_id)
    total = session.scalar(select(func.count(func.distinct(msgs.c.phone)))) or 0
    rows = session.execute(
        select(msgs.c.phone, func.count().label("messages"), func.max(msgs.c.at).label("last_at"))
        .group_by(msgs.c.phone).order_by(func.max(msgs.c.at).desc(), msgs.c.phone).limit(limit).offset(offset)
    ).all()
    phones = [r.phone for r in rows]
    opted = set(session.scalars(select(SmsOptOut.phone).where(SmsOptOut.org_id == org_id,
                                                              SmsOptOut.phone.in_(phones))))
    return [{"phone": r.phone, "messages": r.messages, "last_at": _aware(r.last_at),
             "opted_out": r.phone in opted} for r in rows], total


def conversation(session: Session, *, org_id: uuid.UUID, app_id: uuid.UUID, phone: str, limit: int,
                 offset: int) -> tuple[list[dict[str, Any]], int]:
    """The messages exchanged between the app and one phone, oldest first, and how many there are."""
    msgs = _messages(org_id, app_id)
    where = msgs.c.phone == phone
    total = session.scalar(select(func.count()).select_from(msgs).where(where)) or 0
    rows = session.execute(select(msgs).where(where).order_by(msgs.c.at, msgs.c.direction, msgs.c.part)
                           .limit(limit).offset(offset)).mappings().all()
    return [{**row, "at": _aware(row["at"])} for row in rows], total


def _aware(value: Any) -> Any:
    """A timestamp read through a union (SQLite may hand back text or a naive time) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
