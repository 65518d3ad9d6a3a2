"""A local stand-in for Twilio's Messages API and its webhooks, for tests and demos.

* REST (what the official SDK calls, Basic auth with the account SID and auth token):
  `POST /2010-04-01/Accounts/{sid}/Messages.json` (create: 201 and a message resource),
  `GET .../Messages/{MessageSid}.json` (fetch) and `GET .../Messages.json` (list, filtered by
  `To`, `From`, `DateSent>`/`DateSent<`); `GET .../IncomingPhoneNumbers.json` (the account's
  numbers, filtered by `PhoneNumber`). Errors come in Twilio's shape and codes.
* Each created message moves `queued → sent → delivered`; with a `StatusCallback`, each step is
  POSTed there, signed with the auth token as Twilio signs (`X-Twilio-Signature`).
* Control API (the simulator's own, under `/sim`): `POST /sim/inbound` plays a phone texting a
  number: it posts a signed inbound-SMS webhook, times the answer and keeps any TwiML
  `<Message>` replies as delivered; `GET /sim/messages`, `GET /sim/wait` (until a phone has
  received more than `count` messages), `GET /sim/callbacks`, `POST /sim/delay`
  (hold REST answers, to play a caller that crashes mid-request), `POST /sim/numbers` (give the
  account a phone number), `POST /sim/reset`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from twilio.request_validator import RequestValidator

from twilio_sim.store import Callback, Message, Store, new_sid

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
INVALID_TO = "+15005550001"  # Twilio's magic test number for an invalid `To`


class InboundSms(BaseModel):
    """A text from a phone (`from`) to a number (`to`), delivered to the number's webhook `url`."""

    model_config = ConfigDict(populate_by_name=True)

    url: str = Field(pattern=r"^https?://")
    from_: str = Field(alias="from", min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=64)
    body: str = Field(default="", max_length=100_000)
    media_urls: list[str] = Field(default_factory=list, max_length=10)
    message_sid: str | None = Field(default=None, description="Reuse a SID to play Twilio retrying.")


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status,
                         "more_info": f"https://www.twilio.com/docs/errors/{code}"}, status_code=status)


