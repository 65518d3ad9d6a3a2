"""The reviewer page over HTTP (no browser): sign-in, escaping, the form token, deciding."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from models.orgs import Role
from tests.conftest import Tenant, make_tenant
from tests.reviews import reviewer_key, waiting_review
from worker.engine import RunEngine


@pytest.fixture
def runs(sessions: sessionmaker[Session], settings: Settings, api: TestClient) -> RunEngine:
    """The run engine on the test's database (the test advances runs itself)."""
    return RunEngine(sessions, api.app.state.registry, settings, enqueue=lambda run_id, eta: None)


@pytest.fixture
def browser_client(api: TestClient) -> TestClient:
    """A client without credentials that keeps cookies, like a browser."""
    return TestClient(api.app, raise_server_exceptions=False, follow_redirects=False)


def sign_in(client: TestClient, key: str) -> None:
    """Sign in on the page with `key`."""
    response = client.post("/review/login", data={"key": key})
    assert response.status_code == 303, response.text


def token_of(html: str) -> str:
    """The form token on a page."""
    found = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', html)
    assert found, html
    return found.group(1)


def test_sign_in_keeps_only_a_session_id_in_a_strict_http_only_cookie(
        browser_client: TestClient, tenant: Tenant, sessions: sessionmaker[Session], api: TestClient) -> None:
    page = browser_client.get("/review")
    assert page.status_code == 200 and "Sign in to review" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script
    wrong = browser_client.post("/review/login", data={"key": "mk_nope"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    builder = make_tenant(sessions, api, "builders-only", role=Role.builder)
    refused = browser_client.post("/review/login", data={"key": builder.key})
    assert refused.status_code == 401 and "cannot review" in refused.text
    key = reviewer_key(sessions, tenant.org_id)
    forged = browser_client.post("/review/login", data={"key": key}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "set-cookie" not in forged.headers

    response = browser_client.post("/review/login", data={"key": key}, headers={"Origin": "http://testserver"})
    assert response.status_code == 303 and response.headers["location"] == "/review"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and key not in cookie
    queue = browser_client.get("/review").text
    assert "Review queue" in queue

    stolen = browser_client.cookies.get("mantle_session") or ""
    assert browser_client.post("/review/logout", data={"token": token_of(queue)}).status_code == 303
    replay = TestClient(api.app, raise_server_exceptions=False)
    replay.cookies.set("mantle_session", stolen)
    assert "Sign in to review" in replay.get("/review").text  # the session ended server-side


def test_a_reviewer_edits_and_approves_through_the_form(browser_client: TestClient, tenant: Tenant,
                                                        runs: RunEngine,
                                                        sessions: sessionmaker[Session]) -> None:
    run_id, summary = waiting_review(tenant, runs, message="<script>alert(1)</script>")
    sign_in(browser_client, reviewer_key(sessions, tenant.org_id))
    queue = browser_client.get("/review").text
    assert f"/review/items/{summary['id']}" in queue
    assert "<script>alert(1)" not in queue and "&lt;script&gt;alert(1)" in queue

    page = browser_client.get(f"/review/items/{summary['id']}")
    assert page.status_code == 200 and "<script>" not in page.text
    url = f"/review/items/{summary['id']}/decision"
    forged = browser_client.post(url, data={"token": "0" * 64, "action": "approve", "text": "pwned"})
    assert forged.status_code == 403
    assert tenant.client.get(f"/v1/reviews/{summary['id']}").json()["status"] == "pending"

    edited = "Thanks for writing.\r\nWe will reply by email."
    done = browser_client.post(url, data={"token": token_of(page.text), "action": "approve", "text": edited,
                                          "note": "rewrote it"})
    assert done.status_code == 303 and done.headers["location"] == f"/review/items/{summary['id']}"
    item = tenant.client.get(f"/v1/reviews/{summary['id']}").json()
    assert item["decision"] == "edit" and item["final_text"] == "Thanks for writing.\nWe will reply by email."
    runs.advance(uuid.UUID(run_id))
    run = tenant.client.get(f"/v1/runs/{run_id}").json()
    assert run["outputs"] == {"text": "Thanks for writing.\nWe will reply by email."}

    again = browser_client.post(url, data={"token": token_of(page.text), "action": "reject"})
    assert again.status_code == 409 and "already decided" in again.text
    assert "We will reply by email." in browser_client.get(f"/review/items/{summary['id']}").text


def test_another_organizations_item_is_not_found(browser_client: TestClient, tenant: Tenant,
                                                 other_tenant: Tenant, runs: RunEngine,
                                                 sessions: sessionmaker[Session]) -> None:
    _, summary = waiting_review(tenant, runs)
    sign_in(browser_client, reviewer_key(sessions, other_tenant.org_id))
    assert browser_client.get(f"/review/items/{summary['id']}").status_code == 404
    assert f"/review/items/{summary['id']}" not in browser_client.get("/review").text
