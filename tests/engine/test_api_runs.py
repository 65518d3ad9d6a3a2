"""The run API with a real worker behind it: what a caller sees when starting, waiting for,
reading, listing, cancelling and following runs, and where it draws its limits."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.engine.blocks import executions
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, greeter_graph, node


def runs_of(stack: Stack, app_id: str, **params: Any) -> dict[str, Any]:
    """The app's run list as the API pages it."""
    response = stack.client.get(f"/v1/apps/{app_id}/runs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def start(stack: Stack, app_id: str, inputs: dict[str, Any], **kwargs: Any) -> Any:
    """POST a run; the raw response."""
    return stack.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": inputs}, **kwargs)


def create_draft(stack: Stack, graph: dict[str, Any], name: str = "draft") -> str:
    """An app that has a draft and no published version."""
    created = stack.client.post("/v1/apps", json={"name": name, "graph": graph})
    assert created.status_code == 201, created.text
    app_id: str = created.json()["id"]
    return app_id


def save_draft(stack: Stack, app_id: str, graph: dict[str, Any]) -> None:
    response = stack.client.put(f"/v1/apps/{app_id}/draft", json=graph)
    assert response.status_code == 200, response.text


def greeter(template: str) -> dict[str, Any]:
    graph = greeter_graph()
    graph["nodes"][1]["config"]["template"] = template
    return graph


def typed_inputs_graph() -> dict[str, Any]:
    """A trigger with a required string, a required integer and an optional note."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "name", "type": "string"},
                                                     {"name": "age", "type": "integer"},
                                                     {"name": "note", "required": False}]),
                  node("t", "text.template", template="{{ name }} is {{ age }}"), node("out", "output")],
        "edges": [edge("in", "name", "t", "name"), edge("in", "age", "t", "age"),
                  edge("t", "text", "out", "text")],
    }


def external_graph() -> dict[str, Any]:
    """trigger → test.external (waits for a result from outside) → output."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), node("ext", "test.external"),
                  node("out", "output")],
        "edges": [edge("in", "text", "ext", "value"), edge("ext", "value", "out", "text")],
    }


# -- starting and waiting ----------------------------------------------------------------


def test_a_run_is_accepted_at_once_and_completes_later(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release"
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("slow", "test.count", database_url=stack.database_url, hold_file=str(hold)),
                  node("out", "output")],
        "edges": [edge("in", "text", "slow", "value"), edge("slow", "value", "out", "text")],
    }, name="slow")

    response = start(stack, app_id, {"text": "later"})

    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] in ("queued", "running") and run["outputs"] is None
    assert response.headers["Location"] == f"/v1/runs/{run['id']}"
    hold.touch()
    done = stack.wait_run(run["id"])
    assert done["status"] == "succeeded" and done["outputs"] == {"text": "later"}


def test_wait_answers_200_with_the_outputs_and_is_capped_at_30_seconds(stack: Stack) -> None:
    app_id = stack.publish(greeter_graph(), name="greeter")

    response = start(stack, app_id, {"name": "Ada"}, params={"wait": 20})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    assert response.json()["outputs"] == {"text": "Hello, Ada!"}

    too_long = start(stack, app_id, {"name": "Ada"}, params={"wait": 31})
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["detail"][0]["loc"] == ["query", "wait"]
    assert runs_of(stack, app_id)["total"] == 1  # the refused request started nothing


def test_version_runs_an_older_published_version(stack: Stack) -> None:
    app_id = stack.publish(greeter("Hello, {{ name }}!"), name="versions")
    save_draft(stack, app_id, greeter("Goodbye, {{ name }}!"))
    assert stack.client.post(f"/v1/apps/{app_id}/publish").status_code == 201

    latest = start(stack, app_id, {"name": "Ada"}, params={"wait": 20})
    older = stack.client.post(f"/v1/apps/{app_id}/runs", params={"wait": 20},
                              json={"inputs": {"name": "Ada"}, "version": 1})
    missing = stack.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": "Ada"}, "version": 3})

    assert latest.status_code == 200 and older.status_code == 200, (latest.text, older.text)
    assert (latest.json()["version_number"], latest.json()["outputs"]) == (2, {"text": "Goodbye, Ada!"})
    assert (older.json()["version_number"], older.json()["outputs"]) == (1, {"text": "Hello, Ada!"})
    assert missing.status_code == 404, missing.text
    assert "version 3" in missing.json()["detail"][0]["msg"]


