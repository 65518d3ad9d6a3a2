"""A browser signs in once and then holds only an HttpOnly cookie; its writes need the CSRF token."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.conftest import Tenant

GRAPH = {"nodes": [{"id": "in", "type": "trigger.api", "config": {"fields": [{"name": "name"}]}},
                   {"id": "greet", "type": "text.template", "config": {"template": "Hi {{ customer }}"}}],
         "edges": []}


def browser(api: TestClient) -> TestClient:
    """A client with no key: a fresh browser."""
    return TestClient(api.app, raise_server_exceptions=False)


def signed_in(api: TestClient, key: str) -> tuple[TestClient, str]:
    """A browser signed in with `key`, and its CSRF token."""
    client = browser(api)
    answer = client.post("/v1/session", json={"api_key": key})
    assert answer.status_code == 201, answer.text
    return client, answer.json()["csrf_token"]


def test_signing_in_sets_an_httponly_strict_cookie_and_never_returns_the_key(api: TestClient,
                                                                             tenant: Tenant) -> None:
    client = browser(api)
    answer = client.post("/v1/session", json={"api_key": tenant.key})
    assert answer.status_code == 201
    cookie = answer.headers["set-cookie"]
    assert "mantle_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert tenant.key not in cookie and tenant.key not in answer.text
    body = answer.json()
    assert body["org_name"] == "acme" and body["role"] == "admin" and body["csrf_token"]
    assert client.get("/v1/session").json()["csrf_token"] == body["csrf_token"]
    assert client.get("/v1/apps").status_code == 200


def test_a_wrong_key_is_refused_and_no_session_means_401(api: TestClient, tenant: Tenant) -> None:
    client = browser(api)
    refused = client.post("/v1/session", json={"api_key": "mk_not-a-key"})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert refused.json()["detail"][0]["loc"] == ["body", "api_key"]
    assert client.get("/v1/session").status_code == 401
    client.cookies.set("mantle_session", "forged")
    assert client.get("/v1/apps").status_code == 401


def test_writes_need_the_csrf_token_and_the_same_origin(api: TestClient, tenant: Tenant) -> None:
    client, csrf = signed_in(api, tenant.key)
    missing = client.post("/v1/apps", json={"name": "No token"})
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"][0]["msg"]
    for wrong in (b"nope", "ünïcode-tøken".encode(), csrf[:-1].encode()):
        assert client.post("/v1/apps", json={"name": "x"}, headers={"X-CSRF-Token": wrong}).status_code == 403
    foreign = client.post("/v1/apps", json={"name": "x"},
                          headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["detail"][0]["msg"]
    hidden = client.post("/v1/apps", json={"name": "x"}, headers={"X-CSRF-Token": csrf, "Origin": "null"})
    assert hidden.status_code == 403
    made = client.post("/v1/apps", json={"name": "With token"},
                       headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"})
    assert made.status_code == 201, made.text
    assert [a["name"] for a in tenant.client.get("/v1/apps").json()["items"]] == ["With token"]


def test_signing_out_ends_the_session_for_the_cookie_too(api: TestClient, tenant: Tenant) -> None:
    client, csrf = signed_in(api, tenant.key)
    stolen = client.cookies.get("mantle_session")
    assert client.delete("/v1/session").status_code == 403  # a write: it needs the token too
    assert client.delete("/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    replay = browser(api)
    replay.cookies.set("mantle_session", stolen or "")
    assert replay.get("/v1/apps").status_code == 401


def test_a_revoked_key_ends_its_browser_sessions(api: TestClient, tenant: Tenant) -> None:
    made = tenant.client.post("/v1/keys", json={"name": "bea", "role": "builder"}).json()
    client, _ = signed_in(api, made["key"])
    assert client.get("/v1/apps").status_code == 200
    assert tenant.client.delete(f"/v1/keys/{made['id']}").status_code == 200
    assert client.get("/v1/apps").status_code == 401
    assert client.get("/v1/session").status_code == 401


def test_a_session_sees_only_its_own_organization(api: TestClient, tenant: Tenant,
                                                  other_tenant: Tenant) -> None:
    theirs = other_tenant.client.post("/v1/apps", json={"name": "Secret"}).json()["id"]
    client, csrf = signed_in(api, tenant.key)
    assert client.get(f"/v1/apps/{theirs}").status_code == 404
    assert client.delete(f"/v1/apps/{theirs}", headers={"X-CSRF-Token": csrf}).status_code == 404
    assert client.get("/v1/apps").json()["total"] == 0


def test_a_one_time_link_signs_a_browser_in_once(api: TestClient, tenant: Tenant) -> None:
    link = tenant.client.post("/v1/session/links")
    assert link.status_code == 201
    url = urlsplit(link.json()["url"])
    assert url.path == "/builder/sign-in"
    client = browser(api)
    first = client.get(f"{url.path}?{url.query}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/builder/"
    assert "HttpOnly" in first.headers["set-cookie"]
    assert client.get("/v1/session").json()["org_name"] == "acme"
    again = browser(api).get(f"{url.path}?{url.query}", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/builder/?signin=expired"
    assert "set-cookie" not in again.headers


def test_the_builder_page_is_served_with_a_strict_policy(api: TestClient) -> None:
    client = browser(api)
    assert client.get("/builder", follow_redirects=False).headers["location"] == "/builder/"
    for path in ("/builder/", "/builder/apps/some-app"):
        page = client.get(path)
        assert page.status_code == 200 and "<div id=\"root\"" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
    assert client.get("/builder/assets/..%2F..%2F..%2Fpyproject.toml").status_code == 404
    assert client.get("/builder/assets/missing.js").status_code == 404


def test_the_validation_report_gives_each_node_its_configured_ports(tenant: Tenant) -> None:
    report = tenant.client.post("/v1/graphs/validate", json=GRAPH).json()
    assert [p["name"] for p in report["ports"]["greet"]["inputs"]] == ["customer"]
    assert [p["name"] for p in report["ports"]["in"]["outputs"]] == ["name"]
    app_id = tenant.client.post("/v1/apps", json={"name": "Ports", "graph": GRAPH}).json()["id"]
    draft = tenant.client.get(f"/v1/apps/{app_id}/draft").json()
    assert [p["name"] for p in draft["ports"]["greet"]["inputs"]] == ["customer"]
