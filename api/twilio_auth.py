"""Twilio's request signatures: the public URL Twilio called, and the check of `X-Twilio-Signature`.

Twilio signs the full URL it requested plus the sorted form fields with the account's auth
token. Behind a proxy the URL the API sees is not the one Twilio called, so it is rebuilt
from the configured public base URL; `X-Forwarded-Proto`/`X-Forwarded-Host` are honoured only
when the settings say the proxy in front is trusted to set them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import Request
from twilio.request_validator import RequestValidator

from core.errors import Forbidden
from core.settings import Settings

log = structlog.get_logger("mantle.sms")

SIGNATURE_HEADER = "x-twilio-signature"


def public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio called for this request (what its signature covers)."""
    base = urlsplit(settings.public_base_url)
    scheme, host = base.scheme, base.netloc
    if settings.trust_proxy:
        forwarded_proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        forwarded_host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
        scheme = forwarded_proto or scheme
        host = forwarded_host or host
    url = f"{scheme}://{host}{base.path.rstrip('/')}{request.scope['path']}"
    query = request.url.query
    return f"{url}?{query}" if query else url


def check_signature(*, url: str, form: Any, signature: str | None, auth_token: str, what: str) -> None:
    """Refuse (403, logged) a request whose signature is missing or does not match the token."""
    if not signature:
        log.warning("twilio_signature_missing", url=url, what=what)
        raise Forbidden("missing X-Twilio-Signature header", loc=["header", "X-Twilio-Signature"])
    if not RequestValidator(auth_token).validate(url, form, signature):
        log.warning("twilio_signature_invalid", url=url, what=what)
        raise Forbidden("X-Twilio-Signature does not match this request",
                        loc=["header", "X-Twilio-Signature"])