def test_a_retried_request_with_the_same_idempotency_key_starts_one_run(stack: Stack) -> None:
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("c", "test.count", database_url=stack.database_url), node("out", "output")],
        "edges": [edge("in", "text", "c", "value"), edge("c", "value", "out", "text")],
    }, name="idempotent")
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}

    first = start(stack, app_id, {"text": "pay once"}, headers=key, params={"wait": 20})
    retried = start(stack, app_id, {"text": "pay once"}, headers=key)
    changed = start(stack, app_id, {"text": "pay twice"}, headers=key)

    assert first.status_code == 200, first.text
    assert retried.status_code == 200, retried.text  # the first run, already finished
    assert retried.json()["id"] == first.json()["id"]
    assert retried.json()["outputs"] == {"text": "pay once"}
    assert changed.status_code == 409, changed.text
    assert changed.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert runs_of(stack, app_id)["total"] == 1
    assert executions(stack.database_url, first.json()["id"]) == {"c": 1}

    elsewhere = stack.publish(greeter_graph(), name="other app")
    reused = start(stack, elsewhere, {"name": "Ada"}, headers=key)
    assert reused.status_code == 409, reused.text  # a key names one request, not one per app
    assert runs_of(stack, elsewhere)["total"] == 0


def test_a_retry_is_matched_on_the_inputs_as_accepted_and_on_what_it_runs(stack: Stack) -> None:
    app_id = stack.publish(typed_inputs_graph(), name="typed retries")
    key = {"Idempotency-Key": f"typed-{uuid.uuid4()}"}

    # The stored inputs gain the optional field's default and the integer's coercion.
    first = start(stack, app_id, {"name": "Ada", "age": "36"}, headers=key, params={"wait": 20})
    retried = start(stack, app_id, {"name": "Ada", "age": "36"}, headers=key)
    assert first.status_code == 200, first.text
    assert first.json()["inputs"] == {"name": "Ada", "age": 36, "note": None}
    assert retried.status_code == 200, retried.text
    assert retried.json()["id"] == first.json()["id"]

    assert stack.client.post(f"/v1/apps/{app_id}/publish").status_code == 201
    latest = stack.client.post(f"/v1/apps/{app_id}/runs", headers=key,
                               json={"inputs": {"name": "Ada", "age": "36"}, "version": 1})
    other_version = stack.client.post(f"/v1/apps/{app_id}/runs", headers=key,
                                      json={"inputs": {"name": "Ada", "age": "36"}, "version": 2})
    as_draft = stack.client.post(f"/v1/apps/{app_id}/draft/runs", headers=key,
                                 json={"inputs": {"name": "Ada", "age": "36"}})
    assert latest.status_code == 200 and latest.json()["id"] == first.json()["id"], latest.text
    assert other_version.status_code == 409, other_version.text
    assert as_draft.status_code == 409, as_draft.text
    assert runs_of(stack, app_id)["total"] == 1


@pytest.mark.parametrize("wait", [0, 10], ids=["queued", "waited"])
def test_concurrent_requests_with_one_idempotency_key_start_one_run(stack: Stack, wait: float) -> None:
    # Waited for, a pure app's run is recorded by the API itself (worker/direct.py): the losers of
    # the race on the key hit the unique index in a pipeline, which answered 500 before.
    app_id = stack.publish(greeter_graph(), name="racing retries")
    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: start(stack, app_id, {"name": "Ada"}, headers=key,
                                                  params={"wait": wait}), range(6)))

    assert all(r.status_code in (200, 202) for r in responses), [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    run = stack.wait_run(responses[0].json()["id"])
    assert run["status"] == "succeeded" and runs_of(stack, app_id)["total"] == 1


# -- refused requests -----------------------------------------------------------------------


def test_inputs_that_do_not_match_the_trigger_fields_are_refused_naming_the_field(stack: Stack) -> None:
    app_id = stack.publish(typed_inputs_graph(), name="typed")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"age": 36}, "name", "missing"),
        ({"name": "Ada", "age": 36, "nickname": "A"}, "nickname", "extra_forbidden"),
        ({"name": "Ada", "age": "old"}, "age", "int_parsing"),
    ]
    for inputs, field_name, error_type in cases:
        response = start(stack, app_id, inputs)
        assert response.status_code == 422, (inputs, response.text)
        problems = response.json()["detail"]
        assert [p["loc"] for p in problems] == [["body", "inputs", field_name]], problems
        assert problems[0]["type"] == error_type, problems
    assert runs_of(stack, app_id)["total"] == 0

    accepted = start(stack, app_id, {"name": "Ada", "age": "36"}, params={"wait": 20})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["inputs"] == {"name": "Ada", "age": 36, "note": None}
    assert accepted.json()["outputs"] == {"text": "Ada is 36"}


