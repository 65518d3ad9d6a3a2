"""Twilio's webhooks (public, form-encoded, signed): inbound SMS and delivery status callbacks.

An inbound SMS is answered within `twilio_reply_window_s` (plus a few milliseconds): if the
run finished by then, its reply is in the TwiML answer; otherwise the answer is an empty
`<Response/>` and `twilio.sms_output` sends the reply through the REST API. Closing the
inbound row before reading the inline replies is what keeps the two paths exclusive (see
`models/sms.py`). Anything Twilio would retry forever (an unknown number) gets 200.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from twilio.twiml.messaging_response import MessagingResponse

from api.sms_inbound import SID, Received, receive
from api.streams import wait_until_ended
from api.threads import starting_run
from api.twilio_auth import SIGNATURE_HEADER, check_signature, public_url
from core.crypto import cipher_for
from core.errors import Forbidden, InvalidInputs, MantleError
from models import credentials
from models.db import session_scope
from models.sms import SmsOutbound
from models.sms_messages import advance_status, answer_now

router = APIRouter(tags=["twilio"])
log = structlog.get_logger("mantle.sms")

TWIML: dict[int | str, dict[str, Any]] = {200: {"content": {"application/xml": {}},
                                              "description": "TwiML: the reply, or an empty <Response/>"}}


class UnsupportedMediaType(MantleError):
    """The body is not what the endpoint reads."""

    status_code = 415
    type = "unsupported_media_type"


def twiml(replies: list[str]) -> Response:
    """A TwiML answer with one `<Message>` per reply (none: an empty `<Response/>`)."""
    answer = MessagingResponse()
    for body in replies:
        answer.message(body)
    return Response(content=str(answer), media_type="application/xml")


async def _form(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise UnsupportedMediaType("Twilio webhooks are form-encoded (application/x-www-form-urlencoded)",
                                   loc=["header", "Content-Type"])
    return await request.form()


def _sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.session_factory
    return sessions


def _receive(request: Request, target: str, form: Any, url: str, signature: str | None) -> Received:
    with session_scope(_sessions(request)) as session:
        received = receive(session, request.app.state.read_sessions, target=target, form=form, url=url,
                           signature=signature, settings=request.app.state.settings,
                           submitter=request.app.state.submitter)
    if received.run_id is not None and not received.repeat:  # committed: a worker may take it now
        request.app.state.submitter.enqueue(received.run_id)
    return received


def _answer(request: Request, inbound_id: uuid.UUID) -> list[str]:
    with session_scope(_sessions(request)) as session:
        return answer_now(session, inbound_id=inbound_id)  # later replies go through the REST API


@router.post("/twilio/sms/{target}", response_class=Response, responses=TWIML)
async def inbound_sms(target: Annotated[str, Path(max_length=64, description="Route id or the number.")],
                      request: Request) -> Response:
    """Twilio's "a message comes in" webhook for a routed number (signed, form-encoded)."""
    form = await _form(request)
    url = public_url(request, request.app.state.settings)
    listening = request.app.state.watcher.listening()  # before the run is created: see api/watch.py
    received = await starting_run(request.app.state, _receive, request, target, form, url,
                                  request.headers.get(SIGNATURE_HEADER))
    if received.replies is not None or received.inbound_id is None:
        return twiml(received.replies or [])
    if received.run_id is not None:
        await wait_until_ended(request, received.run_id, request.app.state.settings.twilio_reply_window_s,
                               created_while=None if received.repeat else listening)
    return twiml(await run_in_threadpool(_answer, request, received.inbound_id))


def _verified(session: Session, request: Request, row: SmsOutbound | None, form: Any, url: str,
              signature: str | None) -> None:
    """Check the callback's signature before anything is read or written (403, logged, otherwise).

    A known message is checked with its organization's token; an unknown one with the tokens of the
    organizations holding the account the callback names (`AccountSid`): a genuine callback for a
    message no longer stored passes, and an unsigned or forged post learns nothing either way.
    """
    if not signature:
        log.warning("twilio_signature_missing", url=url, what="status")
        raise Forbidden("missing X-Twilio-Signature header", loc=["header", "X-Twilio-Signature"])
    cipher = cipher_for(request.app.state.settings)
    account = str(form.get("AccountSid") or "")
    if row is not None:
        stored = [c for c in [credentials.find_credential(session, org_id=row.org_id, type_="twilio")] if c]
    elif SID.match(account):
        stored = credentials.find_by_public_field(session, type_="twilio", field="account_sid", value=account)
    else:
        stored = []
    refusal = Forbidden("X-Twilio-Signature does not match this request",
                        loc=["header", "X-Twilio-Signature"])
    for credential in stored:
        token = str(credentials.reveal(credential, cipher)["auth_token"])
        try:
            check_signature(url=url, form=form, signature=signature, auth_token=token, what="status")
            return
        except Forbidden as exc:
            refusal = exc
    if not stored:
        log.warning("twilio_signature_invalid", url=url, what="status")
    raise refusal


def _status(request: Request, outbound_id: uuid.UUID | None, form: Any, url: str,
            signature: str | None) -> None:
    sid = str(form.get("MessageSid") or "")
    with session_scope(_sessions(request)) as session:
        if outbound_id is not None:
            row = session.get(SmsOutbound, outbound_id)
        else:
            row = session.scalar(select(SmsOutbound).where(SmsOutbound.message_sid == sid)) if sid else None
        _verified(session, request, row, form, url, signature)
        if row is None:
            log.warning("twilio_status_unknown_message", outbound_id=str(outbound_id), sid=sid[:64])
            return
        status = str(form.get("MessageStatus") or form.get("SmsStatus") or "")
        if not status:
            raise InvalidInputs([{"loc": ["body", "MessageStatus"], "msg": "field required",
                                  "type": "missing"}])
        if sid and row.message_sid is not None and sid != row.message_sid:
            log.warning("twilio_status_sid_mismatch", outbound_id=str(row.id))
            return
        error = str(form.get("ErrorCode") or "") or None
        advance_status(session, outbound_id=row.id, status=status.lower(), message_sid=sid or None,
                       error_code=error, error_message=f"Twilio error {error}" if error else None)


@router.post("/twilio/status/{outbound_id}", status_code=204, response_class=Response)
async def message_status(outbound_id: uuid.UUID, request: Request) -> Response:
    """Delivery status callback of one sent message part; the status only ever moves forward."""
    form = await _form(request)
    url = public_url(request, request.app.state.settings)
    await run_in_threadpool(_status, request, outbound_id, form, url, request.headers.get(SIGNATURE_HEADER))
    return Response(status_code=204)


@router.post("/twilio/status", status_code=204, response_class=Response)
async def message_status_by_sid(request: Request) -> Response:
    """Delivery status callback found by its `MessageSid` (for callbacks configured on the number)."""
    form = await _form(request)
    url = public_url(request, request.app.state.settings)
    await run_in_threadpool(_status, request, None, form, url, request.headers.get(SIGNATURE_HEADER))
    return Response(status_code=204)
