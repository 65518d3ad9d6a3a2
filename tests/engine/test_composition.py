"""Loops and app calls on real workers: `flow.map` runs its body once per item as child runs, and
`app.call` runs another published app as one node; cycles, depth and other organizations refused."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from models import apps as app_store
from models.db import session_factory, session_scope
from tests.engine.blocks import executions
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, node


def mapping(body: list[dict[str, Any]], body_edges: list[dict[str, Any]], collect: list[dict[str, str]],
            **config: Any) -> dict[str, Any]:
    """trigger(items) → flow.map (body, collect) → output(results, errors)."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "items", "type": "array"}]),
                  node("m", "flow.map", body=[n["id"] for n in body], collect=collect, **config), *body,
                  node("out", "output", fields=[{"name": "results", "type": "array"},
                                                {"name": "errors", "type": "array"}])],
        "edges": [edge("in", "items", "m", "items"), *body_edges,
                  edge("m", collect[0]["name"], "out", "results"), edge("m", "errors", "out", "errors")],
    }


def counted_map(database_url: str, **count: Any) -> dict[str, Any]:
    """A map whose body counts each item's execution, then renders it."""
    return mapping(
        [node("c", "test.count", database_url=database_url, **count),
         node("t", "text.template", template="#{{ index }}: {{ value }}")],
        [edge("m", "item", "c", "value"), edge("c", "value", "t", "value"), edge("m", "index", "t", "index")],
        [{"name": "texts", "node": "t", "port": "text"}], concurrency=2)


def trace_of(run: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The run's trace entry of one node."""
    return next(n for n in run["trace"] if n["node_id"] == node_id)


def children(stack: Stack, run: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    """The child runs of a node, read through the API."""
    return [stack.get_run(c["id"]) for c in trace_of(run, node_id)["children"] or []]


def test_map_runs_each_item_in_order_two_at_a_time(stack: Stack) -> None:
    app_id = stack.publish(counted_map(stack.database_url), name="mapper")
    run = stack.wait_run(stack.run(app_id, {"items": ["a", "b", "c", "d", "e"]})["id"])

    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"results": ["#0: a", "#1: b", "#2: c", "#3: d", "#4: e"], "errors": []}
    items = children(stack, run, "m")
    assert [c["item_index"] for c in items] == [0, 1, 2, 3, 4]
    for child in items:  # each item's node runs, linked back to the map
        link = (child["kind"], child["parent_run_id"], child["parent_node_id"])
        assert link == ("map_item", run["id"], "m"), link
        statuses = {n["node_id"]: n["status"] for n in child["trace"]}
        assert (statuses["c"], statuses["t"]) == ("succeeded", "succeeded"), statuses
        assert executions(stack.database_url, child["id"]) == {"c": 1}
    # An item's run is created only when a slot is free: never more than two alive at once.
    spans = [(c["created_at"], c["finished_at"]) for c in items]
    assert max(sum(1 for s, e in spans if s <= at < e) for at, _ in spans) <= 2
    # Body nodes run only inside the items; the run's own trace shows the map and its result.
    assert trace_of(run, "m")["outputs"]["texts"] == run["outputs"]["results"]
    listed = stack.client.get(f"/v1/apps/{app_id}/runs").json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]  # items are not runs of the app's list


def test_map_failures_stop_or_skip(stack: Stack) -> None:
    body = [node("t", "text.template", template="{{ 12 // item }}")]
    wires = [edge("m", "item", "t", "item")]
    collect = [{"name": "shares", "node": "t", "port": "text"}]
    stop = stack.publish(mapping(body, wires, collect, concurrency=1), name="stops")
    skip = stack.publish(mapping(body, wires, collect, on_failure="skip"), name="skips")

    stopped = stack.wait_run(stack.run(stop, {"items": [1, 2, 0, 4]})["id"])
    assert stopped["status"] == "failed", stopped
    assert "item 2 failed" in stopped["error"]["message"], stopped["error"]
    assert [c["item_index"] for c in trace_of(stopped, "m")["children"]] == [0, 1, 2]  # item 3 never began

    skipped = stack.wait_run(stack.run(skip, {"items": [1, 2, 0, 4]})["id"])
    assert skipped["status"] == "succeeded", skipped
    assert skipped["outputs"]["results"] == ["12", "6", "3"]
    [error] = skipped["outputs"]["errors"]
    assert error["index"] == 2 and "division" in error["error"], error


def test_map_refuses_more_items_than_its_limit(stack: Stack) -> None:
    graph = mapping([node("t", "text.template", template="{{ item }}")], [edge("m", "item", "t", "item")],
                    [{"name": "texts", "node": "t", "port": "text"}], max_items=3)
    run = stack.wait_run(stack.run(stack.publish(graph, name="limited"), {"items": [1, 2, 3, 4]})["id"])
    assert run["status"] == "failed"
    assert "the list has 4 items; this map takes at most 3 (config.max_items)" in run["error"]["message"]
    assert trace_of(run, "m")["children"] is None


