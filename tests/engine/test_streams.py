"""Following a run through the builder API with a real worker: `wait` and the event stream."""

from __future__ import annotations

import json

from tests.engine.conftest import Stack
from tests.factories import greeter_graph


def test_wait_returns_the_finished_run_and_the_stream_replays_its_events(stack: Stack) -> None:
    app_id = stack.publish(greeter_graph(), name="Greeter")
    response = stack.client.post(f"/v1/apps/{app_id}/runs", params={"wait": 20},
                                 json={"inputs": {"name": "Ada"}})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "succeeded" and run["outputs"] == {"text": "Hello, Ada!"}

    with stack.client.stream("GET", f"/v1/runs/{run['id']}/events") as stream:
        text = "".join(stream.iter_text())
    events = [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and "node_finished" in kinds
    assert events[-1]["data"]["outputs"] == {"text": "Hello, Ada!"}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    with stack.client.stream("GET", f"/v1/runs/{run['id']}/events",
                             headers={"Last-Event-ID": str(events[-2]["id"])}) as stream:
        rest = [line for line in "".join(stream.iter_text()).splitlines() if line.startswith("event: ")]
    assert rest == ["event: run_finished"]
