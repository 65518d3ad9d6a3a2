"""Who is calling from a browser: a server-side session named by an HttpOnly cookie.

Programs send an API key as a bearer token. A browser (the builder at `/builder`, the review
page) signs in once and then carries only the `mantle_session` cookie: HttpOnly, so script
never reads it; SameSite=Strict, so another site's page never sends it. Every request that
changes something must also send the session's CSRF token in `X-CSRF-Token` (the builder reads
it from `GET /v1/session`), and a request whose `Origin` names another site is refused, so a
forged write fails three times over. The session row (models/browser_sessions.py) is checked
on each request through the same short-lived cache as keys; signing out forgets it at once.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Forbidden
from models import browser_sessions as store
from models.db import session_scope
from models.orgs import Role

COOKIE = "mantle_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class BrowserPrincipal:
    """A live browser session: the key or person it acts for, and what its writes must echo."""

    session_id: uuid.UUID
    org_id: uuid.UUID
    org_name: str
    key_id: uuid.UUID | None
    key_name: str
    role: Role
    csrf_token: str
    user_id: uuid.UUID | None = None
    email: str = ""

    @property
    def cache_id(self) -> uuid.UUID:
        """What revoking forgets it by: its key (revoking the key ends it) or the session itself."""
        return self.key_id or self.session_id


def lookup(sessions: sessionmaker[Session], secret: str) -> BrowserPrincipal | None:
    """The live session a cookie's secret names, checked against the database; None otherwise."""
    with session_scope(sessions) as session:
        found = store.find_session(session, secret=secret)
        if found is None:
            return None
        return BrowserPrincipal(
            session_id=found.browser.id, org_id=found.org.id, org_name=found.org.name, role=found.role,
            key_id=found.key.id if found.key else None, key_name=found.key.name if found.key else "",
            user_id=found.user.id if found.user else None, email=found.user.email if found.user else "",
            csrf_token=found.browser.csrf_token)


def same_secret(a: str, b: str) -> bool:
    """Compare two secrets in constant time; any text, however odd, is a plain yes or no."""
    # compare_digest refuses non-ASCII str: compare the UTF-8 bytes, so odd input is a plain "no".
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def check_write(request: Request, principal: BrowserPrincipal) -> None:
    """Refuse a cookie-authenticated write without the session's CSRF token or from another site."""
    if request.method in SAFE_METHODS:
        return
    if not origin_ok(request):
        raise Forbidden(f"a browser request from {request.headers.get('origin')} may not act on this site",
                        loc=["header", "Origin"])
    token = request.headers.get(CSRF_HEADER)
    if not token or not same_secret(token, principal.csrf_token):
        raise Forbidden(f"this write needs the session's CSRF token in the {CSRF_HEADER} header "
                        "(read it from GET /v1/session)", loc=["header", CSRF_HEADER])


def origin_ok(request: Request) -> bool:
    """Whether a request's `Origin` (if any) is this site. A hidden origin ("null": a sandboxed
    frame, or a page whose referrer policy hides it) is refused; our pages send theirs."""
    origin = request.headers.get("origin")
    return origin is None or origin == own_origin(request)


def own_origin(request: Request) -> str:
    """This site's origin as the browser names it (`scheme://host[:port]`)."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def set_cookie(request: Request, response: Response, secret: str) -> None:
    """Keep the session's secret in an HttpOnly, SameSite=Strict cookie for the whole site."""
    # Behind a TLS-terminating proxy the request itself may be plain HTTP: trust the public URL too.
    secure = request.url.scheme == "https" or request.app.state.settings.public_base_url.startswith("https:")
    response.set_cookie(COOKIE, secret, max_age=int(store.SESSION_TTL.total_seconds()), path="/",
                        httponly=True, samesite="strict", secure=secure)


def clear_cookie(response: Response) -> None:
    """Forget the session on this browser."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
