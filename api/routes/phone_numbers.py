"""SMS for an app: route phone numbers to it, and read its conversations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import Builder, PageDep, SessionDep
from api.schemas import PageOf, Read
from api.schemas import Request as RequestBody
from api.twilio_numbers import verify_number
from core.crypto import cipher_for
from core.errors import InvalidRequest, NotFound
from core.settings import Settings
from models import apps as app_store
from models import audit, sms
from models import credentials as credential_store
from models.db import session_scope
from models.sms_messages import conversation, conversations
from worker.submit import Submitter

router = APIRouter(tags=["sms"])

SMS_TRIGGER = "twilio.sms_input"


class NumberRoute(RequestBody):
    """The phone number (E.164) whose SMS should start this app."""

    number: str = Field(pattern=sms.E164, examples=["+15551234567"])


class NumberRead(Read):
    """A routed number and the URLs to paste into Twilio's console for it."""

    id: uuid.UUID
    number: str
    app_id: uuid.UUID | None
    created_at: datetime
    webhook_url: str = Field(description="Twilio: A MESSAGE COMES IN → Webhook, HTTP POST.")
    status_callback_url: str = Field(description="Where delivery status callbacks go (set per message).")


class NumberList(BaseModel):
    """The numbers routed to an app."""

    items: list[NumberRead]


class ConversationSummary(BaseModel):
    """One phone the app has exchanged messages with."""

    phone: str
    messages: int
    last_at: datetime
    opted_out: bool


class MessageRead(BaseModel):
    """One message of a conversation: `inbound` from the phone or `outbound` to it."""

    direction: str
    id: uuid.UUID
    at: datetime
    body: str
    kind: str = Field(description="Inbound: message, stop, start or help. Outbound: rest, inline or none.")
    status: str
    message_sid: str | None
    run_id: uuid.UUID | None
    part: int
    number: str = Field(description="The app's number on this message.")


class ConversationRead(PageOf[MessageRead]):
    """A page of the messages with one phone, oldest first."""

    phone: str
    opted_out: bool


def _read(route: sms.SmsNumber, settings: Settings) -> NumberRead:
    base = settings.public_base_url.rstrip("/")
    return NumberRead(id=route.id, number=route.number, app_id=route.app_id, created_at=route.created_at,
                      webhook_url=f"{base}/twilio/sms/{route.id}",
                      status_callback_url=f"{base}/twilio/status")


def _sms_app_credentials(request: Request, org_id: uuid.UUID, app_id: uuid.UUID) -> dict[str, Any]:
    """The organization's Twilio credentials, once the app is checked to be a published SMS app."""
    with request.app.state.read_sessions() as session:
        app = app_store.get_app(session, org_id=org_id, app_id=app_id)
        try:
            version = app_store.get_version(session, app=app)
        except NotFound:
            raise InvalidRequest("publish the app before routing a number to it", loc=["app_id"]) from None
        submitter: Submitter = request.app.state.submitter
        analysis = submitter.analyses.get(version.id, lambda: version.graph)
        trigger = analysis.blocks[analysis.trigger].type if analysis.trigger else None
        if trigger != SMS_TRIGGER:
            raise InvalidRequest(f"the app's published trigger is {trigger}; an SMS app starts with "
                                 f"{SMS_TRIGGER}", loc=["app_id"])
        twilio = credential_store.load(session, org_id=org_id, type_="twilio",
                                       cipher=cipher_for(request.app.state.settings))
        others = [c.name for c in credential_store.list_credentials(session, org_id=org_id)
                  if c.type == "twilio"]
    default = credential_store.DEFAULT_NAME
    if twilio is None and others:
        # Webhook signatures, delivery callbacks and sending all use the one named `default`.
        raise InvalidRequest(f"SMS uses the organization's Twilio credential named {default!r}, and its "
                             f"Twilio credentials are named {', '.join(map(repr, others))}: store the "
                             f"account's credentials again with \"name\": \"{default}\" "
                             "(POST /v1/credentials)",
                             loc=["body", "number"])
    if twilio is None:
        raise InvalidRequest("store the organization's Twilio credentials first (POST /v1/credentials), "
                             "so inbound webhooks can be verified", loc=["body", "number"])
    return twilio


