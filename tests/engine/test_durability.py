"""Runs survive a worker killed mid-way: each node executes once, the run still succeeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.blocks import executions
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, node


def chain(database_url: str, hold_file: str) -> dict[str, Any]:
    """trigger → count a → count b (holds until a file exists) → count c → output."""
    return {
        "nodes": [
            node("in", "trigger.api", fields=[{"name": "text"}]),
            node("a", "test.count", database_url=database_url),
            node("b", "test.count", database_url=database_url, hold_file=hold_file),
            node("c", "test.count", database_url=database_url),
            node("out", "output"),
        ],
        "edges": [edge("in", "text", "a", "value"), edge("a", "value", "b", "value"),
                  edge("b", "value", "c", "value"), edge("c", "value", "out", "text")],
    }


def test_quick_run_answers_synchronously(stack: Stack) -> None:
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                  node("t", "text.template", template="Hi {{ name }}"), node("out", "output")],
        "edges": [edge("in", "name", "t", "name"), edge("t", "text", "out", "text")],
    })
    response = stack.client.post(f"/v1/apps/{app_id}/runs", json={"inputs": {"name": "Ada"}},
                                 params={"wait": 20})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == {"text": "Hi Ada"}


def test_worker_killed_mid_run_resumes_without_repeating_nodes(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release-b"
    app_id = stack.publish(chain(stack.database_url, str(hold)), name="durable")
    run_id = stack.run(app_id, {"text": "hello"})["id"]

    # Node b is running on the worker, which holds no lock while it runs.
    wait_until(lambda: executions(stack.database_url, run_id).get("a") == 1
               and next(n for n in stack.get_run(run_id)["trace"] if n["node_id"] == "b")["status"]
               == "running", what="node b to be running")
    victim = stack.workers[-1]
    victim.kill()

    hold.touch()  # b may finish now, but only a new worker can run it
    stack.start_worker()
    run = stack.wait_run(run_id)

    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"text": "hello"}
    counts = executions(stack.database_url, run_id)
    assert counts["a"] == 1 and counts["c"] == 1, counts  # completed nodes never ran twice
    assert counts.get("b", 0) == 1, counts  # b's interrupted attempt never recorded a count
    trace = {n["node_id"]: n for n in run["trace"]}
    assert all(n["status"] == "succeeded" for n in trace.values())


def test_a_waiting_timer_survives_its_worker_killed(stack: Stack) -> None:
    # The timer is a due time on the node and the run's `wake_at`, not only a delayed message:
    # the killed worker took its prefetched wake-up message with it (the folder broker loses it,
    # Redis would hide it for an hour), so only the reaper of the next worker can bring it back.
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("pause", "flow.wait", seconds=2), node("out", "output")],
        "edges": [edge("in", "text", "pause", "value"), edge("pause", "value", "out", "text")],
    }, name="timer")
    run_id = stack.run(app_id, {"text": "still here"})["id"]
    waiting = stack.wait_run(run_id, ("waiting",))
    pause = next(n for n in waiting["trace"] if n["node_id"] == "pause")
    assert (pause["status"], pause["waiting_for"]) == ("waiting", "timer")

    stack.workers[-1].kill()
    stack.start_worker()
    run = stack.wait_run(run_id)

    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"text": "still here"}
