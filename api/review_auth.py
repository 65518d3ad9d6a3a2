"""Who is using the reviewer page: a browser session, the same one the builder uses.

Signing in with an email and password (counted and limited: api/sign_in.py) or an API key opens
a server-side session (models/browser_sessions.py); the browser keeps only its random id, in the
HttpOnly, SameSite=Strict `mantle_session` cookie, never the key or the password. Every form
carries the session's CSRF token, and a POST whose `Origin` names another site is refused (the
sign-in form included, so another site cannot sign a browser in as someone else). The session,
its key or person, and their role are checked on every request.
"""

from __future__ import annotations

from fastapi import Request, Response
from sqlalchemy.orm import Session, sessionmaker

from api import browser_auth
from api import sign_in as passwords
from api.deps import Principal, browser_principal
from core.errors import Forbidden
from models import audit
from models import browser_sessions as store
from models.db import session_scope
from models.orgs import Role, authenticate, hash_key

PAGE_ROLES = (Role.reviewer, Role.admin)
# The page is plain HTML and forms: no script, no framing, nothing fetched from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser names a form's origin as "null",
    # and the Origin check below needs the real one (other sites still get no referrer at all).
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class LoginRefused(Exception):
    """The key is unknown, revoked, or its role may not review."""


def open_page_session(sessions: sessionmaker[Session], secret: str) -> str:
    """Check a key once and open a browser session for it; returns the cookie's secret."""
    with session_scope(sessions) as session:
        key = authenticate(session, secret=secret)
        if key is None:
            raise LoginRefused("This key is unknown or revoked.")
        if key.role not in PAGE_ROLES:
            raise LoginRefused(f"A {key.role.value} key cannot review; use a reviewer or admin key.")
        browser, cookie = store.open_session(session, key=key, via="review page")
        audit.record(session, org_id=key.org_id, actor=f"key:{key.id}:{key.name}", action="session.open",
                     target_type="browser_session", target_id=browser.id, details={"via": "review page"})
        return cookie


def open_person_session(request: Request, email: str, password: str) -> str:
    """Check a person's password (counted and limited like every sign-in) and open a session in
    their first organization where they review; returns the cookie's secret."""
    try:
        opened = passwords.sign_in(request.app.state.session_factory, request.app.state.settings,
                                   email=email, password=password, address=passwords.client_address(request),
                                   roles=PAGE_ROLES, via="review page")
    except passwords.WrongPassword:
        raise LoginRefused("The email or the password is wrong.") from None
    except Forbidden:
        raise LoginRefused("Your role cannot review in any of your organizations: "
                           "ask an admin for the reviewer role.") from None
    return opened.cookie


def _browser(request: Request) -> browser_auth.BrowserPrincipal | None:
    cookie = request.cookies.get(browser_auth.COOKIE)
    if not cookie:
        return None
    found = browser_auth.lookup(request.app.state.session_factory, cookie)
    return found if found is not None and found.role in PAGE_ROLES else None


def page_principal(request: Request) -> Principal | None:
    """The reviewer signed in on this browser, or None."""
    found = _browser(request)
    if found is None:
        return None
    return browser_principal(found)


def form_token(request: Request) -> str:
    """The anti-forgery token every form of this browser's session must send back."""
    found = _browser(request)
    return found.csrf_token if found is not None else ""


def same_site(request: Request) -> bool:
    """Whether a form post comes from this site (browsers name the page's origin on every POST)."""
    return browser_auth.origin_ok(request)


def token_ok(request: Request, token: str) -> bool:
    """Whether a submitted form comes from this site and carries this browser's session token."""
    found = _browser(request)
    if found is None or not same_site(request):
        return False
    return browser_auth.same_secret(token, found.csrf_token)


def sign_in(request: Request, response: Response, cookie: str) -> None:
    """Keep the session's id in the HttpOnly, SameSite=Strict cookie."""
    browser_auth.set_cookie(request, response, cookie)


def sign_out(request: Request, response: Response) -> None:
    """End the session (server-side, so a copied cookie is worthless too) and forget it here."""
    cookie = request.cookies.get(browser_auth.COOKIE)
    if cookie:
        with session_scope(request.app.state.session_factory) as session:
            store.close_session(session, secret=cookie)
        request.app.state.session_cache.drop(hash_key(cookie))
    browser_auth.clear_cookie(response)