def test_inputs_over_the_size_limit_are_refused_with_413(stack: Stack) -> None:
    app_id = stack.publish(greeter_graph(), name="big inputs")
    limit = stack.settings.max_input_bytes

    response = start(stack, app_id, {"name": "x" * (limit + 1)})

    assert response.status_code == 413, response.text
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "inputs"] and str(limit) in problem["msg"]
    assert runs_of(stack, app_id)["total"] == 0


def test_an_app_without_a_published_version_cannot_be_run(stack: Stack) -> None:
    app_id = create_draft(stack, greeter_graph(), name="unpublished")

    response = start(stack, app_id, {"name": "Ada"})

    assert response.status_code == 404, response.text
    assert "published version" in response.json()["detail"][0]["msg"]
    assert start(stack, str(uuid.uuid4()), {"name": "Ada"}).status_code == 404


# -- draft runs --------------------------------------------------------------------------------


def test_a_draft_run_runs_the_current_draft_and_is_marked_draft(stack: Stack) -> None:
    app_id = create_draft(stack, greeter("Hi, {{ name }}!"), name="drafting")
    url = f"/v1/apps/{app_id}/draft/runs"

    first = stack.client.post(url, json={"inputs": {"name": "Ada"}}, params={"wait": 20})
    save_draft(stack, app_id, greeter("Hey, {{ name }}!"))
    second = stack.client.post(url, json={"inputs": {"name": "Ada"}}, params={"wait": 20})

    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert first.json()["draft"] is True and first.json()["version_number"] is None
    assert first.json()["outputs"] == {"text": "Hi, Ada!"}
    assert second.json()["outputs"] == {"text": "Hey, Ada!"}
    # A draft run keeps the graph it started with: its trace still reads the first draft.
    trace = {n["node_id"]: n for n in stack.get_run(first.json()["id"])["trace"]}
    assert trace["greet"]["outputs"] == {"text": "Hi, Ada!"}
    assert [r["draft"] for r in runs_of(stack, app_id)["items"]] == [True, True]


def test_a_draft_run_of_an_invalid_draft_is_refused_with_its_problems(stack: Stack) -> None:
    app_id = create_draft(stack, greeter_graph(), name="broken draft")
    broken = greeter_graph()
    broken["edges"][1] = edge("greet", "txt", "out", "text")
    save_draft(stack, app_id, broken)

    response = stack.client.post(f"/v1/apps/{app_id}/draft/runs", json={"inputs": {"name": "Ada"}})

    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["type"] == "graph.unknown_port" and p["node_id"] == "greet" and "txt" in p["msg"]
               for p in problems), problems
    assert runs_of(stack, app_id)["total"] == 0


# -- reading, listing, cancelling ---------------------------------------------------------------


def test_the_trace_has_one_entry_per_node_with_what_it_did(stack: Stack) -> None:
    app_id = stack.publish(greeter_graph(), name="traced")
    run_id = start(stack, app_id, {"name": "Ada"}, params={"wait": 20}).json()["id"]

    run = stack.get_run(run_id)

    assert run["status"] == "succeeded" and run["inputs"] == {"name": "Ada"}
    assert run["started_at"] and run["finished_at"] and run["duration_ms"] >= 0
    assert [(n["node_id"], n["block_type"]) for n in run["trace"]] == [
        ("in", "trigger.api"), ("greet", "text.template"), ("out", "output")]
    for entry in run["trace"]:
        assert entry["status"] == "succeeded" and entry["attempts"] == 1, entry
        started, finished = (datetime.fromisoformat(entry[k]) for k in ("started_at", "finished_at"))
        assert started <= finished and entry["duration_ms"] >= 0, entry
        assert entry["error"] is None, entry
    greet = run["trace"][1]
    assert greet["inputs"] == {"name": "Ada"} and greet["outputs"] == {"text": "Hello, Ada!"}
    assert run["trace"][2]["inputs"] == {"text": "Hello, Ada!"}


