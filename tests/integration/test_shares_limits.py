"""A share's limits (per visitor, per link, per day) and its access code, counted in the database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.webapps import page_config, publish, share, steady_minute, webapp_graph

BODY = {"inputs": {"name": "Ada"}}


@pytest.fixture(autouse=True)
def _same_minute() -> None:
    """Limits count per clock minute: start each test well inside one."""
    steady_minute()


def _page_token(api: TestClient, slug: str) -> str:
    """A fresh visitor: a new browser (no cookie) opening the page."""
    fresh = TestClient(api.app, raise_server_exceptions=False)
    token: str = page_config(fresh.get(f"/s/{slug}").text)["page_token"]
    return token


def test_each_visitor_has_a_limit_per_minute(api: TestClient, tenant: Tenant) -> None:
    slug = share(tenant.client, publish(tenant.client, webapp_graph()), visitor_per_minute=2)["slug"]
    first = {"X-Mantle-Page": _page_token(api, slug)}
    assert [api.post(f"/s/{slug}/runs", json=BODY, headers=first).status_code for _ in range(2)] == [202, 202]
    limited = api.post(f"/s/{slug}/runs", json=BODY, headers=first)
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["detail"][0]["type"] == "rate_limited"
    assert "try again in" in limited.json()["detail"][0]["msg"]
    second = {"X-Mantle-Page": _page_token(api, slug)}
    assert api.post(f"/s/{slug}/runs", json=BODY, headers=second).status_code == 202
    # Scripts without a page are one visitor per address.
    assert [api.post(f"/s/{slug}/runs", json=BODY).status_code for _ in range(3)] == [202, 202, 429]


def test_the_page_itself_answers_429_once_the_visitor_is_over(api: TestClient, tenant: Tenant) -> None:
    slug = share(tenant.client, publish(tenant.client, webapp_graph()), visitor_per_minute=1)["slug"]
    browser = TestClient(api.app, raise_server_exceptions=False)  # keeps its visitor cookie
    token = page_config(browser.get(f"/s/{slug}").text)["page_token"]
    assert browser.post(f"/s/{slug}/runs", json=BODY, headers={"X-Mantle-Page": token}).status_code == 202
    again = browser.get(f"/s/{slug}")
    assert again.status_code == 429 and "Retry-After" in again.headers and "try again" in again.text.lower()
    assert TestClient(api.app).get(f"/s/{slug}").status_code == 200  # someone else is fine


def test_link_limit_and_daily_quota_hold_for_everyone(api: TestClient, tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    busy = share(tenant.client, app_id, visitor_per_minute=None, link_per_minute=2)["slug"]
    visitors = [{"X-Mantle-Page": _page_token(api, busy)} for _ in range(3)]
    codes = [api.post(f"/s/{busy}/runs", json=BODY, headers=v).status_code for v in visitors]
    assert codes == [202, 202, 429]
    assert api.get(f"/s/{busy}").status_code == 429  # for a new visitor too: the link is busy

    daily = share(tenant.client, app_id, visitor_per_minute=None, link_per_minute=None, daily_quota=1)["slug"]
    assert api.post(f"/s/{daily}/runs", json=BODY).status_code == 202
    over = api.post(f"/s/{daily}/runs", json=BODY)
    assert over.status_code == 429 and "daily limit" in over.json()["detail"][0]["msg"]
    assert int(over.headers["Retry-After"]) <= 86400
    assert api.get(f"/s/{daily}").status_code == 429
    # Another link to the same app has its own limits.
    assert api.post(f"/s/{share(tenant.client, app_id)['slug']}/runs", json=BODY).status_code == 202


def test_access_code_gates_the_page_and_the_runs(api: TestClient, tenant: Tenant) -> None:
    slug = share(tenant.client, publish(tenant.client, webapp_graph()), access_code="let me in")["slug"]
    browser = TestClient(api.app, raise_server_exceptions=False)
    gate = browser.get(f"/s/{slug}")
    assert gate.status_code == 200 and "Access code needed" in gate.text
    assert "Greeter" not in gate.text and "fields" not in page_config(gate.text)
    token = page_config(gate.text)["page_token"]
    headers = {"X-Mantle-Page": token}

    refused = browser.post(f"/s/{slug}/runs", json=BODY, headers=headers)
    assert refused.status_code == 403 and refused.json()["detail"][0]["type"] == "access_code"
    assert browser.post(f"/s/{slug}/access", json={"code": "nope"}, headers=headers).status_code == 403
    assert browser.post(f"/s/{slug}/access", json={"code": "let me in"}).status_code == 403  # no page token
    granted = browser.post(f"/s/{slug}/access", json={"code": "let me in"}, headers=headers)
    assert granted.status_code == 204 and f"Path=/s/{slug}" in granted.headers["set-cookie"]

    page = browser.get(f"/s/{slug}")
    assert "Greeter" in page.text and 'id="mantle-form"' in page.text
    inside = {"X-Mantle-Page": page_config(page.text)["page_token"]}
    assert browser.post(f"/s/{slug}/runs", json=BODY, headers=inside).status_code == 202

    # Scripts bring the code with each request; the JSON twin asks for it too.
    assert api.post(f"/s/{slug}/runs", json={**BODY, "access_code": "let me in"}).status_code == 202
    assert TestClient(api.app).get(f"/s/{slug}/app.json").status_code == 403
    assert api.get(f"/s/{slug}/app.json", headers={"X-Access-Code": "let me in"}).status_code == 200


def test_wrong_access_codes_are_limited(api: TestClient, tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    created = share(tenant.client, app_id, access_code="correct horse")
    slug = created["slug"]
    answers = [api.post(f"/s/{slug}/runs", json={**BODY, "access_code": f"guess {i}"}).status_code
               for i in range(11)]
    assert answers == [403] * 10 + [429]
    assert api.post(f"/s/{slug}/runs", json={**BODY, "access_code": "correct horse"}).status_code == 429

    # A changed code voids the grants made for the old one.
    other = share(tenant.client, app_id, access_code="first code")
    browser = TestClient(api.app, raise_server_exceptions=False)
    headers = {"X-Mantle-Page": page_config(browser.get(f"/s/{other['slug']}").text)["page_token"]}
    browser.post(f"/s/{other['slug']}/access", json={"code": "first code"}, headers=headers)
    assert 'id="mantle-form"' in browser.get(f"/s/{other['slug']}").text
    tenant.client.patch(f"/v1/apps/{app_id}/shares/{other['id']}", json={"access_code": "second code"})
    assert "Access code needed" in browser.get(f"/s/{other['slug']}").text


def test_a_null_limit_means_no_limit(api: TestClient, tenant: Tenant) -> None:
    created = share(tenant.client, publish(tenant.client, webapp_graph()), visitor_per_minute=None)
    assert created["visitor_per_minute"] is None and created["link_per_minute"] == 60
    assert [api.post(f"/s/{created['slug']}/runs", json=BODY).status_code for _ in range(12)] == [202] * 12
