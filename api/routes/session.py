"""Browser sessions: sign in with an email and password, an API key or a one-time link; read the
session, switch organization, sign out.

Any browser client (ours at `/builder`, or another builder on this origin) uses these: the
session lives server-side and the browser holds only an HttpOnly cookie (api/browser_auth.py).
A person's password attempts are counted and limited (api/sign_in.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Self

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import browser_auth, sign_in
from api.deps import CurrentKey, Principal, SessionDep, Unauthorized
from core.errors import Forbidden, NotFound
from models import accounts, audit
from models import browser_sessions as store
from models.base import utcnow
from models.db import session_scope
from models.orgs import ApiKey, Organization, authenticate, hash_key

router = APIRouter(tags=["session"])


class SignIn(BaseModel):
    """What a browser sends to sign in: an email and a password, or an API key."""

    api_key: str | None = Field(default=None, min_length=1, max_length=200,
                                description="An API key (`mk_...`).")
    email: str | None = Field(default=None, min_length=1, max_length=254)
    password: str | None = Field(default=None, min_length=1, max_length=accounts.MAX_PASSWORD_LENGTH)
    org_id: uuid.UUID | None = Field(default=None, description="With a password: which of your "
                                     "organizations to open (default: the one you joined first).")

    @model_validator(mode="after")
    def one_way(self) -> Self:
        """Exactly one way in: a key, or an email with its password."""
        person = self.email is not None or self.password is not None
        if self.api_key is not None and person:
            raise ValueError("send either api_key, or email and password, not both")
        if self.api_key is None and (self.email is None or self.password is None):
            raise ValueError("send email and password (or api_key)")
        return self


class OrgChoice(BaseModel):
    """One of a person's organizations, with their role in it."""

    id: str
    name: str
    role: str


class SessionRead(BaseModel):
    """Who this browser is signed in as, and the token its writes must echo."""

    org_id: str
    org_name: str
    role: str
    actor: str
    csrf_token: str | None = Field(description="Send it as `X-CSRF-Token` on every write "
                                               "(null when the caller used a bearer key, which needs none).")
    user_id: str | None = Field(default=None, description="The person signed in (null for a key).")
    email: str | None = None
    orgs: list[OrgChoice] = Field(default_factory=list, description="A person's organizations, to "
                                  "switch between at POST /v1/session/org (empty for a key).")


class OrgSwitch(BaseModel):
    """The organization a person's session should act in."""

    org_id: uuid.UUID


class SignInLinkRead(BaseModel):
    """A one-time sign-in link for a browser."""

    url: str
    expires_at: datetime


def session_read(session: Session, principal: Principal, csrf: str | None) -> SessionRead:
    """The session answer for a caller: its organization, role, and a person's organizations."""
    org = session.get(Organization, principal.org_id)
    assert org is not None  # just authenticated
    orgs = []
    if principal.user_id is not None:
        orgs = [OrgChoice(id=str(o.id), name=o.name, role=m.role.value)
                for m, o in accounts.memberships(session, user_id=principal.user_id)]
    return SessionRead(org_id=str(org.id), org_name=org.name, role=principal.role.value,
                       actor=principal.actor, csrf_token=csrf, email=principal.email or None, orgs=orgs,
                       user_id=str(principal.user_id) if principal.user_id else None)


def opened_read(request: Request, response: Response, opened: sign_in.Opened) -> SessionRead:
    """Set the cookie of a person's new session and describe it."""
    browser_auth.set_cookie(request, response, opened.cookie)
    with session_scope(request.app.state.session_factory) as session:
        found = store.find_session(session, secret=opened.cookie)
        assert found is not None and found.user is not None  # just opened
        principal = Principal(org_id=found.org.id, key_id=None, key_name="", role=found.role,
                              user_id=found.user.id, email=found.user.email)
        return session_read(session, principal, found.browser.csrf_token)


