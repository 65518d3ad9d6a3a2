"""Who may call what: API keys, roles, the audit log, and organizations that never see each other."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models.orgs import Role
from tests.conftest import Tenant, make_tenant
from tests.factories import greeter_graph


def assert_error_shape(body: Any) -> None:
    """Every failure has the one shape: `{"detail": [{"loc", "msg", "type"}, ...]}`."""
    assert set(body) == {"detail"} and isinstance(body["detail"], list) and body["detail"]
    for item in body["detail"]:
        assert {"loc", "msg", "type"} <= set(item)
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str) and item["type"]


def client_with(tenant: Tenant, secret: str) -> TestClient:
    """A client of the same API sending `secret`."""
    return TestClient(tenant.client.app, headers={"Authorization": f"Bearer {secret}"},
                      raise_server_exceptions=False)


def new_key(tenant: Tenant, name: str, role: Role) -> tuple[dict[str, Any], TestClient]:
    """Mint a key of `role` in the tenant's organization; its body and a client sending it."""
    answer = tenant.client.post("/v1/keys", json={"name": name, "role": role.value})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body, client_with(tenant, body["key"])


def publish_greeter(tenant: Tenant) -> str:
    """A published app of `tenant`; its id."""
    created = tenant.client.post("/v1/apps", json={"name": "Greeter", "graph": greeter_graph()})
    app_id: str = created.json()["id"]
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    return app_id


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer mk_not-a-real-key"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "mk_no_scheme"},
], ids=["missing", "unknown", "empty", "basic", "no-scheme"])
def test_no_valid_key_is_401(api: TestClient, tenant: Tenant, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/v1/apps"), ("POST", "/v1/apps"), ("GET", "/v1/org"),
                         ("GET", "/v1/blocks"), ("GET", "/v1/keys")):
        answer = api.request(method, path, headers=headers, json={"name": "x"})
        assert answer.status_code == 401, (method, path, answer.text)
        assert_error_shape(answer.json())
        assert answer.json()["detail"][0]["type"] == "unauthorized"
        assert answer.json()["detail"][0]["loc"] == ["header", "Authorization"]
    assert tenant.client.get("/v1/apps").json()["total"] == 0


def test_a_revoked_key_stops_working_at_once(tenant: Tenant) -> None:
    key, client = new_key(tenant, "ci", Role.builder)
    assert client.get("/v1/apps").status_code == 200
    revoked = tenant.client.delete(f"/v1/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/v1/apps")
    assert refused.status_code == 401
    assert_error_shape(refused.json())
    assert "revoked" in refused.json()["detail"][0]["msg"]
    again = tenant.client.delete(f"/v1/keys/{key['id']}")
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]


# --- keys ---------------------------------------------------------------------------------------------


def test_a_new_key_shows_its_secret_once(tenant: Tenant) -> None:
    key, client = new_key(tenant, "deploy bot", Role.builder)
    assert key["key"].startswith("mk_") and key["prefix"] == key["key"][:10]
    assert key["name"] == "deploy bot" and key["role"] == "builder" and key["revoked_at"] is None
    who = client.get("/v1/org").json()
    assert who["id"] == str(tenant.org_id) and who["key"]["id"] == key["id"]

    listed = tenant.client.get("/v1/keys")
    assert listed.status_code == 200
    assert key["key"] not in listed.text and tenant.key not in listed.text
    assert {k["name"] for k in listed.json()} == {"acme key", "deploy bot"}
    for item in listed.json():
        assert "key" not in item and "digest" not in item and "secret" not in item
    assert "key" not in who["key"] and key["key"] not in str(who)


