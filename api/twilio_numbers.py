"""Proof that a phone number belongs to the organization's Twilio account, asked of Twilio itself.

A route stored in Mantle proves nothing: anyone can type a number. Before a number is routed,
Twilio's IncomingPhoneNumbers API is asked, with the organization's own stored credentials,
whether the account owns it. Where Twilio cannot answer that question (test credentials may
not list numbers), the route is made unverified: it is harmless, because an inbound webhook
is only ever accepted with the signature of the account that owns the number.
"""

from __future__ import annotations

import json

import structlog
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from core.errors import InvalidRequest, MantleError
from core.settings import Settings
from core.twilio_http import PooledHttpClient

log = structlog.get_logger("mantle.sms")

AUTHENTICATE = 20003  # Twilio: the account SID and auth token do not match
TEST_CREDENTIALS = 20008  # Twilio: the resource is not accessible with test credentials


class TwilioUnavailable(MantleError):
    """Twilio could not be asked (unreachable, or it answered with its own error)."""

    status_code = 503
    type = "twilio_unavailable"


def _refusal(exc: Exception) -> tuple[int | None, int | None]:
    """The HTTP status and Twilio error code of a failed call, where Twilio answered at all."""
    if isinstance(exc, TwilioRestException):
        return exc.status, exc.code
    # A list call raises a bare TwilioException("Unable to fetch page", response).
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    try:
        code = json.loads(getattr(response, "text", "") or "{}").get("code")
    except (ValueError, AttributeError):
        code = None
    return status, code if isinstance(code, int) else None


def verify_number(settings: Settings, *, account_sid: str, auth_token: str, number: str) -> bool:
    """Whether Twilio confirmed the account owns `number` (False: it could not be asked about it);
    InvalidRequest when the account does not own it or refuses the credentials."""
    if not settings.twilio_verify_numbers:
        return False
    client = Client(account_sid, auth_token, http_client=PooledHttpClient(timeout=settings.twilio_timeout_s))
    client.api.base_url = settings.twilio_api_base_url.rstrip("/")
    try:
        owned = client.incoming_phone_numbers.list(phone_number=number, limit=20)
    except (TwilioException, urllib3.exceptions.HTTPError) as exc:
        status, code = _refusal(exc)
        if code == TEST_CREDENTIALS:
            log.info("sms_number_unverified", number=number, reason="test credentials")
            return False
        if code == AUTHENTICATE or status in (401, 403):
            raise InvalidRequest("Twilio refused the organization's stored credentials: replace them "
                                 "(PUT /v1/credentials/{id}) before routing a number", loc=["body", "number"]
                                 ) from None
        log.warning("twilio_unreachable", error=type(exc).__name__, status=status, code=code)
        raise TwilioUnavailable("Twilio could not be asked whether the account owns the number: try again",
                                loc=["body", "number"]) from None
    if not any(found.phone_number == number for found in owned):
        raise InvalidRequest(f"{number} is not a phone number of the Twilio account {account_sid}: buy or "
                             "port it in Twilio first", loc=["body", "number"])
    return True