def test_waiting_runs_are_listed_by_status_cancelled_once_and_hidden_from_other_orgs(stack: Stack) -> None:
    app_id = stack.publish(external_graph(), name="external")
    kept = stack.run(app_id, {"text": "keep"})["id"]
    doomed = stack.run(app_id, {"text": "cancel"})["id"]
    waiting = stack.wait_run(doomed, ("waiting",))
    stack.wait_run(kept, ("waiting",))
    trace = {n["node_id"]: n for n in waiting["trace"]}
    assert trace["ext"]["status"] == "waiting" and trace["ext"]["waiting_for"] == "external"
    assert trace["out"]["status"] == "pending"

    stranger = {"Authorization": f"Bearer {stack.new_org_key()}"}
    assert stack.client.get(f"/v1/runs/{doomed}", headers=stranger).status_code == 404
    assert stack.client.post(f"/v1/runs/{doomed}/cancel", headers=stranger).status_code == 404
    assert stack.client.get(f"/v1/runs/{doomed}/events", headers=stranger).status_code == 404
    assert stack.client.get(f"/v1/apps/{app_id}/runs", headers=stranger).status_code == 404
    assert stack.get_run(doomed)["status"] == "waiting"  # the stranger changed nothing

    cancelled = stack.client.post(f"/v1/runs/{doomed}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["error"]["type"] == "cancelled"
    assert {n["node_id"]: n["status"] for n in cancelled.json()["trace"]} == {
        "in": "succeeded", "ext": "skipped", "out": "skipped"}
    again = stack.client.post(f"/v1/runs/{doomed}/cancel")
    assert again.status_code == 409, again.text
    assert "cancelled" in again.json()["detail"][0]["msg"]

    # A result arriving after the cancel changes nothing.
    line = stack.task_done(stack.send("runs.resume", doomed, "ext", {"answer": "too late"}))
    assert line.endswith(": False"), line
    assert stack.get_run(doomed)["status"] == "cancelled"

    assert [r["id"] for r in runs_of(stack, app_id, status="waiting")["items"]] == [kept]
    assert [r["id"] for r in runs_of(stack, app_id, status="cancelled")["items"]] == [doomed]
    assert runs_of(stack, app_id, status="succeeded")["total"] == 0
    assert runs_of(stack, app_id)["total"] == 2
    assert stack.client.get(f"/v1/apps/{app_id}/runs", params={"status": "paused"}).status_code == 422
    assert stack.client.post(f"/v1/runs/{kept}/cancel").status_code == 200


def test_cancelling_a_running_run_stops_what_comes_after(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release-a"
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("a", "test.count", database_url=stack.database_url, hold_file=str(hold)),
                  node("b", "test.count", database_url=stack.database_url), node("out", "output")],
        "edges": [edge("in", "text", "a", "value"), edge("a", "value", "b", "value"),
                  edge("b", "value", "out", "text")],
    }, name="cancel running")
    run_id = stack.run(app_id, {"text": "stop"})["id"]
    wait_until(lambda: {n["node_id"]: n["status"] for n in stack.get_run(run_id)["trace"]}["a"] == "running",
               what="a to be running")

    cancelled = stack.client.post(f"/v1/runs/{run_id}/cancel")
    hold.touch()  # a finishes on the worker after the cancel
    wait_until(lambda: executions(stack.database_url, run_id).get("a") == 1, what="a to finish")
    # The worker runs one task at a time: once this one is done, the run's own advance is too.
    stack.task_done(stack.send("runs.advance", run_id))

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    run = stack.get_run(run_id)
    assert run["status"] == "cancelled" and run["outputs"] is None
    assert {n["node_id"]: n["status"] for n in run["trace"]} == {
        "in": "succeeded", "a": "skipped", "b": "skipped", "out": "skipped"}
    assert executions(stack.database_url, run_id) == {"a": 1}  # b never ran
    assert [e["type"] for e in stack.events(run_id)].count("run_finished") == 1


