"""People on the reviewer page: sign in with an email and a password, decide, and be named for it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from core.settings import Settings
from tests.conftest import Tenant
from tests.people import PASSWORD, join
from tests.reviews import waiting_review
from worker.engine import RunEngine


@pytest.fixture
def runs(sessions: sessionmaker[Session], settings: Settings, api: TestClient) -> RunEngine:
    """The run engine on the test's database (the test advances runs itself)."""
    return RunEngine(sessions, api.app.state.registry, settings, enqueue=lambda run_id, eta: None)


def page_browser(api: TestClient) -> TestClient:
    """A client without credentials that keeps cookies and shows redirects, like a browser."""
    return TestClient(api.app, raise_server_exceptions=False, follow_redirects=False)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    """Post the page's sign-in form."""
    answer = client.post("/review/login", data={"email": email, "password": password})
    assert answer.status_code == 303, answer.text
    return client


def test_a_reviewer_signs_in_with_a_password_and_the_decision_names_her(
        api: TestClient, tenant: Tenant, runs: RunEngine) -> None:
    rita = join(api, tenant.client, "rita@example.com", "reviewer")
    _, summary = waiting_review(tenant, runs)
    client = log_in(page_browser(api), "Rita@Example.com")
    queue = client.get("/review").text
    assert "rita@example.com" in queue and f"/review/items/{summary['id']}" in queue
    page = client.get(f"/review/items/{summary['id']}").text
    token = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', page)
    assert token is not None
    form = {"token": token.group(1), "action": "approve", "text": "Reply to: where is my parcel?"}
    done = client.post(f"/review/items/{summary['id']}/decision", data=form)
    assert done.status_code == 303, done.text
    item = tenant.client.get(f"/v1/reviews/{summary['id']}").json()
    assert item["decided_by"] == f"user:{rita.user_id}:rita@example.com"
    [entry] = [e for e in tenant.client.get("/v1/audit", params={"target_id": summary["id"]}).json()["items"]
               if e["action"] == "review.decide"]
    assert entry["actor"] == item["decided_by"]


def test_wrong_passwords_and_roles_that_cannot_review_are_refused(api: TestClient, tenant: Tenant) -> None:
    join(api, tenant.client, "bob@example.com", "builder")
    join(api, tenant.client, "rita@example.com", "reviewer")
    client = page_browser(api)
    for email, password, words in (("rita@example.com", "not-her-password", "email or the password is wrong"),
                                   ("nobody@example.com", PASSWORD, "email or the password is wrong"),
                                   ("bob@example.com", PASSWORD, "cannot review")):
        refused = client.post("/review/login", data={"email": email, "password": password})
        assert refused.status_code == 401 and words in refused.text, refused.text
        assert "set-cookie" not in refused.headers
    forged = client.post("/review/login", data={"email": "rita@example.com", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers


def test_too_many_attempts_get_a_429_page_with_retry_after(
        tenant: Tenant, settings: Settings, sessions: sessionmaker[Session], api: TestClient) -> None:
    join(api, tenant.client, "rita@example.com", "reviewer")
    strict = settings.model_copy(update={"sign_in_per_account": 2})
    limited = TestClient(create_app(strict, sessions=sessions), raise_server_exceptions=False,
                         follow_redirects=False)
    statuses = [limited.post("/review/login", data={"email": "rita@example.com", "password": "guess-it-123"})
                for _ in range(3)]
    assert [s.status_code for s in statuses] == [401, 401, 429]
    assert int(statuses[-1].headers["retry-after"]) > 0 and "Too many attempts" in statuses[-1].text
