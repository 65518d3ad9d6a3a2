"""What an inbound SMS does, in one transaction: check, store once, keywords, start the run.

The order matters: the route names the organization, whose auth token checks the signature
(403 before anything is read or written); then the fields (422 naming each bad one); then
the message is stored, deduplicated on its `MessageSid`, so a Twilio retry finds the first
delivery's row and its run instead of starting another.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.twilio_auth import check_signature
from blocks.twilio_sms_input import DEFAULT_HELP, SmsInputBlock
from core.crypto import cipher_for
from core.errors import Forbidden, InvalidInputs, MantleError, NotFound
from core.settings import Settings
from models import credentials
from models.apps import AppVersion, VersionRef, published_version
from models.runs import Run
from models.sms import SmsInbound, SmsNumber, find_routes, set_opt_out
from models.sms_messages import (
    add_outbound,
    history,
    inbound_row,
    inline_replies,
    insert_inbound,
    record_inbound,
)
from worker.submit import Submitter

log = structlog.get_logger("mantle.sms")

SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
MAX_MEDIA = 10
STOP_WORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT",
                        "OPT OUT", "REVOKE"})
START_WORDS = frozenset({"START", "YES", "UNSTOP", "OPTIN", "OPT IN"})
HELP_WORDS = frozenset({"HELP", "INFO"})


@dataclass(frozen=True)
class Message:
    """An inbound SMS's fields, checked."""

    message_sid: str
    from_number: str
    to_number: str
    body: str
    truncated: bool
    media_urls: list[str]


@dataclass(frozen=True)
class Received:
    """What the webhook answers from: the stored message, its run, whether it is a repeat, and the
    replies to answer with when they are known already (None: wait for the run, then read them)."""

    inbound_id: uuid.UUID | None
    run_id: uuid.UUID | None
    replies: list[str] | None
    repeat: bool = False


def keyword(body: str) -> str:
    """`stop`, `start`, `help` for Twilio's opt-out keywords (one word, any case), else `message`."""
    word = " ".join(body.strip().strip(".!").upper().split())
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return "help" if word in HELP_WORDS else "message"


def parse(form: Any, max_chars: int) -> Message:
    """The form's fields checked; InvalidInputs naming each missing or malformed required one."""
    problems: list[dict[str, Any]] = []

    def field(name: str, pattern: re.Pattern[str] | None = None, max_length: int = 64) -> str:
        value = str(form.get(name) or "").strip()
        if not value:
            problems.append({"loc": ["body", name], "msg": "field required", "type": "missing"})
        elif len(value) > max_length or (pattern is not None and not pattern.match(value)):
            problems.append({"loc": ["body", name], "msg": "malformed value", "type": "value_error"})
        return value

    sid = field("MessageSid", SID)
    field("AccountSid", SID)
    from_number, to_number = field("From"), field("To", max_length=32)
    if problems:
        raise InvalidInputs(problems)
    body = str(form.get("Body") or "")
    media: list[str] = []
    for i in range(MAX_MEDIA):  # whatever NumMedia says, keep the well-formed URLs that came
        url = str(form.get(f"MediaUrl{i}") or "")
        if url.startswith(("https://", "http://")) and len(url) <= 2000:
            media.append(url)
        elif url:
            log.warning("sms_media_url_dropped", message_sid=sid, index=i)
    return Message(message_sid=sid, from_number=from_number, to_number=to_number, body=body[:max_chars],
                   truncated=len(body) > max_chars, media_urls=media)


