"""Classes of input that used to crash a route (a 500) now get a 4xx naming the problem, and nothing
is stored that a later read cannot answer for.

* Tokens, signatures, codes and keys with non-ASCII characters, in every header, cookie and
  query parameter a key-less route reads, and as the API key of every route.
* Nesting: JSON bodies and run inputs nested past their limits, graphs whose configs, UI fields,
  templates or JMESPath expressions nest past theirs (saved as drafts that read back fine), and
  a run stored before inputs were bounded, which still reads back.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.nesting import MAX_BODY_DEPTH, MAX_CONFIG_DEPTH, MAX_EXPRESSION_DEPTH, MAX_INPUT_DEPTH
from models.db import session_scope
from models.runs import Run
from tests.conftest import Tenant
from tests.factories import edge, greeter_graph, node
from tests.integration.test_webhooks_api import hooked_app, webhook_graph
from tests.security.routes import every_route, is_public, path_params
from tests.security.world import Owned
from tests.webapps import publish, share, webapp_graph

ODD = "é☃.\u202e"  # shaped like a signed token; as a header or cookie it travels as UTF-8 bytes
ODD_BYTES = ODD.encode()
TOKEN_HEADERS = ("X-Mantle-Page", "X-Access-Code", "X-Mantle-Signature", "X-Twilio-Signature",
                 "Idempotency-Key", "Last-Event-ID", "X-CSRF-Token")
COOKIES = ("mantle_visitor", "mantle_access", "mantle_session", "mantle_review", "mantle_csrf")


def nested(levels: int, leaf: Any = 1) -> Any:
    """A value of `levels` nested objects around `leaf`."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def odd_headers(**extra: bytes) -> dict[bytes, bytes]:
    """Every token header and cookie a key-less route reads, each carrying non-ASCII bytes."""
    cookie = "; ".join(f"{name}=" for name in COOKIES).encode().replace(b"=", b"=" + ODD_BYTES)
    headers = {**dict.fromkeys(TOKEN_HEADERS, ODD_BYTES), "Cookie": cookie, **extra}
    return {name.encode(): value for name, value in headers.items()}


def fill(path: str, victim: Owned) -> str:
    """The path with real ids of `victim` where it has them (so a route gets past its lookups)."""
    known = {**victim.ids, "slug": victim.share_slug, "run_id": victim.share_run["run_id"],
             "target": victim.ids["route_id"], "token": "wh_" + "x" * 43}
    for name in path_params(path):
        path = path.replace("{" + name + "}", known.get(name, str(uuid.uuid4())))
    return path.split("{")[0] + path.split("}")[-1] if "{" in path else path


def test_non_ascii_tokens_on_the_key_less_routes_are_refused_not_500(
        api: TestClient, tenant: Tenant, world: tuple[Owned, Owned]) -> None:
    victim, _ = world
    slug, run_id = victim.share_slug, victim.share_run["run_id"]
    locked = share(tenant.client, publish(tenant.client, webapp_graph()), access_code="open sesame")["slug"]
    _, hook = hooked_app(tenant, webhook_graph(signature_credential="hooks"))
    tenant.client.post("/v1/credentials", json={"type": "webhook_secret", "name": "hooks",
                                                "data": {"secret": "whsec-5c2f8e1a9b7d4e3f"}})
    body = {"inputs": {"name": "Ada"}}
    odd_query = {"token": ODD}
    answers = {
        "page": api.get(f"/s/{slug}", headers=odd_headers()),
        "locked page": api.get(f"/s/{locked}", headers=odd_headers()),
        "app.json": api.get(f"/s/{locked}/app.json", headers=odd_headers()),
        "start": api.post(f"/s/{slug}/runs", json=body, headers=odd_headers()),
        "start locked": api.post(f"/s/{locked}/runs", json={**body, "access_code": ODD},
                                 headers=odd_headers()),
        "access": api.post(f"/s/{locked}/access", json={"code": ODD}, headers=odd_headers()),
        "run": api.get(f"/s/{slug}/runs/{run_id}", params=odd_query, headers=odd_headers()),
        "events": api.get(f"/s/{slug}/runs/{run_id}/events", params=odd_query, headers=odd_headers()),
        "hook": api.post(hook, json={"name": "x"}, headers=odd_headers()),
        "hook token": api.post(f"/hooks/wh_{ODD}", json={"name": "x"}),
        "sms": api.post(victim.sms_webhook_path, data={"Body": ODD}, headers=odd_headers()),
        "status": api.post("/twilio/status", data={"MessageSid": ODD, "MessageStatus": "sent"},
                           headers=odd_headers()),
        "review": api.get("/review", headers=odd_headers()),
        "review login": api.post("/review/login", data={"key": ODD, "token": ODD}, headers=odd_headers()),
    }
    crashed = {name: (a.status_code, a.text[:200]) for name, a in answers.items() if a.status_code >= 500}
    assert not crashed
    assert answers["run"].status_code == 404 and 400 <= answers["events"].status_code < 500
    assert answers["start"].status_code == 403
    assert answers["start"].json()["detail"][0]["type"] == "page_expired"
    assert answers["hook"].status_code == answers["sms"].status_code == answers["status"].status_code == 403