@router.post("/apps/{app_id}/phone-numbers", response_model=NumberRead, status_code=status.HTTP_201_CREATED,
             responses={200: {"model": NumberRead, "description": "Already routed to this app"},
                        409: {"description": "Another of the organization's apps has the number"},
                        503: {"description": "Twilio could not be asked whether the account owns it"}})
def route_number(app_id: uuid.UUID, body: NumberRoute, request: Request, response: Response,
                 principal: Builder) -> NumberRead:
    """Route a number of the organization's Twilio account to the app; returns the webhook URL for Twilio.

    Twilio is asked first whether the account owns the number (422 if not). Routes of other
    organizations are never looked at: each organization routes the numbers its account owns.
    """
    settings: Settings = request.app.state.settings
    twilio = _sms_app_credentials(request, principal.org_id, app_id)
    # Asked with no transaction open: Twilio's answer may take seconds.
    verified = verify_number(settings, account_sid=str(twilio["account_sid"]),
                             auth_token=str(twilio["auth_token"]), number=body.number)
    with session_scope(request.app.state.session_factory) as session:
        app_store.get_app(session, org_id=principal.org_id, app_id=app_id)  # not deleted meanwhile
        route, created = sms.route_number(session, org_id=principal.org_id, app_id=app_id, number=body.number,
                                          actor=principal.actor)
        if created:
            audit.record(session, org_id=principal.org_id, actor=principal.actor, action="sms.route",
                         target_type="app", target_id=app_id,
                         details={"number": body.number, "verified_with_twilio": verified})
        else:
            response.status_code = status.HTTP_200_OK
        session.flush()
        return _read(route, settings)


@router.get("/apps/{app_id}/phone-numbers", response_model=NumberList)
def list_numbers(app_id: uuid.UUID, request: Request, principal: Builder,
                 session: SessionDep) -> NumberList:
    """The numbers routed to the app."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    routes = sms.list_numbers(session, org_id=principal.org_id, app_id=app_id)
    return NumberList(items=[_read(r, request.app.state.settings) for r in routes])


@router.delete("/apps/{app_id}/phone-numbers/{route_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_number(app_id: uuid.UUID, route_id: uuid.UUID, principal: Builder,
                  session: SessionDep) -> Response:
    """Stop routing a number to the app (its messages stay in the conversation view)."""
    route = sms.get_number(session, org_id=principal.org_id, app_id=app_id, route_id=route_id)
    audit.record(session, org_id=principal.org_id, actor=principal.actor, action="sms.unroute",
                 target_type="app", target_id=app_id, details={"number": route.number})
    session.delete(route)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/apps/{app_id}/conversations", response_model=PageOf[ConversationSummary])
def list_conversations(app_id: uuid.UUID, principal: Builder, session: SessionDep,
                       page: PageDep) -> PageOf[ConversationSummary]:
    """The phones the app has exchanged messages with, most recent first."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    items, total = conversations(session, org_id=principal.org_id, app_id=app_id, limit=page.limit,
                                 offset=page.offset)
    return PageOf[ConversationSummary](items=[ConversationSummary(**i) for i in items], total=total,
                                       limit=page.limit, offset=page.offset)


@router.get("/apps/{app_id}/conversations/{phone}", response_model=ConversationRead)
def get_conversation(app_id: uuid.UUID, phone: Annotated[str, Path(min_length=1, max_length=64)],
                     principal: Builder, session: SessionDep, page: PageDep) -> ConversationRead:
    """Inbound and outbound messages with one phone, in order, each with its run."""
    app_store.get_app(session, org_id=principal.org_id, app_id=app_id)
    items, total = conversation(session, org_id=principal.org_id, app_id=app_id, phone=phone,
                                limit=page.limit, offset=page.offset)
    opted_out = sms.is_opted_out(session, org_id=principal.org_id, phone=phone)
    messages: list[Any] = [MessageRead(**i) for i in items]
    return ConversationRead(items=messages, total=total, limit=page.limit, offset=page.offset, phone=phone,
                            opted_out=opted_out)
