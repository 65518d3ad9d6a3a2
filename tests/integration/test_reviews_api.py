"""The review queue API on SQLite and PostgreSQL: a run waits for a person, who decides once.

The test itself plays the run worker: it advances runs in-process with a RunEngine on the
test's database (the API hands its own `runs.advance` messages to an unconsumed folder broker).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from models.base import utcnow
from models.db import session_scope
from models.orgs import Role
from models.review_decisions import decide
from models.reviews import ReviewItem, get_item
from models.runs import Run
from tests.conftest import Tenant, make_tenant
from tests.reviews import finish, reviewer_client, waiting_review
from worker.engine import RunEngine
from worker.reviews import sweep


@pytest.fixture
def runs(sessions: sessionmaker[Session], settings: Settings, api: TestClient) -> RunEngine:
    """The run engine on the test's database; what it would enqueue is dropped (the test advances)."""
    return RunEngine(sessions, api.app.state.registry, settings, enqueue=lambda run_id, eta: None)


def test_a_waiting_run_shows_up_in_the_queue_with_its_text_context_and_trace(
        tenant: Tenant, runs: RunEngine) -> None:
    run_id, summary = waiting_review(tenant, runs, instructions="Be kind", assignee_group="support")
    assert summary["status"] == "pending" and summary["preview"] == "Reply to: where is my parcel?"
    listing = tenant.client.get("/v1/reviews", params={"status": "pending", "assignee_group": "support"})
    listing = listing.json()
    assert listing["total"] == 1 and listing["counts"]["pending"] == 1 and listing["counts"]["decided"] == 0
    assert tenant.client.get("/v1/reviews", params={"assignee_group": "billing"}).json()["total"] == 0

    item = tenant.client.get(f"/v1/reviews/{summary['id']}").json()
    assert item["instructions"] == "Be kind" and item["context"] == "where is my parcel?"
    assert item["actions"] == ["approve", "edit", "reject"]
    trace = {n["node_id"]: n for n in item["run"]["trace"]}
    assert trace["draft"]["status"] == "succeeded"
    assert trace["review"]["status"] == "waiting" and trace["review"]["waiting_for"] == "review"
    assert item["run"]["status"] == "waiting" and item["run"]["id"] == run_id


def test_an_edit_resumes_the_run_with_the_edited_text_and_is_audited(tenant: Tenant, runs: RunEngine,
                                                                     sessions: sessionmaker[Session]) -> None:
    run_id, summary = waiting_review(tenant, runs)
    reviewer = reviewer_client(tenant, sessions)
    decided = reviewer.post(f"/v1/reviews/{summary['id']}/decision",
                            json={"action": "edit", "text": "Your parcel arrives Monday.", "note": "softer"})
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "decided" and decided.json()["decided_by"].endswith(":rita")

    run = finish(tenant, runs, run_id)
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"text": "Your parcel arrives Monday."}
    assert {n["node_id"]: n["status"] for n in run["trace"]}["out_refusal"] == "skipped"

    again = reviewer.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "reject"})
    assert again.status_code == 409 and "already decided" in again.json()["detail"][0]["msg"]
    audit = tenant.client.get("/v1/audit", params={"target_id": summary["id"]}).json()["items"]
    assert [e["action"] for e in audit] == ["review.decide"]
    assert audit[0]["details"]["before"] == "Reply to: where is my parcel?"
    assert audit[0]["details"]["after"] == "Your parcel arrives Monday."
    assert audit[0]["actor"].endswith(":rita")


def test_a_decision_too_large_to_store_fails_the_node_as_any_oversized_result_does(
        tenant: Tenant, runs: RunEngine, sessions: sessionmaker[Session]) -> None:
    run_id, summary = waiting_review(tenant, runs)
    with session_scope(sessions) as session:  # the limit is MANTLE_MAX_VALUE_BYTES; 1,000 bytes here
        item = get_item(session, org_id=tenant.org_id, item_id=uuid.UUID(summary["id"]), lock=True)
        decide(session, item=item, actor="key:0:rita", reviewer="rita", action="edit", text="x" * 2000,
               note="", max_result_bytes=1000)
    run = finish(tenant, runs, run_id)
    assert run["status"] == "failed", run
    message = run["error"]["message"]
    assert "the result is 2" in message and "bytes; the limit is 1000" in message, message
    assert tenant.client.get(f"/v1/reviews/{summary['id']}").json()["status"] == "decided"