def _when(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def replies_of(twiml: str) -> list[str]:
    """The `<Message>` texts of a TwiML answer."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return []
    return ["".join(el.itertext()).strip() for el in root.iter("Message")]


def create_sim(store: Store | None = None, *, status_delay: float = 0.02) -> FastAPI:
    """The simulator app; `store` holds its state (tests may look inside)."""
    state = store or Store()
    tasks: set[asyncio.Task[None]] = set()
    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
        clients["http"] = httpx.AsyncClient(timeout=15, limits=limits)  # Twilio gives a webhook 15 s
        yield
        for task in list(tasks):
            task.cancel()
        await clients.pop("http").aclose()

    app = FastAPI(title="Twilio simulator", lifespan=lifespan)
    app.state.store = state
    signer = RequestValidator(state.auth_token)
    waiters: dict[str, set[asyncio.Event]] = {}

    def deliver(message: Message) -> Message:
        """Keep a message and wake whoever waits for messages to its phone."""
        state.add(message)
        for event in waiters.get(message.to, ()):
            event.set()
        return message

    def unauthorized(request: Request, account_sid: str) -> JSONResponse | None:
        expected = "Basic " + base64.b64encode(f"{state.account_sid}:{state.auth_token}".encode()).decode()
        if account_sid != state.account_sid or request.headers.get("authorization") != expected:
            return _error(401, 20003, "Authenticate")
        return None

    async def post_signed(url: str, params: dict[str, str]) -> httpx.Response:
        signature = signer.compute_signature(url, params)
        return await clients["http"].post(url, data=params, headers={"X-Twilio-Signature": signature})

    async def progress(message: Message) -> None:
        for status in ("sent", "delivered"):
            await asyncio.sleep(status_delay)
            message.status, message.updated = status, datetime.now(UTC)
            if not message.status_callback:
                continue
            params = {"AccountSid": state.account_sid, "ApiVersion": "2010-04-01", "From": message.from_,
                      "MessageSid": message.sid, "MessageStatus": status, "SmsSid": message.sid,
                      "SmsStatus": status, "To": message.to}
            try:
                answered: int | None = (await post_signed(message.status_callback, params)).status_code
            except httpx.HTTPError:
                answered = None
            state.callbacks.append(Callback(message.sid, status, message.status_callback, answered))

    @app.post("/2010-04-01/Accounts/{account_sid}/Messages.json", status_code=201)
    async def create_message(account_sid: str, request: Request) -> Any:
        if (refused := unauthorized(request, account_sid)) is not None:
            return refused
        form = await request.form()
        to, from_, body = str(form.get("To") or ""), str(form.get("From") or ""), str(form.get("Body") or "")
        media = [str(v) for v in form.getlist("MediaUrl")]
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not media:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to == INVALID_TO or not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if (to, from_) in state.opted_out:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        message = deliver(Message(sid=new_sid("MM" if media else "SM"), account_sid=account_sid, to=to,
                                    from_=from_, body=body, direction="outbound-api", status="queued",
                                    status_callback=str(form.get("StatusCallback") or "") or None,
                                    media_urls=media))
        task = asyncio.create_task(progress(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if state.answer_delay > 0:  # accepted, but the caller hears of it late (or never)
            await asyncio.sleep(state.answer_delay)
        return JSONResponse(message.resource(), status_code=201)

    @app.get("/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}.json")
    async def fetch_message(account_sid: str, message_sid: str, request: Request) -> Any:
        if (refused := unauthorized(request, account_sid)) is not None:
            return refused
        message = state.messages.get(message_sid)
        if message is None:
            return _error(404, 20404, f"The requested resource /Messages/{message_sid}.json was not found")
        return message.resource()

    @app.get("/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def list_messages(account_sid: str, request: Request) -> Any:
        if (refused := unauthorized(request, account_sid)) is not None:
            return refused
        q = request.query_params
        size = min(max(int(q.get("PageSize", "50") or 50), 1), 1000)
        found = state.find(to=q.get("To"), from_=q.get("From"), after=_when(q.get("DateSent>", "")),
                           before=_when(q.get("DateSent<", "")))[:size]
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        return {"messages": [m.resource() for m in found], "end": max(len(found) - 1, 0), "start": 0,
                "page": 0, "page_size": size, "uri": uri, "first_page_uri": uri, "next_page_uri": None,
                "previous_page_uri": None}

    @app.get("/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json")
    async def list_numbers(account_sid: str, request: Request) -> Any:
        if (refused := unauthorized(request, account_sid)) is not None:
            return refused
        q = request.query_params
        size = min(max(int(q.get("PageSize", "50") or 50), 1), 1000)
        wanted = q.get("PhoneNumber")
        found = [state.number_resource(n) for n in sorted(state.numbers) if wanted in (None, n)][:size]
        uri = f"/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers.json"
        return {"incoming_phone_numbers": found, "end": max(len(found) - 1, 0), "start": 0, "page": 0,
                "page_size": size, "uri": uri, "first_page_uri": uri, "next_page_uri": None,
                "previous_page_uri": None}

    @app.post("/sim/numbers", status_code=204)
    async def add_number(number: Annotated[str, Query(pattern=E164.pattern)]) -> None:
        """Give the account a phone number (as buying one in Twilio's console would)."""
        state.numbers.setdefault(number, new_sid("PN"))

    @app.post("/sim/inbound")
    async def inbound(sms: InboundSms) -> Any:
        sid = sms.message_sid or new_sid("MM" if sms.media_urls else "SM")
        state.add(Message(sid=sid, account_sid=state.account_sid, to=sms.to, from_=sms.from_, body=sms.body,
                          direction="inbound", status="received", media_urls=sms.media_urls))
        params = {"ToCountry": "US", "SmsMessageSid": sid, "SmsSid": sid, "SmsStatus": "received",
                  "NumMedia": str(len(sms.media_urls)), "NumSegments": "1", "MessageSid": sid,
                  "AccountSid": state.account_sid, "From": sms.from_, "To": sms.to, "Body": sms.body,
                  "ApiVersion": "2010-04-01"}
        for i, url in enumerate(sms.media_urls):
            params[f"MediaUrl{i}"], params[f"MediaContentType{i}"] = url, "image/jpeg"
        started = time.perf_counter()
        try:
            answer = await post_signed(sms.url, params)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return JSONResponse({"message_sid": sid, "error": error}, status_code=502)
        ack_ms = (time.perf_counter() - started) * 1000
        replies = replies_of(answer.text) if answer.status_code == 200 else []
        for text in replies:
            deliver(Message(sid=new_sid(), account_sid=state.account_sid, to=sms.from_, from_=sms.to,
                              body=text, direction="outbound-reply", status="delivered"))
        return {"message_sid": sid, "status_code": answer.status_code, "ack_ms": round(ack_ms, 3),
                "twiml": answer.text, "replies": replies}

    @app.get("/sim/messages")
    async def messages(to: str | None = None,
                       from_: Annotated[str | None, Query(alias="from")] = None) -> Any:
        found = sorted(state.find(to=to, from_=from_), key=lambda m: m.created)
        return {"messages": [m.summary() for m in found]}

    @app.get("/sim/wait")
    async def wait(to: str, count: int = 0, timeout: float = 10) -> Any:
        """Once more than `count` messages reached phone `to` (or after `timeout` s): how many did."""
        event = asyncio.Event()
        waiters.setdefault(to, set()).add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_more_than(to, count, event), min(timeout, 60))
        finally:
            waiters[to].discard(event)
            if not waiters[to]:
                del waiters[to]
        return {"to": to, "count": state.received[to]}

    async def _more_than(to: str, count: int, event: asyncio.Event) -> None:
        while state.received[to] <= count:
            await event.wait()
            event.clear()

    @app.get("/sim/callbacks")
    async def callbacks() -> Any:
        return {"callbacks": [vars(c) for c in state.callbacks]}

    @app.post("/sim/delay", status_code=204)
    async def delay(seconds: float = 0.0) -> None:
        """Hold every REST create's answer this long (the message is accepted at once)."""
        state.answer_delay = max(seconds, 0.0)

    @app.post("/sim/reset", status_code=204)
    async def reset() -> None:
        state.reset()

    return app
