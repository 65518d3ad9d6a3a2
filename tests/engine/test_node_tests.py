"""Testing one node of a draft through real workers: an inline node answers at once, a deferred one
waits for its reviewer, a side effect happens once, and the test is a run like any other (its trace,
its event stream) that stays out of the app's run list unless asked for."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from models.db import session_factory
from tests.engine.blocks import executions
from tests.engine.conftest import Stack
from tests.factories import edge, node
from tests.reviews import reviewer_key


def draft_app(stack: Stack, *extra: dict[str, Any]) -> str:
    """An unpublished app whose draft holds a template `t`, a review `review` and `extra` nodes."""
    graph = {
        "nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                  node("t", "text.template", template="Hello {{ name }}, {{ greeting }}!"),
                  node("review", "human.review", instructions="Is this polite?"),
                  *extra],
        "edges": [edge("in", "name", "t", "name")],  # a draft half wired: `greeting` is not
    }
    created = stack.client.post("/v1/apps", json={"name": f"draft {uuid.uuid4().hex[:6]}", "graph": graph})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    return app_id


def try_node(stack: Stack, app_id: str, node_id: str, inputs: dict[str, Any], **body: Any) -> Any:
    """POST a node test; the raw response."""
    return stack.client.post(f"/v1/apps/{app_id}/draft/nodes/{node_id}/test",
                             json={"inputs": inputs, **body}, params={"wait": 20})


def trace_of(run: dict[str, Any], node_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(n for n in run["trace"] if n["node_id"] == node_id)
    return found


def test_an_inline_node_of_an_unfinished_draft_answers_with_its_outputs(stack: Stack) -> None:
    app_id = draft_app(stack)
    answer = try_node(stack, app_id, "t", {"name": "Ada", "greeting": "welcome"})

    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "succeeded" and run["kind"] == "node_test" and run["test_node_id"] == "t"
    assert run["outputs"] == {"text": "Hello Ada, welcome!"}
    tested = trace_of(run, "t")
    assert tested["status"] == "succeeded" and tested["inputs"] == {"name": "Ada", "greeting": "welcome"}
    assert answer.headers["Location"] == f"/v1/runs/{run['id']}"

    events = stack.events(run["id"])
    assert [e["type"] for e in events if e["node_id"] == "t"] == ["node_started", "node_finished"]
    assert [e["data"]["status"] for e in events if e["type"] == "run_finished"] == ["succeeded"]

    # The app's run list is for its runs; node tests are there when asked for.
    assert stack.client.get(f"/v1/apps/{app_id}/runs").json()["total"] == 0
    tests = stack.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "node_test"}).json()
    assert [(r["id"], r["kind"], r["test_node_id"]) for r in tests["items"]] == [
        (run["id"], "node_test", "t")]
    assert stack.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "all"}).json()["total"] == 1


def test_a_review_node_waits_for_its_reviewer_then_answers(stack: Stack) -> None:
    app_id = draft_app(stack)
    started = stack.client.post(f"/v1/apps/{app_id}/draft/nodes/review/test",
                                json={"inputs": {"text": "Dear customer, no."}})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    stack.wait_run(run_id, ("waiting",))

    items = stack.client.get("/v1/reviews", params={"app_id": app_id}).json()["items"]
    assert [(i["preview"], i["run_id"]) for i in items] == [("Dear customer, no.", run_id)]
    secret = reviewer_key(session_factory(stack.database_url), stack.org_id, "rita")
    reviewer = TestClient(stack.client.app, headers={"Authorization": f"Bearer {secret}"})
    decided = reviewer.post(f"/v1/reviews/{items[0]['id']}/decision",
                            json={"action": "edit", "text": "Dear customer, sadly no."})
    assert decided.status_code == 200, decided.text

    run = stack.wait_run(run_id)
    assert run["status"] == "succeeded", run
    assert run["outputs"]["approved"] == "Dear customer, sadly no."
    assert run["outputs"]["decision"] == "edit" and run["outputs"]["reviewer"] == "rita"


def test_a_node_with_side_effects_runs_once_only_when_allowed(stack: Stack) -> None:
    app_id = draft_app(stack, node("count", "test.count", database_url=stack.database_url))

    refused = try_node(stack, app_id, "count", {"value": 1})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "side_effects"]

    answer = try_node(stack, app_id, "count", {"value": {"n": 1}}, side_effects=True)
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "succeeded" and run["outputs"] == {"value": {"n": 1}}
    assert executions(stack.database_url, run["id"]) == {"count": 1}
    assert stack.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "all"}).json()["total"] == 1


def test_a_failing_node_test_fails_with_its_error_and_can_be_retried(stack: Stack, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    app_id = draft_app(stack, node("flaky", "test.count", database_url=stack.database_url,
                                   fail_until_file=str(gate)))
    failed = try_node(stack, app_id, "flaky", {"value": "x"}, side_effects=True).json()
    assert failed["status"] == "failed", failed
    assert "does not exist yet" in trace_of(failed, "flaky")["error"]

    gate.touch()
    retried = stack.client.post(f"/v1/runs/{failed['id']}/retry", params={"wait": 20})
    assert retried.status_code == 200, retried.text
    run = retried.json()
    assert run["status"] == "succeeded" and run["outputs"] == {"value": "x"}
    assert run["kind"] == "node_test" and run["test_node_id"] == "flaky" and run["retry_of"] == failed["id"]
    assert trace_of(run, "inputs")["reused"] and not trace_of(run, "flaky")["reused"]
    assert executions(stack.database_url, run["id"]) == {"flaky": 1}