def test_a_rejection_takes_the_refusal_branch_with_the_note(tenant: Tenant, runs: RunEngine) -> None:
    run_id, summary = waiting_review(tenant, runs)
    response = tenant.client.post(f"/v1/reviews/{summary['id']}/decision",
                                  json={"action": "reject", "note": "We never share tracking here."})
    assert response.status_code == 200, response.text
    run = finish(tenant, runs, run_id)
    assert run["status"] == "succeeded"
    assert run["outputs"] == {"refusal": "Sorry, we cannot answer that. We never share tracking here."}


def test_a_claim_keeps_others_from_deciding(tenant: Tenant, runs: RunEngine, sessions: sessionmaker[Session]
                                            ) -> None:
    _, summary = waiting_review(tenant, runs)
    rita, sam = reviewer_client(tenant, sessions, "rita"), reviewer_client(tenant, sessions, "sam")
    claimed = rita.post(f"/v1/reviews/{summary['id']}/claim")
    assert claimed.status_code == 200 and claimed.json()["claimed_by"].endswith(":rita")
    assert sam.post(f"/v1/reviews/{summary['id']}/claim").status_code == 409
    refused = sam.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "approve"})
    assert refused.status_code == 409 and "rita" in refused.json()["detail"][0]["msg"]
    assert rita.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "approve"}).status_code == 200
    audit = tenant.client.get("/v1/audit", params={"target_id": summary["id"]}).json()["items"]
    assert sorted(e["action"] for e in audit) == ["review.claim", "review.decide"]
    assert all(e["details"].get("text", e["details"].get("before")) for e in audit)


def test_bad_decisions_are_refused_with_a_clear_reason(tenant: Tenant, runs: RunEngine) -> None:
    _, summary = waiting_review(tenant, runs, actions=["approve", "reject"])
    url = f"/v1/reviews/{summary['id']}/decision"
    no_text = tenant.client.post(url, json={"action": "edit"})
    assert no_text.status_code == 422 and "text" in no_text.text
    not_allowed = tenant.client.post(url, json={"action": "edit", "text": "x"})
    assert not_allowed.status_code == 422
    assert "allowed: approve, reject" in not_allowed.json()["detail"][0]["msg"]
    unknown = tenant.client.post(url, json={"action": "maybe"})
    assert unknown.status_code == 422
    missing = tenant.client.post(f"/v1/reviews/{uuid.uuid4()}/decision", json={"action": "approve"})
    assert missing.status_code == 404
    assert tenant.client.get("/v1/reviews/not-an-id").status_code == 422


def test_roles_and_organizations(tenant: Tenant, other_tenant: Tenant, runs: RunEngine, api: TestClient,
                                 sessions: sessionmaker[Session]) -> None:
    _, summary = waiting_review(tenant, runs)
    reviewer = reviewer_client(tenant, sessions)
    assert reviewer.get("/v1/reviews").json()["total"] == 1
    refused = reviewer.post("/v1/apps", json={"name": "not mine to build"})
    assert refused.status_code == 403 and "reviewer" in refused.json()["detail"][0]["msg"]
    builder = make_tenant(sessions, api, "builders-inc", role=Role.builder)
    assert builder.client.get("/v1/reviews").status_code == 403
    assert other_tenant.client.get(f"/v1/reviews/{summary['id']}").status_code == 404
    assert other_tenant.client.post(f"/v1/reviews/{summary['id']}/decision",
                                    json={"action": "approve"}).status_code == 404
    assert other_tenant.client.get("/v1/reviews").json()["total"] == 0


