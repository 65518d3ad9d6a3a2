"""Who is using the reviewer page: an API key entered once, kept in an HttpOnly cookie.

The cookie is `SameSite=Strict` (another site's form never carries it) and every form also
carries a token derived from the key, so a forged POST fails twice over. The key itself never
reaches JavaScript or another site; it is checked (live, reviewer or admin) on every request.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response
from sqlalchemy.orm import Session, sessionmaker

from api.deps import Principal
from models.db import session_scope
from models.orgs import Role, authenticate

COOKIE = "mantle_review_key"
COOKIE_PATH = "/review"
COOKIE_MAX_AGE_S = 12 * 3600
PAGE_ROLES = (Role.reviewer, Role.admin)
# The page is plain HTML and forms: no script, no framing, nothing fetched from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class LoginRefused(Exception):
    """The key is unknown, revoked, or its role may not review."""


def key_principal(sessions: sessionmaker[Session], secret: str) -> Principal:
    """The caller a key stands for, if it may use the review queue; raises LoginRefused."""
    with session_scope(sessions) as session:
        key = authenticate(session, secret=secret)
        if key is None:
            raise LoginRefused("This key is unknown or revoked.")
        if key.role not in PAGE_ROLES:
            raise LoginRefused(f"A {key.role.value} key cannot review; use a reviewer or admin key.")
        return Principal(org_id=key.org_id, key_id=key.id, key_name=key.name, role=key.role)


def page_principal(request: Request) -> Principal | None:
    """The reviewer signed in on this browser, or None."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    try:
        return key_principal(request.app.state.session_factory, secret)
    except LoginRefused:
        return None


def form_token(request: Request) -> str:
    """The anti-forgery token every form of this browser's session must send back."""
    secret = request.cookies.get(COOKIE, "")
    return hmac.new(secret.encode(), b"mantle-review-form", hashlib.sha256).hexdigest()


def token_ok(request: Request, token: str) -> bool:
    """Whether a submitted form token belongs to this browser's session."""
    return bool(request.cookies.get(COOKIE)) and hmac.compare_digest(form_token(request), token)


def sign_in(request: Request, response: Response, secret: str) -> None:
    """Keep the key in an HttpOnly, SameSite=Strict cookie scoped to the reviewer page."""
    # Behind a TLS-terminating proxy the request itself may be plain HTTP: trust the public URL too.
    secure = request.url.scheme == "https" or request.app.state.settings.public_base_url.startswith("https:")
    response.set_cookie(COOKIE, secret, max_age=COOKIE_MAX_AGE_S, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=secure)


def sign_out(response: Response) -> None:
    """Forget the key on this browser."""
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
