"""Direct runs: a published app whose nodes are all pure, started by a caller who waits (or, within
`MANTLE_DIRECT_RUN_S`, by one who does not), is run and recorded by the API itself
(`worker/direct.py`), on both stacks, with the record a worker would make."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.engine.blocks import executions
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, greeter_graph, node


def start(stack: Stack, app_id: str, inputs: dict[str, Any], **kwargs: Any) -> Any:
    return stack.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": inputs}, **kwargs)


def through(block_type: str, **config: Any) -> dict[str, Any]:
    """trigger → one node of `block_type` → output."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), node("mid", block_type, **config),
                  node("out", "output")],
        "edges": [edge("in", "text", "mid", "value"), edge("mid", "value", "out", "text")],
    }


def story(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """What happened to a run, as its event stream tells it (types and nodes, in order)."""
    return [(e["type"], e.get("node_id")) for e in events]


def handing_api(stack: Stack) -> TestClient:
    """The stack's API, as its organization, handing every run to a worker (MANTLE_DIRECT_RUN_S=0)."""
    return TestClient(create_app(stack.settings.model_copy(update={"direct_run_s": 0})),
                      headers=dict(stack.client.headers))


@pytest.fixture
def no_worker(stack: Stack) -> Iterator[None]:
    """The stack's run workers stopped for the test, and one started again after it."""
    for worker in stack.workers:
        worker.stop()
    stack.workers.clear()
    try:
        yield
    finally:
        stack.start_worker()


def test_a_pure_app_is_answered_with_no_worker_waited_for_or_not_and_the_rest_waits_for_one(
        stack: Stack, no_worker: None) -> None:
    greeter = stack.publish(greeter_graph(), name="greeter")
    counter = stack.publish(through("test.count", database_url=stack.database_url), name="counted")
    slow = stack.publish(through("test.pause", seconds=1.0), name="slow pure")

    handing = handing_api(stack)  # for a run through a worker to compare with

    answered = start(stack, greeter, {"name": "Ada"}, params={"wait": 10})
    unwaited = start(stack, greeter, {"name": "Grace"})
    queued = handing.post(f"/v1/apps/{greeter}/runs", json={"inputs": {"name": "Grace"}})
    impure = start(stack, counter, {"text": "once"}, params={"wait": 1})
    too_slow = start(stack, slow, {"text": "later"}, params={"wait": 1})
    slow_unwaited = start(stack, slow, {"text": "soon"})

    # Waited for or not, the pure app's run ended as it was started.
    for response, name in ((answered, "Ada"), (unwaited, "Grace")):
        assert response.status_code == 200, response.text
        run = response.json()
        assert run["status"] == "succeeded" and run["outputs"] == {"text": f"Hello, {name}!"}
        assert [n["status"] for n in run["trace"]] == ["succeeded"] * 3
        assert all(n["started_at"] and n["finished_at"] for n in run["trace"])
        # Nothing but the API can have run it: it is recorded in full, as a worker records a run.
        assert stack.get_run(run["id"]) == run
    # A node with side effects, a pure node slower than the step's slice (or, nobody waiting,
    # than MANTLE_DIRECT_RUN_S), an API told to hand runs over: each run is queued, whole.
    for response in (queued, impure, too_slow, slow_unwaited):
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "queued" and response.json()["outputs"] is None
    assert executions(stack.database_url, impure.json()["id"]) == {}

    stack.start_worker()
    assert stack.wait_run(queued.json()["id"])["outputs"] == {"text": "Hello, Grace!"}
    assert stack.wait_run(impure.json()["id"])["outputs"] == {"text": "once"}
    assert stack.wait_run(too_slow.json()["id"])["outputs"] == {"text": "later"}
    assert stack.wait_run(slow_unwaited.json()["id"])["outputs"] == {"text": "soon"}
    assert executions(stack.database_url, impure.json()["id"]) == {"mid": 1}
    # The same app's run through a worker tells the same story, event for event.
    assert story(stack.events(answered.json()["id"])) == story(stack.events(queued.json()["id"]))
    assert story(stack.events(unwaited.json()["id"])) == story(stack.events(queued.json()["id"]))


def test_a_failing_pure_node_is_recorded_with_its_error(stack: Stack) -> None:
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("divide", "text.template", template="{{ (text | length) / 0 }}"),
                  node("out", "output")],
        "edges": [edge("in", "text", "divide", "text"), edge("divide", "text", "out", "text")],
    }, name="divides by zero")

    response = start(stack, app_id, {"text": "abc"}, params={"wait": 10})

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "failed"
    failed = next(n for n in run["trace"] if n["node_id"] == "divide")
    assert failed["status"] == "failed" and "division by zero" in str(failed["error"])
    assert stack.events(run["id"])[-1]["type"] == "run_finished"


