"""What the builder's node-test, retry and re-run routes refuse, and how they say why: every
problem is a 4xx naming the node, port or status, never a 500 (no worker runs here: these are
the answers given before anything is queued; tests/engine/ runs them for real)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.orgs import Role
from tests.conftest import Tenant, make_tenant
from tests.factories import edge, node
from tests.integration.test_auth_and_tenancy import assert_error_shape, new_key


def workshop() -> dict[str, Any]:
    """A draft with one node of each kind the route treats differently (only `t` is wired)."""
    return {
        "nodes": [
            node("in", "trigger.api", fields=[{"name": "name"}]),
            node("t", "text.template", template="Hi {{ name }}, {{ count }}"),
            node("cond", "logic.condition"),
            node("sms", "twilio.sms_output"),
            node("get", "http.request", url="https://example.com/{{ path }}"),
            node("post", "http.request", url="https://example.com/items", method="POST"),
            node("review", "human.review"),
            node("broken", "text.template", template="{{ unclosed"),
            node("out", "output"),
        ],
        "edges": [edge("in", "name", "t", "name"), edge("t", "text", "out", "text")],
    }


@pytest.fixture
def app_id(tenant: Tenant) -> str:
    created = tenant.client.post("/v1/apps", json={"name": "Workshop", "graph": workshop()})
    assert created.status_code == 201, created.text
    found: str = created.json()["id"]
    return found


def try_node(tenant: Tenant, app_id: str, node_id: str, inputs: dict[str, Any], **body: Any) -> Any:
    return tenant.client.post(f"/v1/apps/{app_id}/draft/nodes/{node_id}/test",
                              json={"inputs": inputs, **body})


def refusal(answer: Any, status: int) -> dict[str, Any]:
    """The first error of a refused request, after checking its status and shape."""
    assert answer.status_code == status, answer.text
    assert_error_shape(answer.json())
    first: dict[str, Any] = answer.json()["detail"][0]
    return first


def test_a_node_test_is_queued_as_a_run_of_kind_node_test(tenant: Tenant, app_id: str) -> None:
    answer = try_node(tenant, app_id, "t", {"name": "Ada", "count": 3})
    assert answer.status_code == 202, answer.text
    run = answer.json()
    assert (run["kind"], run["test_node_id"], run["draft"], run["inputs"]) == (
        "node_test", "t", True, {"name": "Ada", "count": 3})
    assert [(n["node_id"], n["block_type"]) for n in run["trace"]] == [("inputs", "trigger.api"),
                                                                       ("t", "text.template")]
    assert tenant.client.get(f"/v1/runs/{run['id']}").json()["kind"] == "node_test"


def test_unknown_node_is_404_and_trigger_is_refused(tenant: Tenant, app_id: str) -> None:
    missing = refusal(try_node(tenant, app_id, "nope", {}), 404)
    assert "nope" in missing["msg"] and missing["loc"] == ["path", "node_id"]
    trigger = refusal(try_node(tenant, app_id, "in", {"name": "Ada"}), 422)
    assert "trigger" in trigger["msg"] and trigger["loc"] == ["path", "node_id"]


def test_missing_unknown_and_mistyped_inputs_name_their_port(tenant: Tenant, app_id: str) -> None:
    missing = refusal(try_node(tenant, app_id, "t", {"name": "Ada"}), 422)
    assert missing["loc"] == ["body", "inputs", "count"] and "required input 'count'" in missing["msg"]

    unknown = refusal(try_node(tenant, app_id, "t", {"name": "Ada", "count": 1, "colour": "red"}), 422)
    assert unknown["loc"] == ["body", "inputs", "colour"] and "count (any), name (any)" in unknown["msg"]

    answer = try_node(tenant, app_id, "sms", {"to": 5551234, "body": ["not", "text"]}, side_effects=True)
    assert {tuple(e["loc"]) for e in answer.json()["detail"]} == {("body", "inputs", "to"),
                                                                  ("body", "inputs", "body")}
    assert answer.status_code == 422

    assert refusal(try_node(tenant, app_id, "cond", {}), 422)["loc"] == ["body", "inputs", "value"]
    bad_body = tenant.client.post(f"/v1/apps/{app_id}/draft/nodes/t/test", json={"inputs": [1, 2]})
    assert refusal(bad_body, 422)["loc"] == ["body", "inputs"]


def test_a_node_whose_config_is_invalid_names_the_problem(tenant: Tenant, app_id: str) -> None:
    problem = refusal(try_node(tenant, app_id, "broken", {}), 422)
    assert problem["node_id"] == "broken" and problem["type"] == "graph.invalid_config"


def test_side_effects_are_refused_unless_asked_for(tenant: Tenant, app_id: str) -> None:
    sms = {"to": "+15550001111", "body": "hello"}
    for node_id, inputs in (("sms", sms), ("post", {})):
        refused = refusal(try_node(tenant, app_id, node_id, inputs), 422)
        assert refused["loc"] == ["body", "side_effects"] and node_id in refused["msg"]
        assert refused["type"] == "side_effects_refused"
        assert try_node(tenant, app_id, node_id, inputs, side_effects=True).status_code == 202
    # A GET only reads: it needs no permission.
    assert try_node(tenant, app_id, "get", {"path": "a"}).status_code == 202
    assert try_node(tenant, app_id, "review", {"text": "hi"}).status_code == 202


def test_inputs_over_the_size_limit_are_413(tenant: Tenant, app_id: str) -> None:
    limit = tenant.client.app.state.settings.max_input_bytes  # type: ignore[attr-defined]
    answer = try_node(tenant, app_id, "t", {"name": "x" * limit, "count": 1})
    assert refusal(answer, 413)["loc"] == ["body", "inputs"]


def test_node_tests_stay_out_of_the_run_list_unless_asked_for(tenant: Tenant, app_id: str) -> None:
    tested = try_node(tenant, app_id, "t", {"name": "Ada", "count": 1}).json()
    ran = tenant.client.post(f"/v1/apps/{app_id}/draft/runs", json={"inputs": {"name": "Ada"}})
    # The draft has unwired required inputs: its own run is refused, the node test was not.
    assert ran.status_code == 422
    listed = tenant.client.get(f"/v1/apps/{app_id}/runs")
    assert listed.json()["total"] == 0
    tests = tenant.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "node_test"}).json()
    assert [r["id"] for r in tests["items"]] == [tested["id"]]
    assert tenant.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "nothing"}).status_code == 422


def test_retry_and_rerun_answer_409_naming_the_status(tenant: Tenant, app_id: str) -> None:
    queued = try_node(tenant, app_id, "t", {"name": "Ada", "count": 1}).json()
    for action in ("retry", "rerun"):
        conflict = refusal(tenant.client.post(f"/v1/runs/{queued['id']}/{action}"), 409)
        assert "queued" in conflict["msg"], conflict

    cancelled = tenant.client.post(f"/v1/runs/{queued['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    conflict = refusal(tenant.client.post(f"/v1/runs/{queued['id']}/retry"), 409)
    assert "only a failed run" in conflict["msg"] and "cancelled" in conflict["msg"]

    again = tenant.client.post(f"/v1/runs/{queued['id']}/rerun")
    assert again.status_code == 202, again.text
    body = again.json()
    assert (body["rerun_of"], body["retry_of"], body["kind"], body["inputs"]) == (
        queued["id"], None, "node_test", {"name": "Ada", "count": 1})
    assert refusal(tenant.client.post(f"/v1/runs/{uuid.uuid4()}/retry"), 404)["loc"] == ["run_id"]


def test_the_same_idempotency_key_gives_the_same_rerun(tenant: Tenant, app_id: str) -> None:
    run_id = try_node(tenant, app_id, "t", {"name": "Ada", "count": 1}).json()["id"]
    assert tenant.client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    key = {"Idempotency-Key": f"rerun-{uuid.uuid4()}"}
    first = tenant.client.post(f"/v1/runs/{run_id}/rerun", headers=key)
    second = tenant.client.post(f"/v1/runs/{run_id}/rerun", headers=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = tenant.client.post(f"/v1/runs/{first.json()['id']}/rerun", headers=key)
    assert "different request" in refusal(other, 409)["msg"]


def test_reviewers_may_not_test_retry_or_rerun(tenant: Tenant, app_id: str) -> None:
    run_id = try_node(tenant, app_id, "t", {"name": "Ada", "count": 1}).json()["id"]
    _, reviewer = new_key(tenant, "rita", Role.reviewer)
    assert reviewer.post(f"/v1/apps/{app_id}/draft/nodes/t/test",
                         json={"inputs": {"name": "Ada", "count": 1}}).status_code == 403
    for action in ("retry", "rerun"):
        assert reviewer.post(f"/v1/runs/{run_id}/{action}").status_code == 403


def test_another_organization_sees_404(sessions: sessionmaker[Session], tenant: Tenant, app_id: str) -> None:
    run_id = try_node(tenant, app_id, "t", {"name": "Ada", "count": 1}).json()["id"]
    assert tenant.client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    intruder = make_tenant(sessions, tenant.client, "intruder")
    answer = intruder.client.post(f"/v1/apps/{app_id}/draft/nodes/t/test",
                                  json={"inputs": {"name": "Ada", "count": 1}})
    assert refusal(answer, 404)["msg"] == "app not found"
    for action in ("retry", "rerun"):
        assert refusal(intruder.client.post(f"/v1/runs/{run_id}/{action}"), 404)["loc"] == ["run_id"]
    assert tenant.client.get(f"/v1/apps/{app_id}/runs", params={"kind": "all"}).json()["total"] == 1


def test_a_run_shows_the_graph_it_ran_even_after_the_draft_changes(tenant: Tenant, app_id: str,
                                                                   other_tenant: Tenant) -> None:
    trigger = {**node("in", "trigger.api", fields=[{"name": "name"}]), "position": {"x": 10, "y": 20}}
    graph = {"nodes": [trigger, node("t", "text.template", template="Hi {{ name }}"), node("out", "output")],
             "edges": [edge("in", "name", "t", "name"), edge("t", "text", "out", "text")]}
    created = tenant.client.post("/v1/apps", json={"name": "Greeter", "graph": graph}).json()
    draft_run = tenant.client.post(f"/v1/apps/{created['id']}/draft/runs", json={"inputs": {"name": "Ada"}})
    assert draft_run.status_code == 202, draft_run.text
    assert tenant.client.post(f"/v1/apps/{created['id']}/publish").status_code == 201
    version_run = tenant.client.post(f"/v1/apps/{created['id']}/runs", json={"inputs": {"name": "Ada"}})
    changed = {**graph, "nodes": graph["nodes"][:1]}
    assert tenant.client.put(f"/v1/apps/{created['id']}/draft", json=changed).status_code == 200

    drawn = tenant.client.get(f"/v1/runs/{draft_run.json()['id']}/graph").json()
    assert (drawn["draft"], drawn["version_number"]) == (True, None)
    assert [n["id"] for n in drawn["graph"]["nodes"]] == ["in", "t", "out"]
    assert drawn["graph"]["nodes"][0]["position"] == {"x": 10, "y": 20}
    published = tenant.client.get(f"/v1/runs/{version_run.json()['id']}/graph").json()
    assert (published["draft"], published["version_number"]) == (False, 1)
    assert len(published["graph"]["edges"]) == 2

    tested = try_node(tenant, app_id, "t", {"name": "Ada", "count": 1}).json()
    alone = tenant.client.get(f"/v1/runs/{tested['id']}/graph").json()["graph"]
    assert [n["id"] for n in alone["nodes"]] == ["inputs", "t"]

    assert refusal(other_tenant.client.get(f"/v1/runs/{tested['id']}/graph"), 404)["loc"] == ["run_id"]