# -- the event stream ------------------------------------------------------------------------


def test_the_event_stream_replays_a_finished_run_and_resumes_after_last_event_id(stack: Stack) -> None:
    app_id = stack.publish(greeter_graph(), name="streamed")
    run_id = start(stack, app_id, {"name": "Ada"}, params={"wait": 20}).json()["id"]

    events = stack.events(run_id)

    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and kinds.count("run_finished") == 1
    assert events[-1]["data"] == {"status": "succeeded", "outputs": {"text": "Hello, Ada!"}, "error": None}
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    for node_id in ("in", "greet", "out"):
        mine = [(e["type"], e["data"].get("status")) for e in events if e["node_id"] == node_id]
        assert mine == [("node_started", None), ("node_finished", "succeeded")], (node_id, mine)

    middle = len(events) // 2
    rest = stack.events(run_id, last_event_id=events[middle]["id"])
    assert rest == events[middle + 1:]
    assert stack.events(run_id, last_event_id=events[-1]["id"]) == []


# -- limits ------------------------------------------------------------------------------------


def amplifier(template: str) -> dict[str, Any]:
    """trigger(text) → a template that repeats it → output."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("big", "text.template", template=template), node("out", "output")],
        "edges": [edge("in", "text", "big", "text"), edge("big", "text", "out", "text")],
    }


def test_outputs_over_the_value_limit_fail_the_node_and_the_worker_carries_on(stack: Stack) -> None:
    # Under the template's own limit (a million characters) but over the value limit once stored:
    # 600,000 "é" are 3.6 MB as JSON text (each one escaped as \u00e9).
    template = "{% for _ in range(300) %}{{ text * 1000 }}{% endfor %}"
    app_id = stack.publish(amplifier(template), name="too big")

    failed = start(stack, app_id, {"text": "éé"}, params={"wait": 20})
    fine = start(stack, app_id, {"text": "x"}, params={"wait": 20})

    assert failed.status_code == 200, failed.text
    run = failed.json()
    assert run["status"] == "failed" and run["outputs"] is None
    assert run["error"]["type"] == "node_failed" and run["error"]["node_id"] == "big"
    assert "outputs are 3600011 bytes; the limit is 1048576" in run["error"]["message"]
    trace = {n["node_id"]: n for n in run["trace"]}
    assert trace["big"]["status"] == "failed" and trace["big"]["outputs"] is None
    assert "the limit is 1048576" in trace["big"]["error"]
    assert trace["out"]["status"] == "skipped"
    assert fine.status_code == 200, fine.text
    assert fine.json()["status"] == "succeeded" and len(fine.json()["outputs"]["text"]) == 300_000


def test_a_deferred_result_over_the_value_limit_fails_the_node(stack: Stack) -> None:
    app_id = stack.publish(external_graph(), name="huge answer")
    run_id = stack.run(app_id, {"text": "say a lot"})["id"]
    stack.wait_run(run_id, ("waiting",))

    stack.send("runs.resume", run_id, "ext", {"answer": "x" * 1_200_000})
    run = stack.wait_run(run_id)

    assert run["status"] == "failed" and run["outputs"] is None
    assert run["error"]["node_id"] == "ext" and "the limit is 1048576" in run["error"]["message"]
    assert next(n for n in run["trace"] if n["node_id"] == "ext")["outputs"] is None


def test_large_values_are_truncated_in_the_trace_but_not_in_the_outputs(stack: Stack) -> None:
    app_id = stack.publish(amplifier("{{ text * 20000 }}"), name="large")

    run = start(stack, app_id, {"text": "abc"}, params={"wait": 20}).json()

    assert run["status"] == "succeeded" and run["outputs"] == {"text": "abc" * 20000}
    trace = {n["node_id"]: n for n in run["trace"]}
    shown = trace["big"]["outputs"]
    assert shown["_truncated"] is True and shown["bytes"] == len('{"text":""}') + 60000
    assert shown["preview"].startswith('{"text":"abcabc') and len(shown["preview"]) <= 1000
    assert trace["big"]["inputs"] == {"text": "abc"}  # small values are shown whole
    assert trace["out"]["inputs"]["_truncated"] is True
    assert stack.get_run(run["id"])["trace"][1]["outputs"] == shown