def refuse_foreign(request: Request) -> None:
    """A sign-in posted by another site's page is refused (it would sign this browser in as them)."""
    if not browser_auth.origin_ok(request):
        raise Forbidden(f"a browser request from {request.headers.get('origin')} may not sign in here",
                        loc=["header", "Origin"])


@router.post("/session", response_model=SessionRead, status_code=status.HTTP_201_CREATED,
             responses={401: {"description": "Wrong key, or wrong email or password (the same answer)."},
                        429: {"description": "Too many attempts; see Retry-After."}})
def sign_in_browser(body: SignIn, request: Request, response: Response) -> SessionRead:
    """Sign this browser in with an email and password (or an API key, checked once and never kept)."""
    refuse_foreign(request)
    sessions = request.app.state.session_factory
    if body.api_key is None:
        assert body.email is not None and body.password is not None  # the validator says so
        opened = sign_in.sign_in(sessions, request.app.state.settings, email=body.email,
                                 password=body.password, address=sign_in.client_address(request),
                                 org_id=body.org_id)
        return opened_read(request, response, opened)
    with session_scope(sessions) as session:
        key = authenticate(session, secret=body.api_key)
        if key is None:
            raise Unauthorized("this API key is unknown or revoked", loc=["body", "api_key"])
        browser, secret = store.open_session(session, key=key)
        audit.record(session, org_id=key.org_id, actor=f"key:{key.id}:{key.name}", action="session.open",
                     target_type="browser_session", target_id=browser.id, details={"via": "api_key"})
        principal = Principal(org_id=key.org_id, key_id=key.id, key_name=key.name, role=key.role)
        read = session_read(session, principal, browser.csrf_token)
    browser_auth.set_cookie(request, response, secret)
    return read


@router.get("/session", response_model=SessionRead)
def read_session(request: Request, principal: CurrentKey, session: SessionDep) -> SessionRead:
    """The caller (a person, a browser session of a key, or a key) and, for a browser, its CSRF token."""
    browser = getattr(request.state, "browser", None)
    return session_read(session, principal, browser.csrf_token if browser is not None else None)


@router.post("/session/org", response_model=SessionRead)
def switch_org(body: OrgSwitch, request: Request, principal: CurrentKey, session: SessionDep) -> SessionRead:
    """Act in another of your organizations; the session and its CSRF token stay the same."""
    cookie = request.cookies.get(browser_auth.COOKIE)
    browser = getattr(request.state, "browser", None)
    if cookie is None or browser is None or principal.user_id is None:
        raise Forbidden("only a person signed in through a browser switches organization; a key "
                        "belongs to one", loc=["body", "org_id"])
    membership = accounts.get_membership(session, org_id=body.org_id, user_id=principal.user_id)
    if membership is None:
        raise NotFound("you are not a member of an organization with this id", loc=["body", "org_id"])
    store.switch_org(session, secret=cookie, org_id=body.org_id)
    request.app.state.session_cache.drop(hash_key(cookie))
    moved = Principal(org_id=body.org_id, key_id=None, key_name="", role=membership.role,
                      user_id=principal.user_id, email=principal.email)
    audit.record(session, org_id=body.org_id, actor=moved.actor, action="session.switch",
                 target_type="browser_session", target_id=browser.session_id,
                 details={"from_org": str(principal.org_id)})
    return session_read(session, moved, browser.csrf_token)


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
    if principal.key_id is None:
        raise Forbidden("a one-time link signs in as a key; a person signs in with their password")
    key = session.get(ApiKey, principal.key_id)
    assert key is not None
    secret = store.create_link(session, key=key)
    audit.record(session, org_id=key.org_id, actor=principal.actor, action="session.link",
                 target_type="api_key", target_id=key.id, details={})
    base = request.app.state.settings.public_base_url.rstrip("/")
    return SignInLinkRead(url=f"{base}/builder/sign-in?token={secret}",
                          expires_at=utcnow() + store.LINK_TTL)
