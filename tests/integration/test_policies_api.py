"""`/v1/policies` on SQLite and PostgreSQL: CRUD, versions, the test bench, attachment, tenancy."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.factories import greeter_graph

PII = {"pii": {"action": "redact"}}


def create(client: TestClient, name: str = "No PII", rules: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/policies", json={"name": name, "rules": rules or PII})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def new_app(client: TestClient) -> str:
    created = client.post("/v1/apps", json={"name": "greeter", "graph": greeter_graph()})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    return app_id


def test_create_read_list_update_and_delete_with_a_new_version_on_every_update(tenant: Tenant) -> None:
    client = tenant.client
    policy = create(client, rules={"pii": {"action": "redact"}, "injection": {"action": "block"}})
    assert policy["version"] == 1 and policy["rules"]["pii"]["action"] == "redact"
    assert policy["rules"]["pii"]["entities"][0] == "EMAIL_ADDRESS"  # defaults are stored with the version
    assert client.get(f"/v1/policies/{policy['id']}").json()["name"] == "No PII"
    assert [p["name"] for p in client.get("/v1/policies").json()["items"]] == ["No PII"]

    updated = client.patch(f"/v1/policies/{policy['id']}", json={"rules": {"pii": {"action": "block"}}})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    renamed = client.patch(f"/v1/policies/{policy['id']}", json={"description": "strict"}).json()
    assert renamed["version"] == 3 and renamed["rules"]["pii"]["action"] == "block"

    versions = client.get(f"/v1/policies/{policy['id']}/versions").json()
    assert [v["number"] for v in versions] == [3, 2, 1]
    first = client.get(f"/v1/policies/{policy['id']}/versions/1").json()
    assert first["rules"]["pii"]["action"] == "redact" and first["rules"]["injection"]["action"] == "block"
    assert client.get(f"/v1/policies/{policy['id']}/versions/9").status_code == 404

    assert client.delete(f"/v1/policies/{policy['id']}").status_code == 204
    assert client.get(f"/v1/policies/{policy['id']}").status_code == 404


def test_bad_rule_configs_are_422_naming_the_problem(tenant: Tenant) -> None:
    bad_regex = tenant.client.post("/v1/policies", json={"name": "x", "rules": {
        "deny_list": {"regexes": ["(unclosed"]}}})
    assert bad_regex.status_code == 422
    detail = bad_regex.json()["detail"][0]
    assert detail["loc"][:3] == ["body", "rules", "deny_list"]
    assert "regexes[0] is not a valid regular expression" in detail["msg"]
    for rules in ({"pii": {"action": "shred"}}, {"toxicity": {"threshold": 2}}, {"length": {}},
                  {"pii": {"entities": ["SHOE_SIZE"]}}, {"spam": {}}):
        response = tenant.client.post("/v1/policies", json={"name": "x", "rules": rules})
        assert response.status_code == 422, (rules, response.text)
    assert tenant.client.get("/v1/policies").json()["total"] == 0


def test_a_duplicate_name_is_409(tenant: Tenant) -> None:
    first = create(tenant.client)
    assert tenant.client.post("/v1/policies", json={"name": "No PII", "rules": PII}).status_code == 409
    other = create(tenant.client, name="Other")
    clash = tenant.client.patch(f"/v1/policies/{other['id']}", json={"name": "No PII"})
    assert clash.status_code == 409 and tenant.client.get(f"/v1/policies/{first['id']}").status_code == 200


def test_the_test_endpoint_returns_the_decision_without_the_secret_in_findings(tenant: Tenant) -> None:
    policy = create(tenant.client, rules={"pii": {"action": "redact"}, "toxicity": {"action": "block"}})
    text = "Call me on (415) 555-0132 or mail ada@example.com"
    result = tenant.client.post(f"/v1/policies/{policy['id']}/test", json={"text": text}).json()
    assert result["verdict"] == "redact" and result["policy_version"] == 1
    assert result["text"] == "Call me on <PHONE_NUMBER> or mail <EMAIL_ADDRESS>"
    assert [f["kind"] for f in result["findings"]] == ["PHONE_NUMBER", "EMAIL_ADDRESS"]
    assert "ada@example.com" not in str(result["findings"])
    assert {r["rule"]: r["fired"] for r in result["rules"]} == {"pii": True, "toxicity": False}

    test_url = f"/v1/policies/{policy['id']}/test"
    blocked = tenant.client.post(test_url, json={"text": "you stupid moron"}).json()
    assert blocked["verdict"] == "block" and blocked["text"] is None


def test_the_test_endpoint_can_evaluate_an_older_version_and_reports_a_slow_regex(tenant: Tenant) -> None:
    policy = create(tenant.client, rules={"deny_list": {"keywords": ["lottery"]}})
    slow_rules = {"deny_list": {"regexes": ["(a|aa)+$"]}}
    tenant.client.patch(f"/v1/policies/{policy['id']}", json={"rules": slow_rules})
    old = tenant.client.post(f"/v1/policies/{policy['id']}/test",
                             json={"text": "win the lottery", "version": 1})
    assert old.json()["verdict"] == "block" and old.json()["policy_version"] == 1
    slow = tenant.client.post(f"/v1/policies/{policy['id']}/test", json={"text": "a" * 40 + "!"})
    assert slow.status_code == 422 and "took longer" in slow.json()["detail"][0]["msg"]


def test_another_organizations_policy_is_404_everywhere(tenant: Tenant, other_tenant: Tenant) -> None:
    policy = create(tenant.client)
    theirs = other_tenant.client
    for method, path, body in (("GET", "", None), ("PATCH", "", {"description": "mine"}),
                               ("DELETE", "", None), ("GET", "/versions", None),
                               ("POST", "/test", {"text": "hi"})):
        response = theirs.request(method, f"/v1/policies/{policy['id']}{path}", json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert theirs.get("/v1/policies").json()["total"] == 0
    app_id = new_app(theirs)
    attach = theirs.put(f"/v1/apps/{app_id}/policies", json={"policy_ids": [policy["id"]]})
    assert attach.status_code == 404
    assert tenant.client.get(f"/v1/policies/{policy['id']}").json()["version"] == 1


def test_attaching_and_publishing_pins_the_policy_version(tenant: Tenant) -> None:
    client = tenant.client
    policy = create(client)
    app_id = new_app(client)
    attached = client.put(f"/v1/apps/{app_id}/policies", json={"policy_ids": [policy["id"]]})
    assert attached.status_code == 200 and attached.json()["items"][0]["version"] == 1
    assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    client.patch(f"/v1/policies/{policy['id']}", json={"rules": {"pii": {"action": "block"}}})
    assert client.post(f"/v1/apps/{app_id}/publish").status_code == 201

    pinned = [client.get(f"/v1/apps/{app_id}/versions/{n}/policies").json()["items"] for n in (1, 2)]
    assert [p[0]["version"] for p in pinned] == [1, 2]
    assert client.get(f"/v1/apps/{app_id}/policies").json()["items"][0]["version"] == 2

    in_use = client.delete(f"/v1/policies/{policy['id']}")
    assert in_use.status_code == 409 and "detach it first" in in_use.json()["detail"][0]["msg"]
    assert client.put(f"/v1/apps/{app_id}/policies", json={"policy_ids": []}).json()["items"] == []
    assert client.delete(f"/v1/policies/{policy['id']}").status_code == 204
    kept = client.get(f"/v1/apps/{app_id}/versions/1/policies").json()["items"]
    assert kept == [{"policy_id": None, "name": "No PII", "version": 1}]


def test_attaching_an_unknown_or_repeated_policy_is_refused(tenant: Tenant) -> None:
    policy = create(tenant.client)
    app_id = new_app(tenant.client)
    unknown = tenant.client.put(f"/v1/apps/{app_id}/policies", json={"policy_ids": [str(uuid.uuid4())]})
    assert unknown.status_code == 404
    twice = tenant.client.put(f"/v1/apps/{app_id}/policies", json={"policy_ids": [policy["id"]] * 2})
    assert twice.status_code == 409
    assert tenant.client.get(f"/v1/apps/{app_id}/policies").json()["items"] == []
