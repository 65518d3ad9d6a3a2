"""Helpers shared by the tests of people: invite someone, accept in a fresh browser, sign in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

PASSWORD = "violet-harbor-1987"  # long enough and not on the list of common passwords


@dataclass
class Person:
    """A person signed in through a browser: the client (it sends the CSRF token on every
    request) and the session as the API described it."""

    client: TestClient
    session: dict[str, Any]

    @property
    def user_id(self) -> str:
        """The account's id."""
        return str(self.session["user_id"])


def browser(api: TestClient) -> TestClient:
    """A client with no key and no cookie: a fresh browser."""
    return TestClient(api.app, raise_server_exceptions=False)


def token_of(url: str) -> str:
    """The token of a one-time link."""
    return parse_qs(urlsplit(url).query)["token"][0]


def invite(admin: TestClient, email: str, role: str = "builder") -> dict[str, Any]:
    """An admin's invitation of `email` (its `url` is the link to hand over)."""
    answer = admin.post("/v1/invitations", json={"email": email, "role": role})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def signed(client: TestClient, answer: Any) -> Person:
    """The person an answer of a sign-in signed in; later writes carry the session's CSRF token."""
    assert answer.status_code == 201, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return Person(client=client, session=answer.json())


def accept(api: TestClient, url: str, password: str = PASSWORD) -> Person:
    """Accept an invitation link in a fresh browser, choosing (or giving) `password`."""
    client = browser(api)
    answer = client.post("/v1/invitations/accept", json={"token": token_of(url), "password": password})
    return signed(client, answer)


def join(api: TestClient, admin: TestClient, email: str, role: str = "builder") -> Person:
    """Invite `email` with `role` and accept in a fresh browser."""
    return accept(api, invite(admin, email, role)["url"])


def sign_in(api: TestClient, email: str, password: str = PASSWORD) -> Person:
    """Sign in with an email and a password in a fresh browser."""
    client = browser(api)
    return signed(client, client.post("/v1/session", json={"email": email, "password": password}))