def test_every_route_refuses_a_non_ascii_key(api: TestClient, world: tuple[Owned, Owned]) -> None:
    victim, _ = world
    crashed, refused = [], 0
    for method, template in sorted(every_route(api.app)):
        if is_public(template) or template.endswith("/events"):
            continue
        path = fill(template, victim)
        headers = {b"Authorization": b"Bearer mk_" + ODD_BYTES, **odd_headers()}
        answer = api.request(method, path, headers=headers,
                             json={} if method in ("POST", "PUT", "PATCH") else None)
        refused += answer.status_code == 401
        if answer.status_code >= 500:
            crashed.append((method, template, answer.status_code, answer.text[:120]))
    assert not crashed and refused > 50


@pytest.mark.parametrize("path_of", ["apps", "runs", "share", "hook", "validate"])
def test_json_nested_past_the_body_limit_is_422_naming_it(
        api: TestClient, tenant: Tenant, world: tuple[Owned, Owned], path_of: str) -> None:
    victim, _ = world
    paths = {"apps": "/v1/apps", "runs": f"/v1/apps/{victim.ids['app_id']}/runs",
             "share": f"/s/{victim.share_slug}/runs", "hook": hooked_app(tenant)[1],
             "validate": "/v1/graphs/validate"}
    client = api if path_of in ("share", "hook") else tenant.client
    for levels in (MAX_BODY_DEPTH + 1, 500, 5_000):
        # Written out: json.dumps itself would recurse past its limit.
        text = '{"inputs": {"name": ' + '{"a": ' * levels + "1" + "}" * levels + "}}"
        answer = client.post(paths[path_of], content=text, headers={"content-type": "application/json"})
        assert answer.status_code == 422, (levels, answer.status_code, answer.text[:200])
        assert f"the limit of {MAX_BODY_DEPTH} levels" in answer.json()["detail"][0]["msg"]


def test_run_inputs_past_their_limit_are_refused_and_inputs_within_it_read_back(
        api: TestClient, tenant: Tenant) -> None:
    graph = greeter_graph()
    graph["nodes"][0]["config"]["fields"] = [{"name": "name", "type": "object"}]
    graph["nodes"][1]["config"]["template"] = "Hello!"
    graph["edges"] = [edge("greet", "text", "out", "text")]
    app_id = tenant.client.post("/v1/apps", json={"name": "deep", "graph": graph}).json()["id"]
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201, graph
    _, hook = hooked_app(tenant)

    for post in (lambda v: tenant.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": v}}),
                 lambda v: api.post(hook, json=v)):
        refused = post(nested(MAX_INPUT_DEPTH + 5))
        assert refused.status_code == 422, refused.text[:300]
        assert refused.json()["detail"][0]["msg"] == \
            f"inputs are nested deeper than the limit of {MAX_INPUT_DEPTH} levels"
        accepted = post(nested(MAX_INPUT_DEPTH - 5))
        assert accepted.status_code == 202, accepted.text[:300]
        run_id = accepted.json().get("id") or accepted.json()["run_id"]
        assert tenant.client.get(f"/v1/runs/{run_id}").status_code == 200
    assert tenant.client.get(f"/v1/apps/{app_id}/runs").status_code == 200
    assert len(tenant.client.get(f"/v1/apps/{app_id}/runs").json()["items"]) == 1


def test_a_run_stored_before_inputs_were_bounded_still_reads_back(
        tenant: Tenant, world: tuple[Owned, Owned], sessions: sessionmaker[Session]) -> None:
    victim, _ = world
    with session_scope(sessions) as session:
        run = session.get_one(Run, uuid.UUID(victim.ids["run_id"]))
        run.inputs = {"name": nested(500)}
        run.outputs = {"text": nested(400)}
    read = tenant.client.get(f"/v1/runs/{victim.ids['run_id']}")
    assert read.status_code == 200, read.text[:300]
    assert read.json()["inputs"]["_truncated"] is True and read.json()["outputs"]["_truncated"] is True
    assert tenant.client.get(f"/v1/apps/{victim.ids['app_id']}/runs").status_code == 200


