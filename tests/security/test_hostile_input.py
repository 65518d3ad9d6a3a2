"""Hostile input everywhere a caller can write: a 4xx that names the problem, never a 500.

Oversized and deeply nested JSON, graphs past their limits, long SMS bodies, and text with NUL
characters, lone surrogates, right-to-left overrides and 4-byte emoji in every string field of
every JSON body the API's schema describes (so new routes are covered without an edit).
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from core.nesting import MAX_BODY_DEPTH
from tests.conftest import Tenant
from tests.security.routes import is_public, path_params
from tests.security.test_tenancy_sweep import operations
from tests.security.world import Owned
from tests.sms import inbound_form, post_signed

UNSTORABLE = ["nul\x00byte", "lone \ud800 surrogate", "\udfff"]
ODD_BUT_FINE = ["\u202eevil.exe\u202c", "emoji 😀🧑‍🚀🏳️‍🌈", "\ufeffbom", "e\u0301" * 50, "\u200b" * 10,
                "x" * 20_000]


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    """A raw JSON request (lone surrogates travel as `\\ud800` escapes, as any JSON encoder sends them)."""
    return client.request(method, path, content=json.dumps(body, ensure_ascii=True),
                          headers={"content-type": "application/json"})


def test_an_oversized_body_is_413_naming_the_limit(tenant: Tenant) -> None:
    limit = tenant.client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    answer = send(tenant.client, "POST", "/v1/apps", {"name": "big", "description": "x" * (limit + 1)})
    assert answer.status_code == 413 and str(limit) in answer.json()["detail"][0]["msg"], answer.text


def test_deeply_nested_json_is_refused_with_its_reason(tenant: Tenant, world: tuple[Owned, Owned]) -> None:
    app_id = world[0].ids["app_id"]
    deep = "[" * 200_000 + "]" * 200_000
    for method, path in (("POST", "/v1/apps"), ("PUT", f"/v1/apps/{app_id}/draft"),
                         ("POST", f"/v1/apps/{app_id}/runs"), ("POST", "/v1/graphs/validate")):
        for body in (deep, '{"inputs": {"name": ' + deep + "}}"):
            answer = tenant.client.request(method, path, content=body,
                                           headers={"content-type": "application/json"})
            assert answer.status_code == 422, (path, answer.status_code, answer.text[:200])
            assert answer.json()["detail"][0]["msg"] == \
                f"the JSON body is nested deeper than the limit of {MAX_BODY_DEPTH} levels"


def test_a_graph_past_its_limits_names_them(tenant: Tenant) -> None:
    nodes = [{"id": f"n{i}", "type": "text.template", "config": {}} for i in range(1001)]
    answer = send(tenant.client, "POST", "/v1/graphs/validate", {"nodes": nodes, "edges": []})
    assert answer.status_code in (200, 422), answer.text[:300]
    assert "1001 nodes; the limit is 1000" in answer.text
    huge = {"name": "huge", "graph": {"nodes": nodes, "edges": []}}
    created = send(tenant.client, "POST", "/v1/apps", huge)
    assert created.status_code in (201, 413, 422), created.text[:300]
    if created.status_code == 201:  # saved as a draft, never published
        refused = tenant.client.post(f"/v1/apps/{created.json()['id']}/publish")
        assert refused.status_code == 422 and "the limit is 1000" in refused.text
    config = {"nodes": [{"id": "t", "type": "text.template", "config": {"template": "x" * 70_000}}],
              "edges": []}
    answer = send(tenant.client, "POST", "/v1/graphs/validate", config)
    assert answer.status_code in (200, 413, 422) and "limit" in answer.text, answer.text[:300]


def test_a_long_sms_is_kept_truncated_and_odd_text_is_answered(world: tuple[Owned, Owned]) -> None:
    owned = world[0]
    client = owned.tenant.client
    for body in ("x" * 100_000, "😀" * 2000, "\u202eRTL text", "nul\x00in sms"):
        answer = post_signed(client, owned.sms_webhook_path, inbound_form(body, to="+15550001111"),
                             token=owned.twilio_token)
        assert answer.status_code in (200, 422), (body[:20], answer.status_code, answer.text[:200])
    convo = client.get(f"/v1/apps/{owned.ids['sms_app_id']}/conversations/+15557654321").json()
    longest = max((m["body"] for m in convo["items"]), key=len)
    assert 0 < len(longest) <= 1600, len(longest)  # MANTLE_SMS_MAX_INBOUND_CHARS


def test_every_string_field_refuses_unstorable_text_and_keeps_odd_text(
        api: TestClient, world: tuple[Owned, Owned]) -> None:
    owned = world[0]
    failures: list[str] = []
    tried = 0
    for label, operation in sorted(operations(api).items()):
        if operation.method.upper() not in ("POST", "PUT", "PATCH") or is_public(operation.path):
            continue
        params = owned.params_for(operation.path)
        path = operation.path.format(**{p: params.get(p, "x") for p in path_params(operation.path)})
        for body in example_bodies(operation, owned.tenant.key):
            for field in [k for k, v in body.items() if isinstance(v, str)]:
                for text in UNSTORABLE + ODD_BUT_FINE:
                    tried += 1
                    answer = send(owned.tenant.client, operation.method.upper(), path, {**body, field: text})
                    bad = answer.status_code >= 500 or (text in UNSTORABLE and answer.status_code < 400)
                    if bad:
                        failures.append(f"{label} {field}={text[:12]!r}: {answer.status_code} "
                                        f"{answer.text[:150]}")
    assert tried > 100, tried
    assert not failures, "\n".join(failures)


def example_bodies(operation: Any, key: str) -> list[dict[str, Any]]:
    """A few valid JSON bodies for `operation`, generated from its schema."""
    found: list[dict[str, Any]] = []

    @given(case=operation.as_strategy(GenerationMode.POSITIVE, headers={"Authorization": f"Bearer {key}"}))
    @settings(max_examples=2, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def collect(case: schemathesis.Case[Any]) -> None:
        if isinstance(case.body, dict):
            found.append(case.body)

    collect()
    return found