def receive(session: Session, reads: sessionmaker[Session], *, target: str, form: Any, url: str,
            signature: str | None, settings: Settings, submitter: Submitter) -> Received:
    """Verify, store and act on one inbound SMS (the caller commits, then enqueues the run).

    `reads`: read-only sessions (the API's) for the route and the conversation's history (one
    session for both, closed before anything is written), so that `session` sends nothing before
    what it writes; a message may then start its run in one round trip (`_start_on_known_version`)."""
    with reads() as read:  # its rows stay loaded once it closes: only their columns are read
        route = _signed_route(read, target=target, form=form, url=url, signature=signature, settings=settings)
        if route is None:
            return Received(None, None, [])
        message = parse(form, settings.sms_max_inbound_chars)
        if message.to_number != route.number:
            log.warning("sms_unknown_number", route_id=str(route.id), to=message.to_number)
            return Received(None, None, [])
        kind = keyword(message.body)
        known = _known_start(read, route, message, settings, submitter) if kind == "message" else None
    if known is not None:
        started = _start_on_known_version(session, route, known, submitter)
        if started is not None:
            return started
    inbound, created = record_inbound(session, route=route, message_sid=message.message_sid,
                                      from_number=message.from_number, to_number=message.to_number,
                                      body=message.body, truncated=message.truncated,
                                      media_urls=message.media_urls, kind=kind)
    if not created:
        if inbound.answer_state == "waiting":
            return Received(inbound.id, inbound.run_id, None, repeat=True)
        answered = [r.body for r in inline_replies(session, inbound_id=inbound.id)]
        return Received(inbound.id, inbound.run_id, answered, repeat=True)
    if kind in ("stop", "start"):
        set_opt_out(session, org_id=route.org_id, phone=message.from_number,
                    keyword=message.body.strip()[:20], opted_out=kind == "stop")
        log.info("sms_opt_out" if kind == "stop" else "sms_opt_in", route_id=str(route.id))
    elif kind == "help":
        try:
            text = str(_trigger_config(session, route, submitter)[0]["help_text"])
        except MantleError:  # no app or no SMS trigger: the default help still answers
            text = DEFAULT_HELP
        add_outbound(session, org_id=route.org_id, app_id=route.app_id, run_id=None, node_id=None,
                     inbound_id=inbound.id, key=f"help:{inbound.id}", to=message.from_number,
                     from_=message.to_number, parts=[text], via="inline", status="inline")
        return Received(inbound.id, None, [text])
    else:
        _start_run(session, route, inbound, message, settings, submitter)
    # Nothing can have answered a message committed only now: unless the webhook waits, no replies.
    return Received(inbound.id, inbound.run_id, None if inbound.answer_state == "waiting" else [])


def _signed_route(session: Session, *, target: str, form: Any, url: str, signature: str | None,
                  settings: Settings) -> SmsNumber | None:
    """The route the webhook is for, its signature checked with its organization's auth token
    (403 when it does not match); None for a number no organization routes.

    A path naming a number may match several organizations' routes: the one whose Twilio account
    sent the request (its `AccountSid`) and whose token verifies the signature is the one meant.
    """
    candidates = find_routes(session, target=target, type_="twilio")
    account = str(form.get("AccountSid") or "")
    if len(candidates) > 1:
        candidates = [(r, c) for r, c in candidates
                      if c is not None and c.public.get("account_sid") == account]
    if not candidates:
        log.warning("sms_unknown_number", target=target, to=str(form.get("To") or "")[:32])
        return None
    cipher = cipher_for(settings)
    refusal: Forbidden | None = None
    for route, stored in candidates:
        twilio = credentials.reveal(stored, cipher) if stored is not None else None
        if twilio is None:
            log.warning("sms_no_credentials", route_id=str(route.id))
            refusal = refusal or Forbidden("no Twilio credentials are stored to verify this webhook",
                                           loc=["header", "X-Twilio-Signature"])
            continue
        try:
            check_signature(url=url, form=form, signature=signature, auth_token=str(twilio["auth_token"]),
                            what="inbound")
        except Forbidden as exc:
            refusal = exc
            continue
        return route
    raise refusal or Forbidden("X-Twilio-Signature does not match this request",
                               loc=["header", "X-Twilio-Signature"])


def _trigger_config(session: Session, route: SmsNumber, submitter: Submitter
                    ) -> tuple[dict[str, Any], VersionRef]:
    """The SMS trigger's config in the app's latest version, and that version;
    NotFound/InvalidInputs if there is none."""
    if route.app_id is None:
        raise NotFound("the number's app was deleted", loc=["To"])
    version = published_version(session, org_id=route.org_id, app_id=route.app_id)
    if version is None:
        raise NotFound("the app has no published version", loc=["To"])
    submitter.latest.put((route.org_id, route.app_id), version)  # for `_start_on_known_version`
    # The graph is read only when this process has not analysed the version yet.
    analysis = submitter.analyses.get(version.id, lambda: session.get_one(AppVersion, version.id).graph)
    block = analysis.blocks.get(analysis.trigger or "")
    if not isinstance(block, SmsInputBlock):
        raise InvalidInputs([{"loc": ["app"], "type": "not_sms_app",
                              "msg": "the app's published version does not start with twilio.sms_input"}])
    return block.config.model_dump(), version


