"""An organization owning one object of every kind the API names by id, made through the API.

The cross-tenant sweep aims another organization's key at these ids; `ids_by_param` says which
id fills which path parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from sqlalchemy import update

from models.base import utcnow
from models.db import session_scope
from models.runs import Run
from models.usage import UsageSource, record_usage
from tests.conftest import Tenant
from tests.factories import greeter_graph
from tests.people import accept
from tests.reviews import review_graph
from tests.sms import ACCOUNT_SID, AUTH_TOKEN, NUMBER, inbound_form, post_signed, sms_app, store_twilio
from worker.engine import RunEngine
from worker.retention import Pruner

PHONE = "+15557000001"


@dataclass
class Owned:
    """What one organization owns: path parameter name → the id of one of its objects."""

    tenant: Tenant
    ids: dict[str, str] = field(default_factory=dict)
    share_slug: str = ""
    share_run: dict[str, Any] = field(default_factory=dict)
    sms_webhook_path: str = ""
    twilio_token: str = AUTH_TOKEN

    def secrets(self) -> set[str]:
        """Strings that must never appear in another organization's answers."""
        public = ("number", "phone", "account_sid", "node_id")  # node ids are the builder's words
        return {v for k, v in self.ids.items() if k not in public} | {self.share_slug}

    def params_for(self, path: str) -> dict[str, str]:
        """Path parameters naming this organization's objects (an SMS route's own app for SMS paths)."""
        ids = dict(self.ids)
        if "/phone-numbers" in path or "/conversations" in path:
            ids["app_id"] = ids["sms_app_id"]
        return ids


def _created(answer: Any) -> dict[str, Any]:
    assert answer.status_code in (200, 201, 202), answer.text
    body: dict[str, Any] = answer.json()
    return body


