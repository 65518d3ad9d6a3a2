"""Webhook URLs through the API: made once, rotated, scoped to the organization; posts start runs
of the published version, and every bad post gets its own clear 4xx and starts nothing.

No worker runs here: runs stay queued, which is all these tests look at (the engine tests run them).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from blocks.trigger_webhook import sign
from tests.conftest import Tenant

SECRET = "whsec-5c2f8e1a9b7d4e3f"


def webhook_graph(**config: Any) -> dict[str, Any]:
    """trigger.webhook → text.template (greets body.name) → output."""
    return {"nodes": [{"id": "hook", "type": "trigger.webhook", "config": config},
                      {"id": "greet", "type": "text.template", "config": {"template": "Hi {{ body.name }}"}},
                      {"id": "out", "type": "output"}],
            "edges": [{"source": "hook", "source_port": "body", "target": "greet", "target_port": "body"},
                      {"source": "greet", "source_port": "text", "target": "out", "target_port": "text"}]}


def hooked_app(tenant: Tenant, graph: dict[str, Any] | None = None, publish: bool = True) -> tuple[str, str]:
    """A published app with a webhook URL: (app id, the URL's path)."""
    created = tenant.client.post("/v1/apps", json={"name": "hooked", "graph": graph or webhook_graph()})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    if publish:
        assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    made = tenant.client.post(f"/v1/apps/{app_id}/webhook")
    assert made.status_code == 201, made.text
    return app_id, urlsplit(made.json()["url"]).path


def runs_of(tenant: Tenant, app_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = tenant.client.get(f"/v1/apps/{app_id}/runs").json()["items"]
    return items


def test_a_json_post_starts_a_run_of_the_published_version(tenant: Tenant, api: TestClient) -> None:
    app_id, path = hooked_app(tenant, webhook_graph(headers=["X-Event"]))
    answer = api.post(path + "?source=ci", json={"name": "Ada"}, headers={"X-Event": "push", "Cookie": "c=1"})
    # Answered at once (respond: accepted), without the outputs; every node being pure, the run
    # ended as it was started (MANTLE_DIRECT_RUN_S), with no worker.
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "succeeded" and answer.json()["outputs"] is None
    run = tenant.client.get(answer.headers["Location"]).json()
    assert run["trigger"] == "webhook" and run["version_number"] == 1
    assert run["outputs"] == {"text": "Hi Ada"}
    assert run["inputs"] == {"body": {"name": "Ada"}, "query": {"source": "ci"},
                             "headers": {"x-event": "push"}}


def test_a_form_post_becomes_an_object_body(tenant: Tenant, api: TestClient) -> None:
    app_id, path = hooked_app(tenant)
    answer = api.post(path, data={"name": "Grace", "tag": ["a", "b"]})
    assert answer.status_code == 202, answer.text
    assert runs_of(tenant, app_id)[0]["id"] == answer.json()["run_id"]
    run = tenant.client.get(f"/v1/runs/{answer.json()['run_id']}").json()
    assert run["inputs"]["body"] == {"name": "Grace", "tag": ["a", "b"]}


def test_a_signed_webhook_refuses_every_post_without_the_right_signature(tenant: Tenant,
                                                                         api: TestClient) -> None:
    app_id, path = hooked_app(tenant, webhook_graph(signature_credential="hooks"))
    body = json.dumps({"name": "Ada"}).encode()
    plain = {"content-type": "application/json"}
    signed_headers = {**plain, "X-Mantle-Signature": sign(SECRET, body)}
    missing_secret = api.post(path, content=body, headers=signed_headers)
    assert missing_secret.status_code == 403
    assert "signing secret ('hooks') is not stored" in missing_secret.text
    stored = tenant.client.post("/v1/credentials", json={"type": "webhook_secret", "name": "hooks",
                                                         "data": {"secret": SECRET}})
    assert stored.status_code == 201
    unsigned = api.post(path, content=body, headers=plain)
    assert unsigned.status_code == 403 and "missing X-Mantle-Signature" in unsigned.text
    forged = api.post(path, content=body,
                      headers={**plain, "X-Mantle-Signature": sign("wrong-secret!!!!", body)})
    assert forged.status_code == 403 and "does not match the body" in forged.text
    altered = api.post(path, content=body + b" ", headers=signed_headers)
    assert altered.status_code == 403
    assert runs_of(tenant, app_id) == []
    signed = api.post(path, content=body, headers=signed_headers)
    assert signed.status_code == 202, signed.text
    assert len(runs_of(tenant, app_id)) == 1


@pytest.mark.parametrize(("content", "content_type", "status", "message"), [
    (b'{"name": ', "application/json", 422, "JSON decode error"),
    (b"\xff\xfe", "application/json", 422, "not UTF-8"),
    (b"<a/>", "application/xml", 415, "send application/json or application/x-www-form-urlencoded"),
    (b'{"name": "' + b"x" * 300_000 + b'"}', "application/json", 413, "larger than"),
])
def test_a_bad_body_is_a_clear_4xx_and_starts_nothing(tenant: Tenant, api: TestClient, content: bytes,
                                                      content_type: str, status: int, message: str) -> None:
    app_id, path = hooked_app(tenant)
    answer = api.post(path, content=content, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"][0]["msg"]
    assert runs_of(tenant, app_id) == []


def test_unknown_unpublished_and_wrongly_triggered_apps_are_refused(tenant: Tenant, api: TestClient) -> None:
    assert api.post("/hooks/wh_nope", json={}).status_code == 404
    _, unpublished = hooked_app(tenant, publish=False)
    answer = api.post(unpublished, json={"name": "Ada"})
    assert answer.status_code == 409 and "no published version" in answer.text
    api_graph = {"nodes": [{"id": "in", "type": "trigger.api"}, {"id": "out", "type": "output"}],
                 "edges": [{"source": "in", "source_port": "text", "target": "out", "target_port": "text"}]}
    _, wrong = hooked_app(tenant, api_graph)
    answer = api.post(wrong, json={"text": "hi"})
    assert answer.status_code == 409 and "does not start with trigger.webhook" in answer.text


def test_a_webhook_url_is_shown_once_rotated_removed_and_private_to_its_organization(
        tenant: Tenant, other_tenant: Tenant, api: TestClient) -> None:
    app_id, path = hooked_app(tenant)
    shown = tenant.client.get(f"/v1/apps/{app_id}/webhook").json()
    assert shown["url"] is None and path.split("/")[-1].startswith(shown["prefix"])
    assert tenant.client.post(f"/v1/apps/{app_id}/webhook").status_code == 409
    for method, suffix in [("GET", ""), ("POST", ""), ("POST", "/rotate"), ("DELETE", "")]:
        assert other_tenant.client.request(method, f"/v1/apps/{app_id}/webhook{suffix}").status_code == 404
    rotated = tenant.client.post(f"/v1/apps/{app_id}/webhook/rotate")
    new_path = urlsplit(rotated.json()["url"]).path
    assert new_path != path and api.post(path, json={"name": "a"}).status_code == 404
    assert api.post(new_path, json={"name": "a"}).status_code == 202
    assert tenant.client.delete(f"/v1/apps/{app_id}/webhook").status_code == 204
    assert api.post(new_path, json={"name": "a"}).status_code == 404
    audit = tenant.client.get("/v1/audit", params={"target_id": app_id}).json()["items"]
    actions = [e["action"] for e in audit]
    assert {"webhook.create", "webhook.rotate", "webhook.delete"} <= set(actions)


def test_a_retried_post_with_the_same_idempotency_key_gets_the_same_run(tenant: Tenant,
                                                                        api: TestClient) -> None:
    app_id, path = hooked_app(tenant)
    first = api.post(path, json={"name": "Ada"}, headers={"Idempotency-Key": "delivery-1"})
    again = api.post(path, json={"name": "Ada"}, headers={"Idempotency-Key": "delivery-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["run_id"] == again.json()["run_id"] and len(runs_of(tenant, app_id)) == 1


def test_waiting_for_the_output_answers_202_when_the_run_is_not_done(tenant: Tenant, api: TestClient) -> None:
    # A pause is not pure: the run goes to the workers (none run here), so it is not done in time.
    graph = webhook_graph(respond="output", wait_s=0.2)
    graph["nodes"].append({"id": "pause", "type": "flow.wait", "config": {"seconds": 1}})
    graph["edges"] = [{"source": "hook", "source_port": "body", "target": "pause", "target_port": "value"},
                      {"source": "pause", "source_port": "value", "target": "greet", "target_port": "body"},
                      graph["edges"][1]]
    app_id, path = hooked_app(tenant, graph)
    for name in ("Ada", "Bob"):  # the second on the URL as the API remembers it (PostgreSQL)
        answer = api.post(path, json={"name": name})
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
        assert answer.json()["outputs"] is None
        run = tenant.client.get(answer.headers["Location"]).json()
        assert run["status"] == "queued" and run["inputs"]["body"] == {"name": name}
    assert len(runs_of(tenant, app_id)) == 2


def test_waiting_for_the_output_of_a_pure_app_is_answered_by_the_api_alone(tenant: Tenant,
                                                                          api: TestClient) -> None:
    _, path = hooked_app(tenant, webhook_graph(respond="output", wait_s=0.2))
    answer = api.post(path, json={"name": "Ada"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded" and answer.json()["outputs"] == {"text": "Hi Ada"}


def test_a_url_posted_to_before_sees_a_new_version_a_rotation_and_a_removal_at_the_next_post(
        tenant: Tenant, api: TestClient) -> None:
    # After its first post, the API records a URL's runs without looking the URL up first (on
    # PostgreSQL), checking in the same round trip that the URL and the app's version are still
    # the ones it found: whatever changed meanwhile, the very next post follows it.
    app_id, path = hooked_app(tenant, webhook_graph(respond="output", wait_s=1))
    for name in ("Ada", "Bob"):
        answer = api.post(path, json={"name": name})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"] == {"text": f"Hi {name}"}
    bad = api.post(path, content=b'{"name": ', headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "JSON decode error" in bad.json()["detail"][0]["msg"]

    changed = webhook_graph(respond="output", wait_s=1)
    changed["nodes"][1]["config"]["template"] = "Hello {{ body.name }}"
    assert tenant.client.put(f"/v1/apps/{app_id}/draft", json=changed).status_code == 200
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    answer = api.post(path, json={"name": "Cy"})
    assert answer.status_code == 200 and answer.json()["outputs"] == {"text": "Hello Cy"}
    assert tenant.client.get(answer.headers["Location"]).json()["version_number"] == 2

    rotated = tenant.client.post(f"/v1/apps/{app_id}/webhook/rotate")
    new_path = urlsplit(rotated.json()["url"]).path
    refused = api.post(path, json={"name": "Eve"})
    assert refused.status_code == 404 and "no webhook at this URL" in refused.text
    assert api.post(new_path, json={"name": "Di"}).json()["outputs"] == {"text": "Hello Di"}
    assert api.post(new_path, json={"name": "Di"}).status_code == 200
    assert tenant.client.delete(f"/v1/apps/{app_id}/webhook").status_code == 204
    assert api.post(new_path, json={"name": "Eve"}).status_code == 404
    names = sorted(tenant.client.get(f"/v1/runs/{run['id']}").json()["inputs"]["body"]["name"]
                   for run in runs_of(tenant, app_id))
    assert names == ["Ada", "Bob", "Cy", "Di", "Di"]