def _inputs(message: Message, history: list[dict[str, Any]]) -> dict[str, Any]:
    return {"body": message.body, "from_number": message.from_number, "to_number": message.to_number,
            "message_sid": message.message_sid, "media_urls": message.media_urls, "history": history}


@dataclass(frozen=True)
class KnownStart:
    """What `_start_on_known_version` writes: the inbound row and the run's inputs."""

    inbound: dict[str, Any]
    inputs: dict[str, Any]
    waiting: bool


def _known_start(read: Session, route: SmsNumber, message: Message, settings: Settings,
                 submitter: Submitter) -> KnownStart | None:
    """The rows to start the message's run with on the app's latest version as this process knows
    it, the conversation's history read on `read`; None when that way cannot be taken (not on
    PostgreSQL, the version not known here): `receive` goes the usual way."""
    if route.app_id is None or read.get_bind().dialect.name != "postgresql":
        return None
    known = submitter.known_latest(route.org_id, route.app_id)
    block = known[1].blocks.get(known[1].trigger or "") if known is not None else None
    if not isinstance(block, SmsInputBlock):
        return None
    waiting = settings.twilio_reply_window_s > 0
    inbound = inbound_row(route=route, message_sid=message.message_sid, from_number=message.from_number,
                          to_number=message.to_number, body=message.body, truncated=message.truncated,
                          media_urls=message.media_urls, kind="message",
                          answer_state="waiting" if waiting else "closed")
    earlier = history(read, app_id=route.app_id, phone=message.from_number,
                      limit=block.config.history_messages, before=inbound["created_at"])
    return KnownStart(inbound, _inputs(message, earlier), waiting)


def _start_on_known_version(session: Session, route: SmsNumber, known: KnownStart,
                            submitter: Submitter) -> Received | None:
    """Store the message and start its run in one round trip with the COMMIT, on the app's latest
    version as this process knows it (`Submitter.start_on_known_version`, which checks it is still
    the latest); None when that cannot be done (the version replaced, a MessageSid already
    stored): nothing was written, and `receive` goes the usual way.

    The same rows as the usual way (`record_inbound`, `_start_run`): the usual way sent eight
    statements, each its own round trip, and its unit of work cost more CPU than the rest of the
    webhook. A Twilio retry fails the inbound row's unique index, which rolls the run back too.
    """
    assert route.app_id is not None  # `_known_start` checked

    def store_inbound(session: Session, run: Run) -> None:
        insert_inbound(session, {**known.inbound, "run_id": run.id})

    try:
        run = submitter.start_on_known_version(session, org_id=route.org_id, app_id=route.app_id,
                                               inputs=known.inputs, trigger="sms", also=store_inbound)
    except IntegrityError:  # the message is stored already (a retry): the usual way answers it
        session.rollback()
        return None
    if run is None:
        return None
    return Received(known.inbound["id"], run.id, None if known.waiting else [])


def _start_run(session: Session, route: SmsNumber, inbound: SmsInbound, message: Message,
               settings: Settings, submitter: Submitter) -> None:
    """Start the app's run for the message; a message that cannot start one is kept with the reason."""
    try:
        config, version = _trigger_config(session, route, submitter)
        assert route.app_id is not None
        earlier = history(session, app_id=route.app_id, phone=message.from_number,
                          limit=int(config["history_messages"]), before=inbound.created_at)
        # No Idempotency-Key: the unique inbound row, in this same transaction, is what makes a
        # retried webhook start no second run.
        run, _ = submitter.create(session, org_id=route.org_id, app_id=route.app_id,
                                  inputs=_inputs(message, earlier),
                                  published=version, trigger="sms")
    except MantleError as exc:
        inbound.note = exc.message
        log.warning("sms_no_run", route_id=str(route.id), message_sid=message.message_sid, reason=exc.message)
        return
    inbound.run_id = run.id
    # With no window the webhook never answers inline: the reply always goes by REST.
    inbound.answer_state = "waiting" if settings.twilio_reply_window_s > 0 else "closed"
