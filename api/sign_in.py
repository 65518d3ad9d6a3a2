"""Signing a person in with an email and a password, for the builder's API and the review page.

Each attempt is counted first, per account and per client address, in the database and in its
own committed transaction (models/sign_in_attempts.py), so a refused password still counts, the
limit holds across API processes, and an attempt past it gets a 429 with Retry-After without any
hashing. Then the password is checked: an unknown email and a wrong password get the same
answer after the same argon2 work (models/accounts.py). A right one opens a server-side session
(models/browser_sessions.py) in the person's first organization, or the one they asked for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from core.errors import Forbidden, MantleError, RateLimited
from core.settings import Settings
from models import accounts, audit
from models import browser_sessions as store
from models import sign_in_attempts as attempts
from models.base import utcnow
from models.db import session_scope
from models.orgs import Role
from models.shares import Limit

WRONG = "the email or the password is wrong"


class WrongPassword(MantleError):
    """The email is unknown or the password wrong (never said which)."""

    status_code = 401
    type = "unauthorized"


@dataclass(frozen=True, slots=True)
class Opened:
    """A session just opened for a person: the cookie's secret and where it is."""

    cookie: str
    session_id: uuid.UUID
    user_id: uuid.UUID
    org_id: uuid.UUID


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: what the server was told)."""
    return request.client.host if request.client is not None else "unknown"


def count(sessions: sessionmaker[Session], settings: Settings, *, email: str, address: str) -> None:
    """Count one password attempt for `email` from `address`; RateLimited past either limit."""
    window = settings.sign_in_window_s
    account = Limit(bucket="account", window_s=window, maximum=settings.sign_in_per_account)
    place = Limit(bucket="address", window_s=window, maximum=settings.sign_in_per_address)
    now = utcnow()
    with session_scope(sessions) as session:
        exceeded = attempts.count_attempt(session, now=now, scopes=[
            (attempts.scope("account", email.strip().lower()), account),
            (attempts.scope("address", address), place)])
    if exceeded is not None:
        what = "this account" if exceeded.limit is account else "this address"
        raise RateLimited(f"too many sign-in attempts for {what}: try again in {exceeded.retry_after_s} s",
                          retry_after=exceeded.retry_after_s, loc=["body", "email"])


def sign_in(sessions: sessionmaker[Session], settings: Settings, *, email: str, password: str, address: str,
            org_id: uuid.UUID | None = None, roles: tuple[Role, ...] = tuple(Role), via: str = "password"
            ) -> Opened:
    """Check a person's password (counted first) and open a session in one of their organizations
    whose role is in `roles`; WrongPassword, RateLimited or Forbidden otherwise."""
    count(sessions, settings, email=email, address=address)
    with session_scope(sessions) as session:
        user = accounts.authenticate(session, email=email, password=password)
        if user is None:
            raise WrongPassword(WRONG, loc=["body", "password"])
        attempts.clear(session, name=attempts.scope("account", user.email))
        places = [(m, o) for m, o in accounts.memberships(session, user_id=user.id) if m.role in roles]
        if org_id is not None:
            places = [(m, o) for m, o in places if o.id == org_id] or places
        if not places:
            raise Forbidden("your account has no organization where it may sign in here: ask an admin "
                            "to invite you", loc=["body", "email"])
        membership, org = places[0]
        return open_for(session, user=user, org_id=org.id, via=via)


def open_for(session: Session, *, user: accounts.User, org_id: uuid.UUID, via: str) -> Opened:
    """Open a person's session in an organization they belong to, and say so in its audit log."""
    browser, cookie = store.open_user_session(session, user=user, org_id=org_id, via=via)
    audit.record(session, org_id=org_id, actor=f"user:{user.id}:{user.email}", action="session.open",
                 target_type="browser_session", target_id=browser.id, details={"via": via})
    return Opened(cookie=cookie, session_id=browser.id, user_id=user.id, org_id=org_id)