def build(tenant: Tenant, runs: RunEngine, *, number: str = NUMBER, label: str = "victim",
          twilio_token: str = AUTH_TOKEN) -> Owned:
    """One of everything for `tenant`: apps, a version, a run, a review, a share, a credential,
    a phone route with a conversation, a model deployment and a call's usage, a knowledge base with a
    document, a second key, a pending invitation, a member signed in through a browser, retention
    settings and a run they pruned."""
    owned = Owned(tenant, twilio_token=twilio_token)
    client = tenant.client
    app = _created(client.post("/v1/apps", json={"name": f"{label} greeter", "graph": greeter_graph()}))
    _created(client.post(f"/v1/apps/{app['id']}/publish"))
    run = _created(client.post(f"/v1/apps/{app['id']}/runs", json={"inputs": {"name": label}}))
    review_app = _created(client.post("/v1/apps", json={"name": f"{label} review", "graph": review_graph()}))
    _created(client.post(f"/v1/apps/{review_app['id']}/publish"))
    waiting = _created(client.post(f"/v1/apps/{review_app['id']}/runs", json={"inputs": {"message": "hi"}}))
    assert runs.advance(uuid.UUID(waiting["id"])) == "waiting"
    review = client.get("/v1/reviews", params={"app_id": review_app["id"]}).json()["items"][0]
    share = _created(client.post(f"/v1/apps/{app['id']}/shares", json={}))
    owned.share_run = _created(client.post(f"/s/{share['slug']}/runs", json={"inputs": {"name": "visitor"}}))
    credential = store_twilio(client, auth_token=twilio_token)
    sms_id, route = sms_app(client, number=number, name=f"{label} sms")
    owned.sms_webhook_path = "/" + route["webhook_url"].split("/", 3)[3]
    answer = post_signed(client, owned.sms_webhook_path, inbound_form("hello", to=number, from_=PHONE),
                         token=twilio_token)
    assert answer.status_code == 200, answer.text
    model = _created(client.post("/v1/models", json={"name": f"{label}-model", "source": "hf://acme/tiny"}))
    kb = _created(client.post("/v1/knowledge", json={"name": f"{label} docs"}))
    document = _created(client.post(f"/v1/knowledge/{kb['id']}/documents",
                                    files={"file": ("notes.md", b"# Notes\n\nAt nine.", "text/markdown")}))
    key = _created(client.post("/v1/keys", json={"name": f"{label} ci", "role": "builder"}))
    pending = _created(client.post("/v1/invitations", json={"email": f"{label}-later@example.com"}))
    invited = _created(client.post("/v1/invitations",
                                   json={"email": f"{label}@example.com", "role": "reviewer"}))
    person = accept(TestClient(client.app, raise_server_exceptions=False), invited["url"])
    [browser] = [s for s in _listed(client.get("/v1/sessions")) if s["email"] == f"{label}@example.com"]
    with session_scope(runs.sessions) as session:  # a model call's usage (GET /v1/usage lists it)
        record_usage(session, org_id=tenant.org_id, source=UsageSource.run, deployment=model["name"],
                     prompt_tokens=3, completion_tokens=4, latency_s=0.5, cost=None,
                     app_id=uuid.UUID(app["id"]), run_id=uuid.UUID(run["id"]), node_id="greet")
    # Retention: the organization's policy, the greeter's own, and a run of it pruned long ago.
    _created(client.put("/v1/org/retention", json={"keep_days": 3650}))
    _created(client.put(f"/v1/apps/{app['id']}/retention", json={"keep_days": 3650, "keep_runs": 1000}))
    old = _created(client.post(f"/v1/apps/{app['id']}/runs", json={"inputs": {"name": "long ago"}}))
    assert runs.advance(uuid.UUID(old["id"])) == "succeeded"
    with session_scope(runs.sessions) as session:
        then = utcnow() - timedelta(days=4000)
        aged = update(Run).where(Run.id == uuid.UUID(old["id"])).values(created_at=then, finished_at=then)
        session.execute(aged)
    assert Pruner(runs.sessions, runs.settings).sweep().runs == 1
    owned.share_slug = share["slug"]
    owned.ids = {"app_id": app["id"], "run_id": run["id"], "review_id": review["id"], "share_id": share["id"],
                 "credential_id": credential["id"], "route_id": route["id"], "phone": PHONE,
                 "name": model["name"], "key_id": key["id"], "number": "1", "sms_app_id": sms_id,
                 "review_run_id": waiting["id"], "account_sid": ACCOUNT_SID,
                 "node_id": "greet",  # the greeter's template node, for a node test of the draft
                 "user_id": person.user_id, "invitation_id": pending["id"], "session_id": browser["id"],
                 "kb_id": kb["id"], "document_id": document["id"], "pruned_run_id": old["id"]}
    return owned


def _listed(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    body: list[dict[str, Any]] = answer.json()
    return body


def discover(owned: Owned, path: str, param: str, operations: Mapping[str, Any]) -> str | None:
    """An id of `owned` for a path parameter the sweep was not taught (a route added later): one
    of its objects listed at the collection the parameter names (`/v1/things` for `{thing_id}`),
    or one created there from a request body generated from the API's own schema."""
    if param in owned.ids:
        return owned.ids[param]
    collection = path.split("/{" + param + "}")[0]
    if "{" in collection:
        return None
    client = owned.tenant.client

    def listed() -> str | None:
        answer = client.get(collection)
        body = answer.json() if answer.status_code == 200 else []
        items = body.get("items", []) if isinstance(body, dict) else body
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and (item.get(param) or item.get("id")):
                return str(item.get(param) or item["id"])
        return None

    found = listed()
    create = operations.get(f"POST {collection}")
    if found is None and create is not None:
        auth = {"Authorization": f"Bearer {owned.tenant.key}"}

        @given(case=create.as_strategy(GenerationMode.POSITIVE, headers=auth))
        @settings(max_examples=40, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def make(case: schemathesis.Case[Any]) -> None:
            if not owned.ids.get(param) and case.call().status_code in (200, 201):
                owned.ids[param] = listed() or ""

        make()
        found = owned.ids.get(param) or listed()
    if found:
        owned.ids[param] = found
    return found
