"""Retrying a failed run from its failed node, and re-running an ended one, through real workers:
what succeeded is reused and never executed again, the rest runs, and a worker killed in the
middle of a retry changes nothing a user sees (each node once, one end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.blocks import executions
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, node


def gated_chain(stack: Stack, gate: Path, hold: Path | None = None) -> dict[str, Any]:
    """trigger → count a → count b (fails until `gate` exists) → count c (holds until `hold`) → output."""
    url = stack.database_url
    return {
        "nodes": [
            node("in", "trigger.api", fields=[{"name": "text"}]),
            node("a", "test.count", database_url=url),
            node("b", "test.count", database_url=url, fail_until_file=str(gate)),
            node("c", "test.count", database_url=url, hold_file=str(hold or "")),
            node("out", "output"),
        ],
        "edges": [edge("in", "text", "a", "value"), edge("a", "value", "b", "value"),
                  edge("b", "value", "c", "value"), edge("c", "value", "out", "text")],
    }


def failed_run(stack: Stack, graph: dict[str, Any]) -> dict[str, Any]:
    """A run of the published `graph` that failed."""
    run = stack.wait_run(stack.run(stack.publish(graph, name="gated"), {"text": "hello"})["id"])
    assert run["status"] == "failed" and run["error"]["node_id"] == "b", run
    return run


def trace(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node_id"]: n for n in run["trace"]}


def test_retry_reuses_what_succeeded_and_runs_from_the_failed_node(stack: Stack, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    failed = failed_run(stack, gated_chain(stack, gate))
    assert executions(stack.database_url, failed["id"]) == {"a": 1, "b": 1}

    gate.touch()
    answer = stack.client.post(f"/v1/runs/{failed['id']}/retry", params={"wait": 20})
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "succeeded" and run["outputs"] == {"text": "hello"}, run
    assert run["retry_of"] == failed["id"] and run["rerun_of"] is None
    assert run["version_number"] == failed["version_number"] and run["inputs"] == failed["inputs"]
    nodes = trace(run)
    assert {n: nodes[n]["reused"] for n in nodes} == {"in": True, "a": True, "b": False, "c": False,
                                                      "out": False}
    assert nodes["a"]["outputs"] == {"value": "hello"} and nodes["a"]["attempts"] == 0
    assert all(n["status"] == "succeeded" for n in nodes.values())
    # Reused nodes were not executed again; the failed one and those after it ran once.
    assert executions(stack.database_url, run["id"]) == {"b": 1, "c": 1}
    assert executions(stack.database_url, failed["id"]) == {"a": 1, "b": 1}

    events = stack.events(run["id"])
    reused = [(e["node_id"], e["data"]) for e in events if e["data"].get("reused")]
    assert reused == [("in", {"status": "succeeded", "reused": True, "from_run": failed["id"]}),
                      ("a", {"status": "succeeded", "reused": True, "from_run": failed["id"]})]
    assert [e["data"]["status"] for e in events if e["type"] == "run_finished"] == ["succeeded"]

    # The retried run keeps its own record; the retry is a run like any other in the list.
    assert stack.get_run(failed["id"])["status"] == "failed"
    again = stack.client.post(f"/v1/runs/{run['id']}/retry")
    assert again.status_code == 409 and "succeeded" in again.text


def test_rerun_executes_every_node_again(stack: Stack, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    failed = failed_run(stack, gated_chain(stack, gate))
    gate.touch()
    answer = stack.client.post(f"/v1/runs/{failed['id']}/rerun", params={"wait": 20})
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "succeeded" and run["rerun_of"] == failed["id"] and run["retry_of"] is None
    assert not any(n["reused"] for n in run["trace"])
    assert executions(stack.database_url, run["id"]) == {"a": 1, "b": 1, "c": 1}

    # A succeeded run can be re-run too, and the new run says which one it repeats.
    second = stack.client.post(f"/v1/runs/{run['id']}/rerun", params={"wait": 20}).json()
    assert second["status"] == "succeeded" and second["rerun_of"] == run["id"]


def test_a_draft_run_is_retried_on_the_draft_it_ran(stack: Stack, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    created = stack.client.post("/v1/apps", json={"name": "draft", "graph": gated_chain(stack, gate)})
    app_id = created.json()["id"]
    failed = stack.client.post(f"/v1/apps/{app_id}/draft/runs", json={"inputs": {"text": "v1"}},
                               params={"wait": 20}).json()
    assert failed["status"] == "failed", failed
    # The draft changes after the run: the retry still runs the graph the failed run had.
    changed = gated_chain(stack, gate)
    changed["nodes"][2]["config"]["fail_until_file"] = str(tmp_path / "never")
    assert stack.client.put(f"/v1/apps/{app_id}/draft", json=changed).status_code == 200

    gate.touch()
    run = stack.client.post(f"/v1/runs/{failed['id']}/retry", params={"wait": 20}).json()
    assert run["status"] == "succeeded" and run["draft"] and run["outputs"] == {"text": "v1"}, run
    assert executions(stack.database_url, run["id"]) == {"b": 1, "c": 1}


def test_worker_killed_during_a_retry_ends_it_once_with_each_node_run_once(stack: Stack,
                                                                          tmp_path: Path) -> None:
    gate, hold = tmp_path / "gate", tmp_path / "release-c"
    failed = failed_run(stack, gated_chain(stack, gate, hold))
    gate.touch()
    run_id = stack.client.post(f"/v1/runs/{failed['id']}/retry").json()["id"]

    # Node c is running on the worker (b already recorded), which holds no lock while it runs.
    wait_until(lambda: trace(stack.get_run(run_id))["c"]["status"] == "running", what="node c to run")
    stack.workers[-1].kill()
    hold.touch()  # c may finish now, but only a new worker can run it
    stack.start_worker()
    run = stack.wait_run(run_id)

    assert run["status"] == "succeeded" and run["outputs"] == {"text": "hello"}, run
    counts = executions(stack.database_url, run_id)
    assert counts.get("a", 0) == 0 and counts["b"] == 1, counts  # reused, and recorded before the kill
    assert counts.get("c", 0) == 1, counts  # the interrupted attempt never recorded a count
    events = stack.events(run_id)
    assert [e["data"]["status"] for e in events if e["type"] == "run_finished"] == ["succeeded"]
    assert [e["node_id"] for e in events if e["type"] == "node_recovered"] == ["c"]