def test_map_body_wiring_is_checked_when_saved(stack: Stack) -> None:
    graph = counted_map(stack.database_url)
    graph["edges"].append(edge("c", "value", "out", "errors"))  # a body output leaking out of the map
    created = stack.client.post("/v1/apps", json={"name": "leaky", "graph": graph})
    app_id = created.json()["id"]
    refused = stack.client.post(f"/v1/apps/{app_id}/publish")
    assert refused.status_code == 422, refused.text
    assert any("leave the map only through config.collect" in d["msg"] for d in refused.json()["detail"])


def test_worker_killed_mid_map_finishes_each_item_once(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release"
    graph = counted_map(stack.database_url, hold_file=str(hold), hold_values=["c", "d"])
    app_id = stack.publish(graph, name="durable-map")
    run_id = stack.run(app_id, {"items": ["a", "b", "c", "d", "e"]})["id"]

    def held() -> bool:  # items a and b are done; c (or d) holds the worker inside its count node
        items = children(stack, stack.get_run(run_id), "m")
        done = [c for c in items if c["status"] == "succeeded"]
        return len(done) == 2 and any(trace_of(c, "c")["status"] == "running" for c in items)

    wait_until(held, 30, "two items done and a third running")
    stack.workers[-1].kill()
    hold.touch()
    stack.start_worker()
    run = stack.wait_run(run_id, timeout=60)

    assert run["status"] == "succeeded", run
    assert run["outputs"]["results"] == ["#0: a", "#1: b", "#2: c", "#3: d", "#4: e"]
    items = children(stack, run, "m")
    assert [c["item_index"] for c in items] == [0, 1, 2, 3, 4]  # one run per item, none started twice
    assert [executions(stack.database_url, c["id"]) for c in items] == [{"c": 1}] * 5


def test_cancelling_a_mapping_run_cancels_its_items(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release"
    app_id = stack.publish(counted_map(stack.database_url, hold_file=str(hold)), name="cancelled-map")
    run_id = stack.run(app_id, {"items": ["a", "b", "c"]})["id"]
    wait_until(lambda: any(trace_of(c, "c")["status"] == "running"
                           for c in children(stack, stack.get_run(run_id), "m")), 30, "an item running")

    assert stack.client.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    # The items' runs are cancelled with it (one busy in a step would be left to the reaper's sweep).
    items = wait_until(lambda: (found := children(stack, stack.get_run(run_id), "m"))
                       and all(c["status"] == "cancelled" for c in found) and found, 30, "items cancelled")
    hold.touch()  # let the held block return: its outcome is not recorded on a cancelled run
    assert [c["item_index"] for c in items] == [0, 1]  # nothing more started


# -- app.call --------------------------------------------------------------------------------------

def greeter(template: str) -> dict[str, Any]:
    """trigger(name) → template → output(text)."""
    return {"nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                      node("t", "text.template", template=template), node("out", "output")],
            "edges": [edge("in", "name", "t", "name"), edge("t", "text", "out", "text")]}


def caller(callee: str, version: int | str = "latest", **extra: Any) -> dict[str, Any]:
    """trigger(name) → app.call(callee) → output(text): the same ports as a greeter, so calls chain."""
    return {"nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                      node("call", "app.call", app_id=callee, version=version, **extra),
                      node("out", "output")],
            "edges": [edge("in", "name", "call", "name"), edge("call", "text", "out", "text")]}


# What a validator would have pinned on a call of a greeter or a caller (for versions stored unchecked).
INTERFACE = {"version": 1, "inputs": [{"name": "name"}], "outputs": [{"name": "text"}]}


def publish_unchecked(stack: Stack, app_id: str, graph: dict[str, Any]) -> None:
    """A version stored without validation, as one published before a change elsewhere would be."""
    with session_scope(session_factory(stack.database_url)) as session:
        app = app_store.get_app(session, org_id=stack.org_id, app_id=uuid.UUID(app_id), lock=True)
        app_store.publish(session, app=app, graph=graph, note="", actor="test")


def test_app_call_latest_and_pinned_linked_both_ways(stack: Stack) -> None:
    callee = stack.publish(greeter("Hi {{ name }}"), name="greeter")
    created = stack.client.post("/v1/apps", json={"name": "calls-latest", "graph": caller(callee)})
    latest = created.json()["id"]
    draft = stack.client.get(f"/v1/apps/{latest}/draft").json()
    assert draft["valid"], draft["problems"]
    ports = draft["ports"]["call"]
    assert [p["name"] for p in ports["inputs"]] == ["name"]
    assert [p["name"] for p in ports["outputs"]] == ["text"]
    assert stack.client.post(f"/v1/apps/{latest}/publish").status_code == 201
    pinned = stack.publish(caller(callee, 1), name="calls-v1")
    stack.client.put(f"/v1/apps/{callee}/draft", json=greeter("Hello {{ name }}"))
    assert stack.client.post(f"/v1/apps/{callee}/publish").status_code == 201

    run = stack.wait_run(stack.run(latest, {"name": "Ada"})["id"])
    assert (run["status"], run["outputs"]) == ("succeeded", {"text": "Hello Ada"}), run
    old = stack.wait_run(stack.run(pinned, {"name": "Ada"})["id"])
    assert (old["status"], old["outputs"]) == ("succeeded", {"text": "Hi Ada"}), old

    [child] = children(stack, run, "call")
    assert (child["app_id"], child["version_number"], child["trigger"]) == (callee, 2, "app_call")
    assert (child["parent_run_id"], child["parent_node_id"]) == (run["id"], "call")
    assert child["inputs"] == {"name": "Ada"} and child["outputs"] == {"text": "Hello Ada"}


def test_a_failing_callee_fails_the_node_with_its_error(stack: Stack) -> None:
    broken = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                  node("c", "test.count", database_url=stack.database_url, fail_times=5),
                  node("out", "output")],
        "edges": [edge("in", "name", "c", "value"), edge("c", "value", "out", "text")]}, name="broken")
    run = stack.wait_run(stack.run(stack.publish(caller(broken), name="calls-broken"), {"name": "x"})["id"])
    assert run["status"] == "failed"
    message = trace_of(run, "call")["error"]
    assert message.startswith("the called app 'broken' failed (run "), message
    assert "planned failure 1 of 5" in message and run["error"]["node_id"] == "call"