def test_a_direct_run_retried_with_its_idempotency_key_is_the_same_run(stack: Stack) -> None:
    app_id = stack.publish(greeter_graph(), name="idempotent greeter")
    key = {"Idempotency-Key": f"greet-{uuid.uuid4()}"}

    first = start(stack, app_id, {"name": "Ada"}, params={"wait": 10}, headers=key)
    again = start(stack, app_id, {"name": "Ada"}, params={"wait": 10}, headers=key)
    other = start(stack, app_id, {"name": "Bob"}, params={"wait": 10}, headers=key)

    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["outputs"] == {"text": "Hello, Ada!"}
    assert other.status_code == 409, other.text
    listed = stack.client.get(f"/v1/apps/{app_id}/runs").json()
    assert listed["total"] == 1


def test_a_webhook_that_responds_with_the_output_is_answered_by_the_api(stack: Stack,
                                                                        no_worker: None) -> None:
    app_id = stack.publish({
        "nodes": [node("in", "trigger.webhook", respond="output", wait_s=10),
                  node("hello", "text.template", template="Hello {{ body.text }}!"),
                  node("out", "output")],
        "edges": [edge("in", "body", "hello", "body"), edge("hello", "text", "out", "text")],
    }, name="hook")
    url = stack.client.post(f"/v1/apps/{app_id}/webhook").json()["url"]

    answer = stack.client.post(urlsplit(url).path, json={"text": "bench"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    assert answer.json()["outputs"] == {"text": "Hello bench!"}


def test_run_starts_take_turns_on_their_threads_and_reads_never_wait_for_them(stack: Stack) -> None:
    """With one run-start thread (`MANTLE_API_RUN_THREADS`), two slow pure runs started at once
    run one after the other, while a read answers at once: reads have their own threads."""
    slow = stack.publish(through("test.pause", seconds=2.5), name="slow pure, in the slice")
    earlier = start(stack, stack.publish(greeter_graph(), name="greeter"), {"name": "Ada"},
                    params={"wait": 10}).json()["id"]
    settings = stack.settings.model_copy(update={"api_run_threads": 1, "pure_step_s": 10.0})
    headers = dict(stack.client.headers)
    with TestClient(create_app(settings), headers=headers) as client, ThreadPoolExecutor(2) as pool:
        assert client.get(f"/v1/runs/{earlier}").status_code == 200  # the key is known from here on
        starts = [pool.submit(client.post, f"/v1/apps/{slow}/runs", params={"wait": 30},
                              json={"inputs": {"text": name}}) for name in ("first", "second")]
        read = client.get(f"/v1/runs/{earlier}")
        both_running = not any(start.done() for start in starts)
        answers = [start.result(timeout=60) for start in starts]

    assert read.status_code == 200 and both_running  # the read did not wait behind them
    runs = sorted((a.json() for a in answers), key=lambda run: at(run["created_at"]))
    assert [a.status_code for a in answers] == [200, 200]
    assert all(run["status"] == "succeeded" for run in runs)
    assert at(runs[1]["created_at"]) >= at(runs[0]["finished_at"])  # one after the other


def test_a_slow_pure_run_does_not_hold_up_the_api_while_it_serves_nothing_else(
        stack: Stack, tmp_path: Path) -> None:
    """A run the API expects to end at once, started while it serves no other request, starts on
    its event loop (`api/threads.py`); a slow one (here a pure node of 1 s, within a 10 s slice)
    goes back to a thread as soon as it overruns the loop's slice, so a read sent while it is
    running is answered before it ends, and the run still ends as a direct run, recorded once."""
    started = tmp_path / "started"
    slow = stack.publish(through("test.pause", seconds=1.0, started=str(started)), name="slow, known")
    earlier = start(stack, stack.publish(greeter_graph(), name="greeter"), {"name": "Ada"},
                    params={"wait": 10}).json()["id"]
    settings = stack.settings.model_copy(update={"pure_step_s": 10.0})
    with TestClient(create_app(settings), headers=dict(stack.client.headers)) as client, \
            ThreadPoolExecutor(1) as pool:
        def slow_run(text: str) -> Any:
            return client.post(f"/v1/apps/{slow}/runs", params={"wait": 30}, json={"inputs": {"text": text}})

        first = slow_run("first")  # from here on this API knows the app's version
        started.unlink()
        second = pool.submit(slow_run, "second")
        wait_until(started.exists, what="the slow node to start")
        read = client.get(f"/v1/runs/{earlier}")
        running_still = not second.done()
        answer = second.result(timeout=60)

    assert read.status_code == 200 and running_still  # answered while the slow run ran
    assert [first.status_code, answer.status_code] == [200, 200]
    assert answer.json()["status"] == "succeeded" and answer.json()["outputs"] == {"text": "second"}
    assert stack.get_run(answer.json()["id"]) == answer.json()
    runs = stack.client.get(f"/v1/apps/{slow}/runs").json()["items"]
    assert sorted(run["id"] for run in runs) == sorted(r.json()["id"] for r in (first, answer))  # none twice


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def publish_titled_greeter(stack: Stack, app: str) -> None:
    """Publish the greeter's next version: it greets differently, and also takes a `title` (optional)."""
    graph = greeter_graph()
    graph["nodes"][0] = node("in", "trigger.api", fields=[{"name": "name", "type": "string"},
                                                          {"name": "title", "required": False}])
    graph["nodes"][1] = node("greet", "text.template", template="Hi, {{ title or 'you' }} {{ name }}.")
    graph["edges"].append(edge("in", "title", "greet", "title"))
    assert stack.client.put(f"/v1/apps/{app}/draft", json=graph).status_code == 200
    assert stack.client.post(f"/v1/apps/{app}/publish").status_code == 201


def test_a_new_version_is_run_as_soon_as_it_is_published_and_a_deleted_app_runs_nothing(
        stack: Stack) -> None:
    """The API remembers each app's latest version and, on PostgreSQL, starts a waited-for pure run
    on it without looking it up first, checking it in the round trip that records the run
    (`Submitter._on_known_version`). Publishing or deleting must still show at the very next run."""
    app = stack.publish(greeter_graph(), name="versions")
    first = start(stack, app, {"name": "Ada"}, params={"wait": 10})
    remembered = start(stack, app, {"name": "Alan"}, params={"wait": 10})
    assert [r.status_code for r in (first, remembered)] == [200, 200]
    assert remembered.json()["outputs"] == {"text": "Hello, Alan!"}
    assert stack.get_run(remembered.json()["id"]) == remembered.json()  # recorded as it answered

    publish_titled_greeter(stack, app)

    second = start(stack, app, {"name": "Grace"}, params={"wait": 10})
    assert second.status_code == 200, second.text
    assert second.json()["version_number"] == 2 and second.json()["outputs"] == {"text": "Hi, you Grace."}
    # Inputs only version 2 takes: judged by its trigger, not by the version remembered before.
    titled = start(stack, app, {"name": "Hopper", "title": "Dr"}, params={"wait": 10})
    assert titled.status_code == 200 and titled.json()["outputs"] == {"text": "Hi, Dr Hopper."}, titled.text
    # Each answered request made one run, none made two.
    runs = stack.client.get(f"/v1/apps/{app}/runs").json()["items"]
    answered = (first, remembered, second, titled)
    assert sorted(r["id"] for r in runs) == sorted(r.json()["id"] for r in answered)
    assert stack.get_run(second.json()["id"]) == second.json()

    assert stack.client.delete(f"/v1/apps/{app}").status_code == 204
    gone = start(stack, app, {"who": "Grace"}, params={"wait": 10})
    assert gone.status_code == 404, gone.text


def test_a_remembered_pure_app_whose_new_version_is_not_pure_hands_the_next_run_to_a_worker(
        stack: Stack, no_worker: None) -> None:
    """The API remembers the app's version as pure, so it expects the next run to end where it
    starts (on its event loop, when it serves nothing else: `api/threads.py`). A version with a
    node that has side effects was published meanwhile: that run is recorded queued on the new
    version and handed to a worker at once (a worker without the reaper, which would otherwise
    find it later, runs it), once."""
    app = stack.publish(through("test.pause", seconds=0), name="pure, then not")
    assert [start(stack, app, {"text": t}, params={"wait": 10}).status_code for t in "ab"] == [200, 200]
    counted = through("test.count", database_url=stack.database_url)
    assert stack.client.put(f"/v1/apps/{app}/draft", json=counted).status_code == 200
    assert stack.client.post(f"/v1/apps/{app}/publish").status_code == 201

    queued = start(stack, app, {"text": "counted"}, params={"wait": 0.2})
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued" and queued.json()["version_number"] == 2
    worker = stack.start_worker(beat=False)
    try:
        ended = stack.wait_run(queued.json()["id"])
    finally:
        worker.stop()
        stack.workers.remove(worker)
    assert ended["status"] == "succeeded" and ended["outputs"] == {"text": "counted"}
    assert executions(stack.database_url, queued.json()["id"]) == {"mid": 1}


def test_a_queued_run_starts_on_the_version_just_published_and_a_deleted_app_queues_nothing(
        stack: Stack) -> None:
    """Runs handed to a worker take the same short cut on PostgreSQL: a run of the version this API
    process remembers is recorded queued, with the check that it is still the latest, in the round
    trip that commits it (`Submitter._on_known_version`). A worker then runs it as any other. (The
    API here hands every run over, `MANTLE_DIRECT_RUN_S=0`, as it does any run with an impure node.)"""
    app = stack.publish(greeter_graph(), name="queued versions")
    client = handing_api(stack)

    def handed(app_id: str, inputs: dict[str, Any]) -> Any:
        return client.post(f"/v1/apps/{app_id}/runs", json={"inputs": inputs})

    first, remembered = handed(app, {"name": "Ada"}), handed(app, {"name": "Alan"})
    assert [r.status_code for r in (first, remembered)] == [202, 202]
    assert remembered.json()["status"] == "queued" and remembered.json()["version_number"] == 1
    assert stack.wait_run(remembered.json()["id"])["outputs"] == {"text": "Hello, Alan!"}

    publish_titled_greeter(stack, app)

    second = handed(app, {"name": "Grace"})
    titled = handed(app, {"name": "Hopper", "title": "Dr"})  # inputs only version 2 takes
    assert [r.status_code for r in (second, titled)] == [202, 202], titled.text
    assert [r.json()["version_number"] for r in (second, titled)] == [2, 2]
    assert stack.wait_run(second.json()["id"])["outputs"] == {"text": "Hi, you Grace."}
    ended = stack.wait_run(titled.json()["id"])
    assert ended["status"] == "succeeded" and ended["outputs"] == {"text": "Hi, Dr Hopper."}
    assert ended["created_at"] == titled.json()["created_at"]  # recorded as it answered
    runs = stack.client.get(f"/v1/apps/{app}/runs").json()["items"]
    answered = (first, remembered, second, titled)
    assert sorted(r["id"] for r in runs) == sorted(r.json()["id"] for r in answered)

    assert stack.client.delete(f"/v1/apps/{app}").status_code == 204
    gone = handed(app, {"name": "Grace"})
    assert gone.status_code == 404, gone.text
