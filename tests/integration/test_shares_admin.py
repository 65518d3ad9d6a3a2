"""Share links as their owner manages them: create, list, read, update, revoke; roles and isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from blocks.webapp_input import WebAppInputBlock
from models.orgs import Role
from tests.conftest import Tenant
from tests.factories import greeter_graph
from tests.webapps import publish, share, webapp_graph


def test_create_list_read_update_and_revoke(tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    created = share(tenant.client, app_id, label="newsletter", access_code="open sesame", daily_quota=50)
    assert created["state"] == "active" and created["version"] is None
    assert len(created["slug"]) >= 22 and created["url"].endswith(f"/s/{created['slug']}")
    assert created["embed_url"] == created["url"] + "?embed=1"
    assert created["has_access_code"] is True and "open sesame" not in str(created)
    assert created["visitor_per_minute"] == 10 and created["daily_quota"] == 50

    listed = tenant.client.get(f"/v1/apps/{app_id}/shares").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == created["id"]
    base = f"/v1/apps/{app_id}/shares/{created['id']}"

    changed = tenant.client.patch(base, json={"access_code": None, "visitor_per_minute": None, "version": 1})
    assert changed.status_code == 200, changed.text
    assert changed.json()["has_access_code"] is False and changed.json()["visitor_per_minute"] is None
    assert changed.json()["version"] == 1 and changed.json()["label"] == "newsletter"

    revoked = tenant.client.post(f"{base}/revoke")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert tenant.client.post(f"{base}/revoke").json()["revoked_at"] == revoked.json()["revoked_at"]
    assert tenant.client.patch(base, json={"label": "again"}).status_code == 409
    log = tenant.client.get("/v1/audit", params={"target_id": created["id"]}).json()["items"]
    actions = [e["action"] for e in log]
    assert {"share.create", "share.update", "share.revoke"} <= set(actions)


def test_an_api_trigger_app_can_be_shared_too(tenant: Tenant) -> None:
    app_id = publish(tenant.client, greeter_graph(), name="Greeter")
    assert share(tenant.client, app_id)["state"] == "active"


def test_refuses_what_cannot_be_shared(tenant: Tenant) -> None:
    draft = tenant.client.post("/v1/apps", json={"name": "Draft only", "graph": webapp_graph()})
    unpublished = draft.json()["id"]
    answer = tenant.client.post(f"/v1/apps/{unpublished}/shares", json={})
    assert answer.status_code == 422 and "publish the app" in answer.json()["detail"][0]["msg"]

    app_id = publish(tenant.client, webapp_graph())
    missing = tenant.client.post(f"/v1/apps/{app_id}/shares", json={"version": 7})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "version"]

    json_input = greeter_graph()
    json_input["nodes"][0]["config"]["fields"].append({"name": "extra", "type": "object", "required": False})
    object_app = publish(tenant.client, json_input, name="Object input")
    refused = tenant.client.post(f"/v1/apps/{object_app}/shares", json={})
    assert refused.status_code == 422 and "trigger.api" in refused.json()["detail"][0]["msg"]

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert tenant.client.post(f"/v1/apps/{app_id}/shares", json={"expires_at": past}).status_code == 422
    naive = tenant.client.post(f"/v1/apps/{app_id}/shares", json={"expires_at": "2099-01-01T00:00:00"})
    assert naive.status_code == 422
    for bad in ({"embed_origins": ["javascript:alert(1)"]}, {"visitor_per_minute": 0},
                {"access_code": "abc"}, {"surprise": True}):
        assert tenant.client.post(f"/v1/apps/{app_id}/shares", json=bad).status_code == 422, bad


def test_other_organizations_and_roles(sessions: sessionmaker[Session], tenant: Tenant,
                                       other_tenant: Tenant) -> None:
    app_id = publish(tenant.client, webapp_graph())
    created = share(tenant.client, app_id)
    base = f"/v1/apps/{app_id}/shares"
    assert other_tenant.client.get(base).status_code == 404
    assert other_tenant.client.post(base, json={}).status_code == 404
    assert other_tenant.client.get(f"{base}/{created['id']}").status_code == 404
    assert other_tenant.client.post(f"{base}/{created['id']}/revoke").status_code == 404

    own_reviewer = _key_in(sessions, tenant, Role.reviewer)
    assert own_reviewer.post(base, json={}).status_code == 403
    assert own_reviewer.get(base).status_code == 403  # reviewing needs no share links


def test_the_block_catalogue_describes_the_form_trigger(tenant: Tenant) -> None:
    blocks = {b["type"]: b for b in tenant.client.get("/v1/blocks").json()["items"]}
    described = blocks["webapp.input"]
    assert described["trigger"] is True and described["outputs"][0]["name"] == "text"
    kinds = described["config_schema"]["$defs"]["FormField"]["properties"]["kind"]["enum"]
    assert kinds == ["text", "long_text", "number", "choice", "checkbox"]
    assert WebAppInputBlock.type == "webapp.input"


def _key_in(sessions: sessionmaker[Session], tenant: Tenant, role: Role):  # type: ignore[no-untyped-def]
    """A client with a key of `role` in the tenant's own organization."""
    from fastapi.testclient import TestClient

    from models.orgs import create_key

    with sessions() as s:
        _, secret = create_key(s, org_id=tenant.org_id, name="second", role=role)
        s.commit()
    return TestClient(tenant.client.app, headers={"Authorization": f"Bearer {secret}"},
                      raise_server_exceptions=False)
