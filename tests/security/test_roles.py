"""The reviewer role can do what reviewing needs and nothing else, on every route the API serves.

A reviewer works the review queue; it never starts runs, never reads credentials, webhooks,
phone numbers, conversations, exports, drafts, runs or shares. The table below is the README's
role table: a new keyed route is refused to reviewers unless it is added here (and there).
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.security.routes import every_route, is_public, path_params
from tests.security.world import Owned

# What a reviewer key may call (beyond the public routes): its organization, app names to filter
# the queue by, the block catalogue, the queue itself, and its own browser session.
REVIEWER_MAY = {
    ("GET", "/v1/org"), ("GET", "/v1/apps"), ("GET", "/v1/blocks"), ("GET", "/v1/blocks/{block_type}"),
    ("GET", "/v1/reviews"), ("GET", "/v1/reviews/{review_id}"), ("POST", "/v1/reviews/{review_id}/claim"),
    ("POST", "/v1/reviews/{review_id}/decision"),
    ("GET", "/v1/session"), ("POST", "/v1/session"),
}
# Decided inside the route by who is asking (a person, or an API key), whatever the role.
DECIDED_BY_THE_ROUTE = {("GET", "/v1/keys"), ("POST", "/v1/keys"), ("DELETE", "/v1/keys/{key_id}"),
                        ("DELETE", "/v1/session"), ("POST", "/v1/session/org"), ("POST", "/v1/session/links")}


def reviewer_of(tenant: Tenant) -> TestClient:
    """A client sending a new reviewer key of the tenant's organization."""
    made = tenant.client.post("/v1/keys", json={"name": "rita", "role": "reviewer"})
    assert made.status_code == 201, made.text
    return TestClient(tenant.client.app, headers={"Authorization": f"Bearer {made.json()['key']}"},
                      raise_server_exceptions=False)


def filled(path: str, owned: Owned) -> str:
    """The path with the organization's own ids (so only the role can refuse it)."""
    for name in path_params(path):
        value = owned.params_for(path).get(name, str(uuid.uuid4()))
        path = path.replace("{" + name + "}", value)
    return path


def test_a_reviewer_key_is_refused_everything_but_reviewing(api: TestClient,
                                                            world: tuple[Owned, Owned]) -> None:
    victim, _ = world
    reviewer = reviewer_of(victim.tenant)
    anonymous = TestClient(api.app, raise_server_exceptions=False)
    wrong = []
    for method, template in sorted(every_route(api.app)):
        if is_public(template):
            continue
        path = filled(template, victim)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        if anonymous.request(method, path, json=body).status_code != 401:
            continue  # takes no key (accepting an invitation, say): not a role's to refuse
        answer = reviewer.request(method, path, json=body)
        allowed = (method, template) in REVIEWER_MAY
        if (method, template) not in DECIDED_BY_THE_ROUTE and allowed == (answer.status_code == 403):
            wrong.append((method, template, answer.status_code, answer.text[:100]))
    assert not wrong, "reviewer permissions differ from the role table (README, tests/security/test_roles.py)"


def test_a_reviewer_decides_but_starts_and_reads_nothing_else(api: TestClient,
                                                              world: tuple[Owned, Owned]) -> None:
    victim, _ = world
    reviewer = reviewer_of(victim.tenant)
    ids = victim.ids
    refused = {
        "start a run": reviewer.post(f"/v1/apps/{ids['app_id']}/runs", json={"inputs": {"name": "x"}}),
        "credentials": reviewer.get("/v1/credentials"),
        "a credential": reviewer.get(f"/v1/credentials/{ids['credential_id']}"),
        "webhook": reviewer.get(f"/v1/apps/{ids['app_id']}/webhook"),
        "conversations": reviewer.get(f"/v1/apps/{ids['sms_app_id']}/conversations"),
        "a conversation": reviewer.get(f"/v1/apps/{ids['sms_app_id']}/conversations/{ids['phone']}"),
        "export": reviewer.get(f"/v1/apps/{ids['app_id']}/export"),
        "a run": reviewer.get(f"/v1/runs/{ids['run_id']}"),
        "runs": reviewer.get(f"/v1/apps/{ids['app_id']}/runs"),
    }
    assert {name: a.status_code for name, a in refused.items()} == dict.fromkeys(refused, 403)
    assert "reviewer" in refused["start a run"].json()["detail"][0]["msg"]
    assert reviewer.get("/v1/apps").status_code == 200
    item = reviewer.get(f"/v1/reviews/{ids['review_id']}")
    assert item.status_code == 200, item.text
    decided = reviewer.post(f"/v1/reviews/{ids['review_id']}/decision", json={"action": "approve"})
    assert decided.status_code == 200, decided.text
