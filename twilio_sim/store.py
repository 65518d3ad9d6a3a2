"""The simulator's memory: the account, every message (both directions) and each phone's opt-out."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

DEFAULT_ACCOUNT_SID = "AC" + "5117" * 8
DEFAULT_AUTH_TOKEN = "51a7" * 8
DEFAULT_NUMBERS = ("+15550001111",)  # the number the README's walk-through routes
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}


def new_sid(prefix: str = "SM") -> str:
    """A Twilio-shaped id: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime) -> str:
    """Twilio's date format in resources (`Wed, 26 Nov 2026 18:00:00 +0000`)."""
    return format_datetime(moment, usegmt=True)


@dataclass
class Message:
    """One message the simulated carrier carried."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    direction: str  # outbound-api (REST), outbound-reply (TwiML answer), inbound
    status: str
    status_callback: str | None = None
    media_urls: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    error_code: int | None = None

    def resource(self) -> dict[str, Any]:
        """The message as Twilio's REST API shows it."""
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "sid": self.sid, "account_sid": self.account_sid, "to": self.to, "from": self.from_,
            "body": self.body, "status": self.status, "direction": self.direction,
            "num_segments": str(1 if len(self.body) <= 160 else -(-len(self.body) // 153)),
            "num_media": str(len(self.media_urls)), "api_version": "2010-04-01", "price": None,
            "price_unit": "USD", "error_code": self.error_code, "error_message": None,
            "messaging_service_sid": None, "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated), "date_sent": rfc2822(self.created), "uri": uri,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        }

    def summary(self) -> dict[str, Any]:
        """The message as the simulator's own control API shows it."""
        return {"sid": self.sid, "to": self.to, "from": self.from_, "body": self.body,
                "direction": self.direction, "status": self.status, "created": self.created.isoformat()}


@dataclass
class Callback:
    """A status callback the simulator delivered, and how it was answered."""

    sid: str
    status: str
    url: str
    response_status: int | None


@dataclass
class Store:
    """Everything the simulator remembers (in memory; one account)."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    messages: dict[str, Message] = field(default_factory=dict)
    callbacks: list[Callback] = field(default_factory=list)
    opted_out: set[tuple[str, str]] = field(default_factory=set)  # (phone, number)
    received: Counter[str] = field(default_factory=Counter)  # messages delivered to each phone
    answer_delay: float = 0.0  # seconds the REST API holds its answer to a create (to test timeouts)
    numbers: dict[str, str] = field(  # the account's phone numbers: E.164 → their PN SID
        default_factory=lambda: {number: new_sid("PN") for number in DEFAULT_NUMBERS})


    def add(self, message: Message) -> Message:
        """Remember a message; an inbound STOP/START changes the phone's opt-out, as carriers do."""
        self.messages[message.sid] = message
        if message.direction != "inbound":
            self.received[message.to] += 1
        else:
            word = message.body.strip().upper()
            if word in STOP_WORDS:
                self.opted_out.add((message.from_, message.to))
            elif word in START_WORDS:
                self.opted_out.discard((message.from_, message.to))
        return message

    def find(self, *, to: str | None = None, from_: str | None = None, after: datetime | None = None,
             before: datetime | None = None) -> list[Message]:
        """Messages matching the filters, newest first (Twilio's list order)."""
        found = [m for m in self.messages.values()
                 if (to is None or m.to == to) and (from_ is None or m.from_ == from_)
                 and (after is None or m.created >= after) and (before is None or m.created < before)]
        return sorted(found, key=lambda m: m.created, reverse=True)

    def reset(self) -> None:
        """Forget every message, callback and opt-out."""
        self.messages.clear()
        self.callbacks.clear()
        self.opted_out.clear()
        self.received.clear()
        self.answer_delay = 0.0
        self.numbers = {number: new_sid("PN") for number in DEFAULT_NUMBERS}

    def number_resource(self, number: str) -> dict[str, Any]:
        """One of the account's numbers as Twilio's IncomingPhoneNumbers API shows it."""
        sid = self.numbers[number]
        now = rfc2822(datetime.now(UTC))
        return {"sid": sid, "account_sid": self.account_sid, "phone_number": number, "friendly_name": number,
                "capabilities": {"sms": True, "mms": True, "voice": True, "fax": False},
                "sms_method": "POST", "sms_url": "", "status": "in-use", "date_created": now,
                "date_updated": now, "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json"}
