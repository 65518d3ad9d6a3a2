"""The review queue with real workers: exactly one decision wins, decisions survive stopped
workers and lost messages, and deadlines are applied by the scheduler."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from models.db import session_factory, session_scope
from models.review_decisions import decide
from models.reviews import get_item
from tests.engine.conftest import Stack, wait_until
from tests.reviews import review_graph, reviewer_key


def reviewer(stack: Stack, name: str) -> TestClient:
    """A client with a new reviewer key of the stack's organization."""
    secret = reviewer_key(session_factory(stack.database_url), stack.org_id, name)
    return TestClient(stack.client.app, headers={"Authorization": f"Bearer {secret}"},
                      raise_server_exceptions=False)


def waiting(stack: Stack, **review: Any) -> tuple[str, str]:
    """A run of the review app waiting for its reviewer; returns (run id, review id)."""
    app_id = stack.publish(review_graph(**review), name=f"review {uuid.uuid4().hex[:6]}")
    run_id = stack.run(app_id, {"message": "hello"})["id"]
    stack.wait_run(run_id, ("waiting",))
    items = stack.client.get("/v1/reviews", params={"app_id": app_id}).json()["items"]
    assert len(items) == 1, items
    return run_id, items[0]["id"]


def decisions(stack: Stack, review_id: str) -> list[dict[str, Any]]:
    """The audit log's decisions on one item."""
    entries = stack.client.get("/v1/audit", params={"target_id": review_id}).json()["items"]
    return [e for e in entries if e["action"] == "review.decide"]


def test_two_reviewers_deciding_at_the_same_instant_one_wins(stack: Stack) -> None:
    run_id, review_id = waiting(stack)
    clients = {"rita": reviewer(stack, "rita"), "sam": reviewer(stack, "sam")}
    barrier = threading.Barrier(len(clients))
    answers: dict[str, Any] = {}

    def decide_as(name: str) -> None:
        barrier.wait()
        answers[name] = clients[name].post(f"/v1/reviews/{review_id}/decision",
                                           json={"action": "edit", "text": f"Answer by {name}"})

    threads = [threading.Thread(target=decide_as, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    codes = sorted(a.status_code for a in answers.values())
    assert codes == [200, 409], {n: a.text for n, a in answers.items()}
    winner = next(name for name, a in answers.items() if a.status_code == 200)
    run = stack.wait_run(run_id)
    assert run["status"] == "succeeded" and run["outputs"] == {"text": f"Answer by {winner}"}
    assert len(decisions(stack, review_id)) == 1
    review = next(n for n in run["trace"] if n["node_id"] == "review")
    assert review["attempts"] == 1 and review["status"] == "succeeded"


def test_a_decision_blocked_by_a_concurrent_one_gets_409(stack: Stack) -> None:
    if stack.name != "production":
        pytest.skip("row locks are PostgreSQL's; SQLite lets one writer in at a time")
    run_id, review_id = waiting(stack)
    sessions = session_factory(stack.database_url)
    locked, release = threading.Event(), threading.Event()

    def first() -> None:  # decides, then holds its transaction open
        with session_scope(sessions) as session:
            item = get_item(session, org_id=stack.org_id, item_id=uuid.UUID(review_id), lock=True)
            decide(session, item=item, actor="key:0:first", reviewer="first", action="edit", text="First!",
                   note="", max_result_bytes=1024)
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=first)
    holder.start()
    assert locked.wait(30)
    answer: list[Any] = []
    second = threading.Thread(target=lambda: answer.append(
        reviewer(stack, "second").post(f"/v1/reviews/{review_id}/decision", json={"action": "approve"})))
    second.start()
    probe = create_engine(stack.database_url)
    with probe.connect() as conn:
        blocked = text("SELECT count(*) FROM pg_stat_activity "
                       "WHERE wait_event_type = 'Lock' AND datname = current_database()")
        wait_until(lambda: conn.execute(blocked).scalar(),
                   what="the second decision to wait for the first one's lock")
    probe.dispose()
    release.set()
    holder.join(30)
    second.join(30)
    assert answer[0].status_code == 409 and "already decided by key:0:first" in answer[0].text
    # The first decision enqueued nothing: the reaper finds the decided run and resumes it.
    run = stack.wait_run(run_id)
    assert run["outputs"] == {"text": "First!"}


def test_a_decision_made_while_the_workers_are_down_is_applied_when_they_return(stack: Stack) -> None:
    run_id, review_id = waiting(stack)
    for worker in stack.workers:
        worker.stop()
    decided = reviewer(stack, "rita").post(f"/v1/reviews/{review_id}/decision",
                                           json={"action": "edit", "text": "Sent after the restart"})
    assert decided.status_code == 200, decided.text
    assert stack.get_run(run_id)["status"] == "waiting"  # nobody is there to resume it
    stack.start_worker()
    run = stack.wait_run(run_id)
    assert run["status"] == "succeeded" and run["outputs"] == {"text": "Sent after the restart"}


def test_the_scheduler_applies_the_default_action_past_the_deadline(stack: Stack) -> None:
    app_id = stack.publish(review_graph(deadline_s=0.5, default_action="reject"), name="deadline")
    run_id = stack.run(app_id, {"message": "anyone?"})["id"]
    run = stack.wait_run(run_id)
    assert run["status"] == "succeeded", run
    assert run["outputs"]["refusal"].startswith("Sorry, we cannot answer that. no decision within 0.5 s")
    item = stack.client.get("/v1/reviews", params={"app_id": app_id}).json()["items"][0]
    assert item["status"] == "expired" and item["decided_by"] == "system:deadline"
