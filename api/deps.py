"""Dependencies shared by the routes: the session, the caller, the registry, pagination."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api import browser_auth
from api.key_cache import KeyCache
from blocks.registry import Registry
from builder.validation import Limits
from core.errors import Forbidden, MantleError
from core.settings import Settings
from inference.deployments import known_names
from models.db import session_scope
from models.deployments import names as deployment_names
from models.orgs import Role, authenticate, hash_key
from worker.composition import Directory


class Unauthorized(MantleError):
    """No valid API key was presented."""

    status_code = 401
    type = "unauthorized"


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, committed when the route returns, rolled back on any error."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


# scope="function": commit before the response is sent, so a failed commit is never a 2xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_BEARER = "An API key: `Authorization: Bearer mk_...`"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: an API key, or a person signed in through a browser, in one organization."""

    org_id: uuid.UUID
    key_id: uuid.UUID | None
    key_name: str
    role: Role
    user_id: uuid.UUID | None = None
    email: str = ""

    @property
    def actor(self) -> str:
        """How the audit log names this caller: `user:<id>:<email>` or `key:<id>:<name>`."""
        if self.user_id is not None:
            return f"user:{self.user_id}:{self.email}"
        return f"key:{self.key_id}:{self.key_name}"

    @property
    def name(self) -> str:
        """A short name for people to read (a review's reviewer): the email, or the key's name."""
        return self.email or self.key_name


def browser_principal(found: browser_auth.BrowserPrincipal) -> Principal:
    """The caller a live browser session stands for."""
    return Principal(org_id=found.org_id, key_id=found.key_id, key_name=found.key_name, role=found.role,
                     user_id=found.user_id, email=found.email)


async def get_principal(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller, from its bearer API key or its browser session; 401 without either.

    It uses its own short transaction, so the route's session (or a streaming response)
    never holds a lock taken just to check the key. A key found valid is remembered for a few
    seconds (api/key_cache.py), so most requests skip that transaction; those are answered
    here on the event loop, without a trip through the threadpool. A browser's session cookie
    (api/browser_auth.py) is checked the same way, and its writes must carry its CSRF token.
    """
    if credentials is None:
        cookie = request.cookies.get(browser_auth.COOKIE)
        if cookie:
            return await _browser_principal(request, cookie)
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`",
                           loc=["header", "Authorization"])
    cache: KeyCache[Principal] = request.app.state.key_cache
    digest = hash_key(credentials.credentials)
    principal = cache.get(digest)
    if principal is not None:
        return principal
    sessions = request.app.state.session_factory
    principal = await run_in_threadpool(_check_key, sessions, credentials.credentials)
    assert principal.key_id is not None
    cache.put(digest, principal.key_id, principal)
    return principal


async def _browser_principal(request: Request, cookie: str) -> Principal:
    """The caller a session cookie stands for; 401 if the session ended, 403 for a forged write."""
    cache: KeyCache[browser_auth.BrowserPrincipal] = request.app.state.session_cache
    digest = hash_key(cookie)
    found = cache.get(digest)
    if found is None:
        found = await run_in_threadpool(browser_auth.lookup, request.app.state.session_factory, cookie)
        if found is None:
            raise Unauthorized("your browser session has ended: sign in again",
                               loc=["cookie", browser_auth.COOKIE])
        cache.put(digest, found.cache_id, found)  # revoking the key forgets its sessions too
    browser_auth.check_write(request, found)
    request.state.browser = found
    return browser_principal(found)


def _check_key(sessions: sessionmaker[Session], secret: str) -> Principal:
    """The principal of a live key, checked against the database; Unauthorized otherwise."""
    with session_scope(sessions) as session:
        key = authenticate(session, secret=secret)
        if key is None:
            raise Unauthorized("invalid or revoked API key", loc=["header", "Authorization"])
        return Principal(org_id=key.org_id, key_id=key.id, key_name=key.name, role=key.role)


class Caller(HTTPBearer):
    """The caller of a route (`get_principal`), admitted only with one of `roles` (any role: None).

    One dependency where there were three (the role check, the principal, the bearer header):
    FastAPI solves each dependency of every request on its own, and on the hot routes the three
    cost more CPU than the cached key check itself. It is still FastAPI's `HTTPBearer`, under
    its name, so the OpenAPI document describes the API key as before."""

    def __init__(self, roles: tuple[Role, ...] | None = None) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER)
        self.roles = roles

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = await get_principal(request, await super().__call__(request))
        if self.roles is not None and principal.role not in self.roles:
            allowed = " or ".join(r.value for r in self.roles)
            who = "your role here" if principal.user_id is not None else "your key's role"
            raise Forbidden(f"this needs the role {allowed}; {who} is {principal.role.value}")
        return principal


CurrentKey = Annotated[Principal, Depends(Caller())]


def require_role(*roles: Role) -> object:
    """A dependency that admits only callers (keys or people) with one of `roles`."""
    return Depends(Caller(roles))


Builder = Annotated[Principal, require_role(Role.admin, Role.builder)]
Admin = Annotated[Principal, require_role(Role.admin)]
Reviewer = Annotated[Principal, require_role(Role.admin, Role.reviewer)]


async def get_registry(request: Request) -> Registry:
    """The block registry this API serves."""
    registry: Registry = request.app.state.registry
    return registry


async def get_settings_dep(request: Request) -> Settings:
    """The settings this API was built with."""
    settings: Settings = request.app.state.settings
    return settings


RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_limits(request: Request, settings: SettingsDep, principal: CurrentKey, session: SessionDep) -> Limits:
    """Graph limits from settings, the model deployments the caller's organization may use, and its
    published apps (for `app.call`)."""
    apps = Directory(session, principal.org_id, request.app.state.submitter.analyses.get)
    return Limits(max_nodes=settings.max_graph_nodes, max_edges=settings.max_graph_edges,
                  max_config_bytes=settings.max_config_bytes, max_graph_bytes=settings.max_graph_bytes,
                  models=known_names(settings, deployment_names(session, org_id=principal.org_id)), apps=apps)


LimitsDep = Annotated[Limits, Depends(get_limits)]


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a list the caller asked for."""

    limit: int
    offset: int


async def get_page(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")] = 0,
) -> Page:
    """Pagination parameters."""
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(get_page)]