def _graph_with(config: dict[str, Any], block: str = "text.template", **ui: Any) -> dict[str, Any]:
    fields = [{"name": "name", "type": "object"}]
    return {"nodes": [node("in", "trigger.api", fields=fields), {**node("x", block, **config), **ui},
                      node("out", "output", fields=[{"name": "text", "type": "string"}])],
            "edges": []}


GRAPHS = {
    "parentheses in a template": (_graph_with({"template": "{{ " + "(" * 100 + "name" + ")" * 100 + " }}"}),
                                  "config.template", MAX_EXPRESSION_DEPTH),
    "nested if blocks": (_graph_with({"template": "{% if name %}" * 200 + "x" + "{% endif %}" * 200}),
                         "config.template", MAX_EXPRESSION_DEPTH),
    "brackets in JMESPath": (
        _graph_with({"fields": [{"name": "v", "expression": "[" * 600 + "a" + "]" * 600}]}, "json.extract"),
        "config.fields.0.expression", MAX_EXPRESSION_DEPTH),
    "parentheses in JMESPath": (
        _graph_with({"fields": [{"name": "v", "expression": "(" * 600 + "a" + ")" * 600}]}, "json.extract"),
        "config.fields.0.expression", MAX_EXPRESSION_DEPTH),
    "a nested config": (_graph_with({"template": "hi", "extra": nested(MAX_CONFIG_DEPTH + 10)}), "config",
                        MAX_CONFIG_DEPTH),
    "nested UI fields": (_graph_with({"template": "hi"}, position=nested(MAX_CONFIG_DEPTH + 10)), None,
                         MAX_CONFIG_DEPTH),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_a_graph_nested_past_its_limits_is_saved_readable_and_names_the_limit(tenant: Tenant,
                                                                              name: str) -> None:
    graph, path, limit = GRAPHS[name]
    created = tenant.client.post("/v1/apps", json={"name": name, "graph": graph})
    assert created.status_code == 201, created.text[:300]
    app_id = created.json()["id"]
    for read in (f"/v1/apps/{app_id}", f"/v1/apps/{app_id}/draft"):
        assert tenant.client.get(read).status_code == 200, read
    problems = tenant.client.post(f"/v1/apps/{app_id}/validate").json()
    found = [p for p in (problems if isinstance(problems, list) else problems["problems"])
             if p["code"] == "too_deep"]
    assert found and found[0]["node_id"] == "x" and found[0].get("path") == path, problems
    assert str(limit) in found[0]["message"]
    published = tenant.client.post(f"/v1/apps/{app_id}/publish")
    assert published.status_code == 422 and "too_deep" in published.text
    checked = tenant.client.post("/v1/graphs/validate", json=graph)
    assert checked.status_code in (200, 422) and "too_deep" in checked.text


def test_version_numbers_past_what_the_database_stores_are_422_naming_the_field(
        tenant: Tenant, world: tuple[Owned, Owned]) -> None:
    victim, _ = world
    app_id = victim.ids["app_id"]
    policy = tenant.client.post("/v1/policies", json={"name": "p", "rules": {"pii": {"action": "redact"}}})
    assert policy.status_code == 201, policy.text
    for big in (2**31, 2**70):
        answers = {
            ("path", "number"): [tenant.client.get(f"/v1/apps/{app_id}/versions/{big}"),
                                 tenant.client.post(f"/v1/apps/{app_id}/versions/{big}/restore"),
                                 tenant.client.get(f"/v1/apps/{app_id}/versions/{big}/policies"),
                                 tenant.client.get(f"/v1/policies/{policy.json()['id']}/versions/{big}")],
            ("body", "version"): [tenant.client.post(f"/v1/apps/{app_id}/runs",
                                                     json={"inputs": {"name": "x"}, "version": big}),
                                  tenant.client.post(f"/v1/apps/{app_id}/shares", json={"version": big}),
                                  tenant.client.post(f"/v1/policies/{policy.json()['id']}/test",
                                                     json={"text": "hi", "version": big})],
        }
        for loc, found in answers.items():
            for answer in found:
                assert answer.status_code == 422, (loc, answer.status_code, answer.text[:200])
                assert tuple(answer.json()["detail"][0]["loc"]) == loc