def test_cycles_and_depth_are_refused_at_publish_and_at_run_time(stack: Stack) -> None:
    first = stack.publish(greeter("{{ name }}"), name="first")
    second = stack.publish(caller(first), name="second")
    stack.client.put(f"/v1/apps/{first}/draft", json=caller(second))
    refused = stack.client.post(f"/v1/apps/{first}/publish")
    assert refused.status_code == 422, refused.text
    assert any(d["msg"] == "app.call cycle: first → second → first" for d in refused.json()["detail"])

    # A version that closes the cycle anyway (published before the other side changed): refused as it runs.
    publish_unchecked(stack, first, caller(second, interface=INTERFACE))
    run = stack.wait_run(stack.run(second, {"name": "loop"})["id"])
    assert run["status"] == "failed"
    assert "app.call cycle: second → first → second" in run["error"]["message"], run["error"]

    levels = [stack.publish(greeter("{{ name }}"), name="level0")]
    for depth in range(1, 6):
        levels.append(stack.publish(caller(levels[-1]), name=f"level{depth}"))
    created = stack.client.post("/v1/apps", json={"name": "level6", "graph": caller(levels[-1])})
    too_deep = created.json()["id"]
    refused = stack.client.post(f"/v1/apps/{too_deep}/publish")
    assert refused.status_code == 422, refused.text
    chain = " → ".join(f"level{d}" for d in range(6, -1, -1))
    assert any(d["msg"] == f"app.call chain {chain} is 6 calls deep; the limit is 5"
               for d in refused.json()["detail"]), refused.json()

    publish_unchecked(stack, too_deep, caller(levels[-1], interface=INTERFACE))
    run = stack.wait_run(stack.run(too_deep, {"name": "deep"})["id"], timeout=60)
    assert run["status"] == "failed"
    assert "is 6 calls deep; the limit is 5" in run["error"]["message"], run["error"]


def test_another_organizations_app_is_never_called(stack: Stack) -> None:
    theirs = {"Authorization": f"Bearer {stack.new_org_key()}"}
    other = stack.client.post("/v1/apps", json={"name": "theirs", "graph": greeter("{{ name }}")},
                              headers=theirs).json()["id"]
    assert stack.client.post(f"/v1/apps/{other}/publish", headers=theirs).status_code == 201
    created = stack.client.post("/v1/apps", json={"name": "poacher", "graph": caller(other)}).json()["id"]
    refused = stack.client.post(f"/v1/apps/{created}/publish")
    assert refused.status_code == 422
    assert any(f"no app {other} in this organization" in d["msg"] for d in refused.json()["detail"])

    publish_unchecked(stack, created, caller(other, interface=INTERFACE))
    run = stack.wait_run(stack.run(created, {"name": "x"})["id"])
    assert run["status"] == "failed"
    assert f"no app {other} in this organization" in run["error"]["message"]
