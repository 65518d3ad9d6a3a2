"""Who is asking, and may they: visitor identity, page tokens, access codes and the origin check.

A visitor is the id in a signed cookie, carried into the page token the form posts back;
a script without a page token is its client address. A cookie alone never authorizes a
post: posts need the page token (which another site cannot read) or must bring the access
code themselves, and a browser's cross-site post is refused by its `Origin`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import Request, Response

from api.public.tokens import Tokens
from core.errors import Forbidden, RateLimited
from core.settings import Settings
from models.db import session_scope
from models.shares import Limit, Share, check_code, count_usage, over_limit, release_usage

VISITOR_COOKIE = "mantle_visitor"
ACCESS_COOKIE = "mantle_access"
PAGE_HEADER = "X-Mantle-Page"
CODE_HEADER = "X-Access-Code"
ACCESS_ATTEMPTS_PER_MINUTE = 10


class AccessCodeNeeded(Forbidden):
    """The share has an access code and none (or a wrong one) came with the request."""

    type = "access_code"


class PageExpired(Forbidden):
    """The page token is missing, forged, for another link, or too old."""

    type = "page_expired"


@dataclass(frozen=True, slots=True)
class Visitor:
    """Whom a request's limits count against, and whether its page already proved the access code."""

    key: str
    access: bool = False


def tokens(request: Request) -> Tokens:
    """The API process's token signers."""
    found: Tokens = request.app.state.share_tokens
    return found


def code_mark(share: Share) -> str:
    """A fingerprint of the share's current access code: changing the code voids older grants."""
    return hashlib.sha256((share.access_code_hash or "").encode()).hexdigest()[:16]


def client_address(request: Request) -> str:
    """The caller's address (the proxy's, unless uvicorn is told to trust forwarded headers)."""
    return request.client.host if request.client else "unknown"


def cookie_visitor(request: Request) -> str:
    """The visitor id from the signed cookie, or a fresh one."""
    data = tokens(request).visitor.unsign(request.cookies.get(VISITOR_COOKIE))
    return str(data["v"]) if data and isinstance(data.get("v"), str) else secrets.token_urlsafe(12)


def set_cookie(request: Request, response: Response, name: str, value: str, path: str,
               max_age: float) -> None:
    """An HttpOnly cookie; over HTTPS `SameSite=None; Secure` so an embedded page keeps it."""
    https = request.url.scheme == "https"
    response.set_cookie(name, value, max_age=int(max_age), path=path, httponly=True, secure=https,
                        samesite="none" if https else "lax")


def access_cookie_valid(request: Request, share: Share) -> bool:
    """Whether this browser entered the share's current access code recently."""
    data = tokens(request).access.unsign(request.cookies.get(ACCESS_COOKIE))
    return data is not None and data.get("s") == str(share.id) and data.get("c") == code_mark(share)


def page_token(request: Request, share: Share, visitor_id: str, granted: bool, ttl_s: float) -> str:
    """The token a page's form posts back: its visitor, and whether the access code was proved."""
    return tokens(request).page.sign(
        {"s": str(share.id), "v": visitor_id, "a": code_mark(share) if granted else ""}, ttl_s)


def visitor_of(request: Request, share: Share, *, need_page: bool = False) -> Visitor:
    """The visitor a post comes from: its page token's, or its address for a script."""
    raw = request.headers.get(PAGE_HEADER)
    if raw is None and not need_page:
        return Visitor(tokens(request).bucket_id("ip:" + client_address(request)))
    data = tokens(request).page.unsign(raw)
    if data is None or data.get("s") != str(share.id):
        raise PageExpired("this page has expired: reload it and try again", loc=["header", PAGE_HEADER])
    granted = share.has_access_code and data.get("a") == code_mark(share)
    return Visitor(tokens(request).bucket_id("v:" + str(data.get("v"))), access=granted)


def check_origin(request: Request, settings: Settings) -> None:
    """Refuse a browser's post from another site (the page's own script sends its origin)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("cross-site requests are refused", loc=["header", "Sec-Fetch-Site"])
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser's cross-origin request: scripts and same-origin forms
    public = urlsplit(settings.public_base_url)
    allowed = {f"{request.url.scheme}://{request.url.netloc}", f"{public.scheme}://{public.netloc}"}
    if origin not in allowed:
        raise Forbidden("cross-site requests are refused", loc=["header", "Origin"])


def _too_many(limit: Limit, now: datetime) -> RateLimited:
    wait = limit.retry_after(now)
    return RateLimited(f"too many wrong access codes: try again in {wait} seconds", retry_after=wait)


def verify_code(request: Request, share: Share, code: str | None, now: datetime) -> None:
    """Check an access code; wrong guesses are counted per address and limited per minute.

    Each guess takes one of the minute's attempts in a single upsert before the code is checked,
    and a right code gives it back: concurrent guesses can never check more codes than the limit
    (a read of the count followed by a later increment let 23 of 30 through a limit of 10).
    """
    guesses = [Limit("fail:" + tokens(request).bucket_id("ip:" + client_address(request)), 60,
                     ACCESS_ATTEMPTS_PER_MINUTE)]
    factory = request.app.state.session_factory
    if not code:
        with session_scope(factory) as session:
            found = over_limit(session, share_id=share.id, limits=guesses, now=now)
        if found is not None:
            raise _too_many(found, now)
        raise AccessCodeNeeded("this app needs an access code", loc=["body", "access_code"])
    with session_scope(factory) as session:
        found = count_usage(session, share_id=share.id, limits=guesses, now=now)
        if found is not None:
            raise _too_many(found, now)  # rolled back: a refused guess takes no attempt
    if not check_code(share.access_code_hash or "", code):
        raise AccessCodeNeeded("wrong access code", loc=["body", "access_code"])
    with session_scope(factory) as session:
        release_usage(session, share_id=share.id, limits=guesses, now=now)
