"""Password sign-in gives nothing away: one answer for an unknown email and a wrong password,
attempts limited per account and per address (429 with Retry-After) across API processes, and
no sign-in posted from another site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from models import sign_in_attempts as attempts
from models.shares import Limit
from tests.conftest import Tenant
from tests.people import PASSWORD, browser, join


def attempt(client: TestClient, email: str, password: str) -> tuple[int, dict[str, object], str | None]:
    """One sign-in: the status, the body and the Retry-After header."""
    answer = client.post("/v1/session", json={"email": email, "password": password})
    assert "set-cookie" not in answer.headers or answer.status_code == 201
    return answer.status_code, answer.json(), answer.headers.get("retry-after")


def limited_api(settings: Settings, sessions: sessionmaker[Session], **limits: int) -> TestClient:
    """Another API process on the same database, with these sign-in limits."""
    return TestClient(create_app(settings.model_copy(update=limits), sessions=sessions),
                      raise_server_exceptions=False)


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(api: TestClient, tenant: Tenant) -> None:
    join(api, tenant.client, "ada@example.com")
    unknown = attempt(browser(api), "nobody@example.com", PASSWORD)
    wrong = attempt(browser(api), "ada@example.com", "not-the-password")
    assert unknown[0] == wrong[0] == 401
    assert unknown[1] == wrong[1] == {"detail": [{"loc": ["body", "password"], "type": "unauthorized",
                                                  "msg": "the email or the password is wrong"}]}
    assert attempt(browser(api), "ada@example.com", PASSWORD)[0] == 201


def test_attempts_are_limited_per_account_even_with_the_right_password(
        api: TestClient, tenant: Tenant, settings: Settings, sessions: sessionmaker[Session]) -> None:
    join(api, tenant.client, "ada@example.com")
    join(api, tenant.client, "bob@example.com")
    one, two = (limited_api(settings, sessions, sign_in_per_account=3, sign_in_window_s=600)
                for _ in range(2))
    statuses = [attempt(client, "ada@example.com", "guess-number-x")[0] for client in (one, two, one)]
    assert statuses == [401, 401, 401]
    status, body, retry_after = attempt(two, "ada@example.com", PASSWORD)  # the other process counts too
    # Four attempts in this 600 s window: the next is let in once half of them have slid out of
    # the sliding window, 300 s into the next one.
    assert status == 429 and retry_after is not None and 300 <= int(retry_after) <= 900
    assert "too many sign-in attempts for this account" in str(body)
    assert attempt(one, "ADA@example.com ", PASSWORD)[0] == 429  # the same account, however spelled
    assert attempt(one, "bob@example.com", PASSWORD)[0] == 201  # another account is not blocked
    assert attempt(two, "bob@example.com", "guess-number-y")[0] == 401


def test_a_success_clears_the_accounts_count(api: TestClient, tenant: Tenant, settings: Settings,
                                             sessions: sessionmaker[Session]) -> None:
    join(api, tenant.client, "ada@example.com")
    client = limited_api(settings, sessions, sign_in_per_account=2)
    for _ in range(3):
        assert attempt(client, "ada@example.com", "typo-in-password")[0] == 401
        assert attempt(client, "ada@example.com", PASSWORD)[0] == 201


def test_attempts_are_limited_per_address_across_accounts(api: TestClient, tenant: Tenant, settings: Settings,
                                                          sessions: sessionmaker[Session]) -> None:
    client = limited_api(settings, sessions, sign_in_per_address=4)
    statuses = [attempt(client, f"user{i}@example.com", PASSWORD)[0] for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    status, body, retry_after = attempt(client, "another@example.com", PASSWORD)
    assert status == 429 and retry_after and "this address" in str(body)


def test_accepting_an_invitation_for_an_existing_account_counts_as_an_attempt(
        api: TestClient, tenant: Tenant, other_tenant: Tenant, settings: Settings,
        sessions: sessionmaker[Session]) -> None:
    join(api, tenant.client, "ada@example.com")
    client = limited_api(settings, sessions, sign_in_per_account=2)
    url = other_tenant.client.post("/v1/invitations", json={"email": "ada@example.com"}).json()["url"]
    token = url.split("token=")[1]
    body = {"token": token, "password": "guess-number-z"}
    answers = [client.post("/v1/invitations/accept", json=body).status_code for _ in range(3)]
    assert answers == [401, 401, 429]


def test_a_sign_in_posted_from_another_site_is_refused(api: TestClient, tenant: Tenant) -> None:
    join(api, tenant.client, "ada@example.com")
    client = browser(api)
    forged = client.post("/v1/session", json={"email": "ada@example.com", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    assert client.get("/v1/session").status_code == 401


def test_sign_in_bodies_are_checked(api: TestClient) -> None:
    client = browser(api)
    for body, words in (({"email": "a@example.com"}, "email and password"),
                        ({"api_key": "mk_x", "email": "a@example.com", "password": "x"}, "not both"),
                        ({}, "email and password")):
        answer = client.post("/v1/session", json=body)
        assert answer.status_code == 422 and words in answer.text, answer.text


def test_attempts_on_both_sides_of_a_windows_end_are_counted_together(session: Session) -> None:
    """The limit holds over a sliding window: two attempts at the end of one window and one at the
    start of the next are three in a moment, not two and one."""
    limit = Limit(bucket="account", window_s=900, maximum=2)
    end = datetime(2026, 12, 4, 7, 30, tzinfo=UTC)  # a window's end (they start at :00, :15, :30, :45)
    name = attempts.scope("account", "ada@example.com")

    def at(seconds: float) -> attempts.Refusal | None:
        return attempts.count_attempt(session, scopes=[(name, limit)], now=end + timedelta(seconds=seconds))

    assert at(-2) is None and at(-1) is None
    refused = at(1)
    # Let in again once the two have slid out of the window, 900 s after they were made.
    assert refused is not None and refused.limit is limit and refused.retry_after_s == 899
    windows = session.scalars(select(attempts.SignInAttempt.window_start)
                              .where(attempts.SignInAttempt.scope == name)).all()
    assert len(windows) == 2  # the counter keeps this window and the one before, no more

    other = attempts.scope("account", "bob@example.com")
    first = attempts.count_attempt(session, scopes=[(other, limit)], now=end - timedelta(seconds=899))
    # Two thirds into the next window, a third of the previous one's two attempts still counts.
    later = [attempts.count_attempt(session, scopes=[(other, limit)], now=end + timedelta(seconds=600 + i))
             for i in range(2)]
    assert first is None and later[0] is None and later[1] is not None
