"""Browser sessions: sign in with an API key or a one-time link, read the session, sign out.

Any browser client (ours at `/builder`, or another builder on this origin) uses these: the
session lives server-side and the browser holds only an HttpOnly cookie (api/browser_auth.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import browser_auth
from api.deps import CurrentKey, SessionDep, Unauthorized
from core.errors import Forbidden
from models import audit
from models import browser_sessions as store
from models.base import utcnow
from models.db import session_scope
from models.orgs import ApiKey, Organization, authenticate, hash_key

router = APIRouter(tags=["session"])


class SignIn(BaseModel):
    """What a browser sends to sign in."""

    api_key: str = Field(min_length=1, max_length=200, description="An API key (`mk_...`).")


class SessionRead(BaseModel):
    """Who this browser is signed in as, and the token its writes must echo."""

    org_id: str
    org_name: str
    role: str
    actor: str
    csrf_token: str | None = Field(description="Send it as `X-CSRF-Token` on every write "
                                               "(null when the caller used a bearer key, which needs none).")


class SignInLinkRead(BaseModel):
    """A one-time sign-in link for a browser."""

    url: str
    expires_at: datetime


def _read(key: ApiKey, org: Organization, csrf: str | None) -> SessionRead:
    return SessionRead(org_id=str(org.id), org_name=org.name, role=key.role.value,
                       actor=f"key:{key.id}:{key.name}", csrf_token=csrf)


@router.post("/session", response_model=SessionRead, status_code=status.HTTP_201_CREATED)
def sign_in(body: SignIn, request: Request, response: Response, session: SessionDep) -> SessionRead:
    """Sign this browser in as an API key: the key is checked once and never kept in the browser."""
    key = authenticate(session, secret=body.api_key)
    if key is None:
        raise Unauthorized("this API key is unknown or revoked", loc=["body", "api_key"])
    browser, secret = store.open_session(session, key=key)
    audit.record(session, org_id=key.org_id, actor=f"key:{key.id}:{key.name}", action="session.open",
                 target_type="browser_session", target_id=browser.id, details={"via": "api_key"})
    browser_auth.set_cookie(request, response, secret)
    return _read(key, key.org, browser.csrf_token)


@router.get("/session", response_model=SessionRead)
def read_session(request: Request, principal: CurrentKey, session: SessionDep) -> SessionRead:
    """The caller (a browser session or a key) and, for a browser, its CSRF token."""
    key, org = session.get(ApiKey, principal.key_id), session.get(Organization, principal.org_id)
    assert key is not None and org is not None  # just authenticated
    browser = getattr(request.state, "browser", None)
    return _read(key, org, browser.csrf_token if browser is not None else None)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(request: Request, principal: CurrentKey) -> Response:
    """End this browser's session everywhere at once (the cookie alone is worth nothing after)."""
    cookie = request.cookies.get(browser_auth.COOKIE)
    browser = getattr(request.state, "browser", None)
    if cookie is None or browser is None:
        raise Forbidden("only a browser session can sign out; a key is revoked at DELETE /v1/keys/{id}")
    await run_in_threadpool(_close, request, cookie, principal.actor, browser.org_id)
    request.app.state.session_cache.drop(hash_key(cookie))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    browser_auth.clear_cookie(response)
    return response


def _close(request: Request, cookie: str, actor: str, org_id: uuid.UUID) -> None:
    with session_scope(request.app.state.session_factory) as session:
        session_id = store.close_session(session, secret=cookie)
        audit.record(session, org_id=org_id, actor=actor, action="session.close",
                     target_type="browser_session", target_id=session_id or "", details={})


@router.post("/session/links", response_model=SignInLinkRead, status_code=status.HTTP_201_CREATED)
def create_sign_in_link(request: Request, principal: CurrentKey, session: SessionDep) -> SignInLinkRead:
    """A one-time link that signs a browser in as the calling key (valid once, for 24 hours)."""
    key = session.get(ApiKey, principal.key_id)
    assert key is not None
    secret = store.create_link(session, key=key)
    audit.record(session, org_id=key.org_id, actor=principal.actor, action="session.link",
                 target_type="api_key", target_id=key.id, details={})
    base = request.app.state.settings.public_base_url.rstrip("/")
    return SignInLinkRead(url=f"{base}/builder/sign-in?token={secret}",
                          expires_at=utcnow() + store.LINK_TTL)
