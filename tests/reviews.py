"""Helpers shared by the review queue's tests: the graph under review, reviewer keys, a waiting run."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models.db import session_scope
from models.orgs import Role, create_key
from tests.conftest import Tenant
from tests.factories import edge, node
from worker.engine import RunEngine


def review_graph(**review: Any) -> dict[str, Any]:
    """trigger(message) → template (the draft reply) → human.review → output `text` if approved,
    or → refusal template (with the reviewer's note) → output `refusal` if rejected."""
    return {
        "nodes": [
            node("in", "trigger.api", fields=[{"name": "message"}]),
            node("draft", "text.template", template="Reply to: {{ message }}"),
            node("review", "human.review", **review),
            node("out", "output", fields=[{"name": "text", "type": "string"}]),
            node("refusal", "text.template", template="Sorry, we cannot answer that. {{ reason }}"),
            node("out_refusal", "output", fields=[{"name": "refusal", "type": "string"}]),
        ],
        "edges": [
            edge("in", "message", "draft", "message"),
            edge("draft", "text", "review", "text"),
            edge("in", "message", "review", "context"),
            edge("review", "approved", "out", "text"),
            edge("review", "rejected", "refusal", "reason"),
            edge("refusal", "text", "out_refusal", "refusal"),
        ],
    }


def reviewer_key(sessions: sessionmaker[Session], org_id: uuid.UUID, name: str = "rita") -> str:
    """A new reviewer key of the organization; returns its secret."""
    with session_scope(sessions) as session:
        _, secret = create_key(session, org_id=org_id, name=name, role=Role.reviewer)
    return secret


def waiting_review(tenant: Tenant, runs: RunEngine, message: str = "where is my parcel?", *,
                   policy: dict[str, Any] | None = None, **review: Any) -> tuple[str, dict[str, Any]]:
    """Publish the review app, start a run, advance it to the review; returns (run id, queue item)."""
    graph = review_graph(**review)
    if policy is not None:
        graph["nodes"][2]["policy"] = policy
    created = tenant.client.post("/v1/apps", json={"name": f"reply {uuid.uuid4().hex[:6]}", "graph": graph})
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    assert tenant.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    run = tenant.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"message": message}})
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    assert runs.advance(uuid.UUID(run_id)) == "waiting"
    items = tenant.client.get("/v1/reviews", params={"app_id": app_id}).json()["items"]
    assert len(items) == 1, items
    return run_id, items[0]


def finish(tenant: Tenant, runs: RunEngine, run_id: str) -> dict[str, Any]:
    """Advance the run as a worker would after the decision; returns the run as the API shows it."""
    runs.advance(uuid.UUID(run_id))
    body: dict[str, Any] = tenant.client.get(f"/v1/runs/{run_id}").json()
    return body


def reviewer_client(tenant: Tenant, sessions: sessionmaker[Session], name: str = "rita") -> TestClient:
    """A client with a new reviewer key of the tenant's organization."""
    secret = reviewer_key(sessions, tenant.org_id, name)
    return TestClient(tenant.client.app, headers={"Authorization": f"Bearer {secret}"},
                      raise_server_exceptions=False)