@pytest.mark.parametrize(("default_action", "expected"), [
    ("approve", {"status": "succeeded", "outputs": {"text": "Reply to: late?"}}),
    ("fail", {"status": "failed"}),
])
def test_a_deadline_applies_the_default_action(tenant: Tenant, runs: RunEngine,
                                               sessions: sessionmaker[Session], default_action: str,
                                               expected: dict[str, Any]) -> None:
    run_id, summary = waiting_review(tenant, runs, "late?", deadline_s=3600, default_action=default_action)
    with session_scope(sessions) as session:  # an hour later
        session.execute(update(ReviewItem).where(ReviewItem.id == uuid.UUID(summary["id"]))
                        .values(deadline_at=utcnow() - timedelta(seconds=1)))
    assert sweep(sessions, lambda run_id: None) == 1
    run = finish(tenant, runs, run_id)
    assert {k: run[k] for k in expected} == expected, run
    item = tenant.client.get(f"/v1/reviews/{summary['id']}").json()
    assert item["status"] == "expired" and item["decision"] == default_action
    late = tenant.client.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "approve"})
    assert late.status_code == 409


def test_a_retried_review_node_opens_a_new_item(tenant: Tenant, runs: RunEngine,
                                               sessions: sessionmaker[Session]) -> None:
    run_id, first = waiting_review(tenant, runs, deadline_s=60, default_action="fail",
                                   policy={"retries": 1, "backoff_s": 0})
    with session_scope(sessions) as session:
        session.execute(update(ReviewItem).where(ReviewItem.id == uuid.UUID(first["id"]))
                        .values(deadline_at=utcnow() - timedelta(seconds=1)))
    sweep(sessions, lambda run_id: None)
    runs.advance(uuid.UUID(run_id))  # the node fails and schedules its retry ...
    assert runs.advance(uuid.UUID(run_id)) == "waiting"  # ... whose attempt waits for a new review
    listing = tenant.client.get("/v1/reviews", params={"app_id": first["app_id"]}).json()
    assert listing["counts"] == {"pending": 1, "decided": 0, "expired": 1, "cancelled": 0}
    second = next(i for i in listing["items"] if i["status"] == "pending")
    assert second["id"] != first["id"]
    decided = tenant.client.post(f"/v1/reviews/{second['id']}/decision", json={"action": "approve"})
    assert decided.status_code == 200, decided.text
    assert finish(tenant, runs, run_id)["outputs"] == {"text": "Reply to: where is my parcel?"}


def test_a_cancelled_run_closes_its_review(tenant: Tenant, runs: RunEngine,
                                           sessions: sessionmaker[Session]) -> None:
    run_id, summary = waiting_review(tenant, runs)
    assert tenant.client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    refused = tenant.client.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "approve"})
    assert refused.status_code == 409 and "ended" in refused.json()["detail"][0]["msg"]
    sweep(sessions, lambda run_id: None)
    assert tenant.client.get(f"/v1/reviews/{summary['id']}").json()["status"] == "cancelled"


def test_the_reaper_resumes_a_decided_run_whose_message_was_lost(tenant: Tenant, runs: RunEngine,
                                                                  sessions: sessionmaker[Session],
                                                                  settings: Settings) -> None:
    run_id, summary = waiting_review(tenant, runs)
    sent: list[uuid.UUID] = []
    reaper = RunEngine(sessions, runs.analyses.registry, settings, enqueue=lambda run, eta: sent.append(run))
    decided = tenant.client.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "approve"})
    assert decided.status_code == 200
    reaper.reap()
    assert uuid.UUID(run_id) not in sent  # the decision just happened: its own message is on its way
    with session_scope(sessions) as session:  # ... but it never arrives
        session.execute(update(Run).where(Run.id == uuid.UUID(run_id))
                        .values(heartbeat_at=utcnow() - timedelta(seconds=settings.stale_after_s + 1)))
    reaper.reap()
    assert uuid.UUID(run_id) in sent
    assert finish(tenant, runs, run_id)["status"] == "succeeded"


def test_metrics_show_queue_depth_and_time_to_decision(tenant: Tenant, runs: RunEngine) -> None:
    _, summary = waiting_review(tenant, runs)
    assert 'mantle_review_queue_depth{status="pending"} 1.0' in tenant.client.get("/metrics").text
    tenant.client.post(f"/v1/reviews/{summary['id']}/decision", json={"action": "approve"})
    metrics = tenant.client.get("/metrics").text
    assert 'mantle_review_queue_depth{status="decided"} 1.0' in metrics
    assert 'mantle_review_decision_seconds_count{outcome="approve"}' in metrics