def test_key_requests_are_validated(tenant: Tenant) -> None:
    assert tenant.client.post("/v1/keys", json={"name": "x", "role": "owner"}).status_code == 422
    assert tenant.client.post("/v1/keys", json={"name": ""}).status_code == 422
    assert tenant.client.post("/v1/keys", json={"name": "x", "digest": "abc"}).status_code == 422
    missing = tenant.client.delete("/v1/keys/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert_error_shape(missing.json())


def test_only_admins_manage_keys_and_read_the_audit_log(tenant: Tenant) -> None:
    admin_key = tenant.client.get("/v1/org").json()["key"]
    for role in (Role.builder, Role.reviewer):
        _, client = new_key(tenant, f"a {role.value}", role)
        for method, path, body in (("GET", "/v1/keys", None),
                                   ("POST", "/v1/keys", {"name": "escalate", "role": "admin"}),
                                   ("DELETE", f"/v1/keys/{admin_key['id']}", None),
                                   ("GET", "/v1/audit", None)):
            answer = client.request(method, path, json=body)
            assert answer.status_code == 403, (role, method, path, answer.text)
            assert_error_shape(answer.json())
            assert answer.json()["detail"][0]["type"] == "forbidden"
    names = {k["name"] for k in tenant.client.get("/v1/keys").json()}
    assert "escalate" not in names
    assert tenant.client.get("/v1/org").json()["key"]["revoked_at"] is None


def test_a_reviewer_sees_app_names_but_cannot_read_or_change_the_apps(tenant: Tenant) -> None:
    app_id = publish_greeter(tenant)
    _, reviewer = new_key(tenant, "reviewer", Role.reviewer)
    base = f"/v1/apps/{app_id}"
    for method, path, body in (("POST", "/v1/apps", {"name": "Mine"}),
                               ("PATCH", base, {"name": "Renamed"}),
                               ("PUT", f"{base}/draft", greeter_graph()),
                               ("POST", f"{base}/publish", {}),
                               ("POST", f"{base}/versions/1/restore", None),
                               ("DELETE", base, None),
                               ("POST", "/v1/apps/import", {"name": "Copy", "draft": greeter_graph()})):
        answer = reviewer.request(method, path, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert_error_shape(answer.json())
    for path in (base, f"{base}/draft", f"{base}/versions", f"{base}/versions/1", f"{base}/export"):
        assert reviewer.get(path).status_code == 403, path  # reviewing needs none of an app's insides
    assert reviewer.post(f"{base}/validate").status_code == 403
    for path in ("/v1/apps", "/v1/blocks"):  # names to filter the queue by; the block catalogue
        assert reviewer.get(path).status_code == 200, path
    after = tenant.client.get(base).json()
    assert after["name"] == "Greeter" and after["latest_version"] == 1 and after["draft_revision"] == 1
    assert tenant.client.get("/v1/apps").json()["total"] == 1


def test_a_builder_edits_and_publishes(sessions: sessionmaker[Session], api: TestClient) -> None:
    builder = make_tenant(sessions, api, "initech", role=Role.builder)
    app_id = publish_greeter(builder)
    assert builder.client.patch(f"/v1/apps/{app_id}", json={"name": "Renamed"}).status_code == 200
    assert builder.client.get("/v1/org").json()["key"]["role"] == "builder"


# --- isolation between organizations -----------------------------------------------------------------


def test_another_organizations_app_is_404_everywhere(tenant: Tenant, other_tenant: Tenant) -> None:
    app_id = publish_greeter(tenant)
    base = f"/v1/apps/{app_id}"
    for method, path, body in (("GET", base, None),
                               ("PATCH", base, {"name": "Stolen"}),
                               ("GET", f"{base}/draft", None),
                               ("PUT", f"{base}/draft", {}),
                               ("POST", f"{base}/validate", None),
                               ("POST", f"{base}/publish", {}),
                               ("GET", f"{base}/versions", None),
                               ("GET", f"{base}/versions/1", None),
                               ("POST", f"{base}/versions/1/restore", None),
                               ("GET", f"{base}/export", None),
                               ("GET", f"{base}/runs", None),
                               ("DELETE", base, None)):
        answer = other_tenant.client.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert_error_shape(answer.json())
        assert answer.json()["detail"][0]["type"] == "not_found"
    assert other_tenant.client.get("/v1/apps").json()["total"] == 0
    mine = tenant.client.get(base).json()
    assert mine["name"] == "Greeter" and mine["draft_revision"] == 1 and mine["latest_version"] == 1


def test_another_organizations_keys_cannot_be_revoked(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = other_tenant.client.get("/v1/org").json()["key"]
    answer = tenant.client.delete(f"/v1/keys/{theirs['id']}")
    assert answer.status_code == 404
    assert other_tenant.client.get("/v1/org").status_code == 200
    assert {k["name"] for k in tenant.client.get("/v1/keys").json()} == {"acme key"}


# --- the audit log and the organization -----------------------------------------------------------------


def test_audit_log_records_who_did_what_in_this_organization_only(tenant: Tenant,
                                                                  other_tenant: Tenant) -> None:
    me = tenant.client.get("/v1/org").json()["key"]
    actor = f"key:{me['id']}:{me['name']}"
    app_id = publish_greeter(tenant)
    key, _ = new_key(tenant, "ci", Role.builder)
    publish_greeter(other_tenant)

    log = tenant.client.get("/v1/audit")
    assert log.status_code == 200
    entries = log.json()["items"]
    assert log.json()["total"] == 3
    assert [e["action"] for e in entries] == ["key.create", "app.publish", "app.create"]
    assert all(e["actor"] == actor for e in entries)
    by_action = {e["action"]: e for e in entries}
    assert by_action["app.create"]["target_type"] == "app" and by_action["app.create"]["target_id"] == app_id
    assert by_action["app.publish"]["details"]["version"] == 1
    assert by_action["key.create"]["target_id"] == key["id"]
    assert by_action["key.create"]["details"] == {"name": "ci", "role": "builder"}
    assert key["key"] not in log.text

    only_app = tenant.client.get("/v1/audit", params={"target_id": app_id}).json()
    assert {e["action"] for e in only_app["items"]} == {"app.create", "app.publish"}
    theirs = other_tenant.client.get("/v1/audit").json()
    assert theirs["total"] == 2 and app_id not in str(theirs)
    assert other_tenant.client.get("/v1/audit", params={"target_id": app_id}).json()["total"] == 0


def test_org_names_the_caller(tenant: Tenant, other_tenant: Tenant) -> None:
    answer = tenant.client.get("/v1/org")
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == str(tenant.org_id) and body["name"] == "acme"
    assert body["key"]["name"] == "acme key" and body["key"]["role"] == "admin"
    assert body["key"]["prefix"] == tenant.key[:10] and tenant.key not in answer.text
    other = other_tenant.client.get("/v1/org").json()
    assert other["id"] == str(other_tenant.org_id) and other["name"] == "globex"
