"""How runs behave on a real worker: branches, joins, retries, deferred nodes and duplicate
deliveries of the run's own tasks."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.engine.blocks import executions
from tests.engine.conftest import Stack, wait_until
from tests.factories import edge, node


def counted(stack: Stack, policy: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    """trigger(text) → test.count `c` (with `config` and `policy`) → output."""
    count = node("c", "test.count", database_url=stack.database_url, **config)
    if policy is not None:
        count["policy"] = policy
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), count, node("out", "output")],
        "edges": [edge("in", "text", "c", "value"), edge("c", "value", "out", "text")],
    }


def statuses(run: dict[str, Any]) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in run["trace"]}


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def run_and_wait(stack: Stack, app_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return stack.wait_run(stack.run(app_id, inputs)["id"])


# -- branches and joins ---------------------------------------------------------------------


def test_a_condition_takes_one_branch_and_skips_everything_behind_the_other(stack: Stack) -> None:
    optional = [{"name": "yes", "type": "any", "required": False},
                {"name": "no", "type": "any", "required": False}]
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("cond", "logic.condition", operator="equals", value="yes"),
                  node("yes1", "text.template", template="yes: {{ value }}"),
                  node("yes2", "text.template", template="{{ text }}!"),
                  node("no1", "text.template", template="no: {{ value }}"),
                  node("no2", "text.template", template="{{ text }}?"),
                  node("out", "output", fields=optional)],
        "edges": [edge("in", "text", "cond", "value"),
                  edge("cond", "true", "yes1", "value"), edge("yes1", "text", "yes2", "text"),
                  edge("cond", "false", "no1", "value"), edge("no1", "text", "no2", "text"),
                  edge("yes2", "text", "out", "yes"), edge("no2", "text", "out", "no")],
    }, name="branches")

    taken = run_and_wait(stack, app_id, {"text": "yes"})
    other = run_and_wait(stack, app_id, {"text": "nope"})

    assert taken["status"] == "succeeded" and taken["outputs"] == {"yes": "yes: yes!", "no": None}
    assert statuses(taken) == {"in": "succeeded", "cond": "succeeded", "yes1": "succeeded",
                               "yes2": "succeeded", "no1": "skipped", "no2": "skipped", "out": "succeeded"}
    assert other["status"] == "succeeded" and other["outputs"] == {"yes": None, "no": "no: nope?"}
    assert statuses(other) == {"in": "succeeded", "cond": "succeeded", "yes1": "skipped",
                               "yes2": "skipped", "no1": "succeeded", "no2": "succeeded", "out": "succeeded"}
    skipped = {n["node_id"]: n for n in other["trace"] if n["status"] == "skipped"}
    assert all(n["attempts"] == 0 and n["outputs"] is None for n in skipped.values()), skipped


def test_independent_branches_both_run_and_a_join_waits_for_both(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release-right"
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("left", "test.count", database_url=stack.database_url),
                  node("right", "test.count", database_url=stack.database_url, hold_file=str(hold)),
                  node("out", "output", fields=[{"name": "left", "type": "any"},
                                                {"name": "right", "type": "any"}])],
        "edges": [edge("in", "text", "left", "value"), edge("in", "text", "right", "value"),
                  edge("left", "value", "out", "left"), edge("right", "value", "out", "right")],
    }, name="join")
    run_id = stack.run(app_id, {"text": "both"})["id"]

    held = wait_until(lambda: (r := stack.get_run(run_id)) and statuses(r)["right"] == "running"
                      and statuses(r)["left"] == "succeeded" and r, what="left done, right running")
    assert held["status"] == "running" and statuses(held)["out"] == "pending"  # the join waits
    hold.touch()
    run = stack.wait_run(run_id)

    assert run["status"] == "succeeded" and run["outputs"] == {"left": "both", "right": "both"}
    assert executions(stack.database_url, run_id) == {"left": 1, "right": 1}
    trace = {n["node_id"]: n for n in run["trace"]}
    assert at(trace["out"]["started_at"]) >= at(trace["right"]["finished_at"])


# -- failures and retries ---------------------------------------------------------------------


def test_a_failing_node_is_retried_with_backoff_until_it_succeeds(stack: Stack) -> None:
    app_id = stack.publish(counted(stack, fail_times=2, policy={"retries": 2, "backoff_s": 0.2}),
                           name="retried")

    run = run_and_wait(stack, app_id, {"text": "third time lucky"})

    assert run["status"] == "succeeded" and run["outputs"] == {"text": "third time lucky"}
    c = next(n for n in run["trace"] if n["node_id"] == "c")
    assert c["status"] == "succeeded" and c["attempts"] == 3 and c["error"] is None
    assert executions(stack.database_url, run["id"]) == {"c": 3}
    retries = [e for e in stack.events(run["id"]) if e["type"] == "node_retrying"]
    assert [e["data"]["error"] for e in retries] == [
        "RuntimeError: planned failure 1 of 2", "RuntimeError: planned failure 2 of 2"]


def test_a_node_that_keeps_failing_fails_the_run_naming_the_node(stack: Stack) -> None:
    no_retries = stack.publish(counted(stack, fail_times=1), name="fails")
    too_few = stack.publish(counted(stack, fail_times=5, policy={"retries": 1, "backoff_s": 0.05}),
                            name="fails twice")

    run = run_and_wait(stack, no_retries, {"text": "x"})
    exhausted = run_and_wait(stack, too_few, {"text": "x"})

    assert run["status"] == "failed" and run["outputs"] is None
    assert run["error"] == {"type": "node_failed", "node_id": "c",
                            "message": "node 'c' (test.count) failed: RuntimeError: planned failure 1 of 1"}
    assert statuses(run) == {"in": "succeeded", "c": "failed", "out": "skipped"}
    assert executions(stack.database_url, run["id"]) == {"c": 1}
    assert exhausted["status"] == "failed" and exhausted["error"]["node_id"] == "c"
    assert "planned failure 2 of 5" in exhausted["error"]["message"]
    assert executions(stack.database_url, exhausted["id"]) == {"c": 2}


def test_on_error_continue_emits_the_default_and_the_run_succeeds(stack: Stack) -> None:
    app_id = stack.publish(counted(stack, fail_times=9, policy={"on_error": "continue",
                                                                "default": {"value": "fallback"}}),
                           name="continues")

    run = run_and_wait(stack, app_id, {"text": "x"})

    assert run["status"] == "succeeded" and run["error"] is None
    assert run["outputs"] == {"text": "fallback"}
    trace = {n["node_id"]: n for n in run["trace"]}
    assert trace["c"]["status"] == "failed" and "planned failure 1 of 9" in trace["c"]["error"]
    assert trace["out"]["status"] == "succeeded" and trace["out"]["inputs"] == {"text": "fallback"}


def test_a_node_over_its_timeout_fails_the_run(stack: Stack, tmp_path: Path) -> None:
    never = str(tmp_path / "never")
    app_id = stack.publish(counted(stack, hold_file=never, hold_seconds=2, policy={"timeout_s": 0.3}),
                           name="slow node")

    run = run_and_wait(stack, app_id, {"text": "x"})

    assert run["status"] == "failed" and run["error"]["node_id"] == "c"
    assert "took longer than its 0.3 s timeout" in run["error"]["message"]
    assert statuses(run) == {"in": "succeeded", "c": "failed", "out": "skipped"}
    assert stack.wait_run(stack.run(app_id, {"text": "y"})["id"])["status"] == "failed"  # the worker is free


# -- deferred nodes -----------------------------------------------------------------------------


def test_text_no_database_stores_is_made_storable_and_the_run_still_succeeds(stack: Stack) -> None:
    # A template (or an HTTP body, or a model) can produce a NUL or a lone surrogate, which
    # PostgreSQL refuses; the node's record is written with the NUL dropped and the surrogate
    # replaced, on the queued path and on the direct one alike.
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("t", "text.template", template='{{ text }}|{{ "\\x00" }}|{{ "\\ud800" }}|😀'),
                  node("out", "output")],
        "edges": [edge("in", "text", "t", "text"), edge("t", "text", "out", "text")],
    }, name="unstorable")

    queued = run_and_wait(stack, app_id, {"text": "a"})
    direct = stack.run(app_id, {"text": "b"}, wait=10)

    assert queued["status"] == "succeeded" and queued["outputs"] == {"text": "a||\ufffd|😀"}, queued
    assert direct["status"] == "succeeded" and direct["outputs"] == {"text": "b||\ufffd|😀"}, direct
    made = next(n for n in queued["trace"] if n["node_id"] == "t")
    assert made["outputs"] == {"text": "a||\ufffd|😀"}


def test_flow_wait_parks_the_run_as_waiting_then_finishes_it(stack: Stack) -> None:
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("pause", "flow.wait", seconds=0.3), node("out", "output")],
        "edges": [edge("in", "text", "pause", "value"), edge("pause", "value", "out", "text")],
    }, name="pause")
    run_id = stack.run(app_id, {"text": "patience"})["id"]

    followed: list[list[dict[str, Any]]] = []
    reader = threading.Thread(target=lambda: followed.append(stack.events(run_id)), daemon=True)
    reader.start()  # the stream follows the run live until it ends
    run = stack.wait_run(run_id)
    reader.join(timeout=10)
    assert followed, "the event stream did not end with the run"
    events = followed[0]

    kinds = [(e["type"], e["node_id"]) for e in events]
    assert kinds.index(("node_waiting", "pause")) < kinds.index(("run_waiting", None)) \
        < kinds.index(("node_finished", "pause")) < kinds.index(("run_finished", None)), kinds
    assert next(e for e in events if e["type"] == "node_waiting")["data"] == {"kind": "timer"}
    assert run["status"] == "succeeded" and run["outputs"] == {"text": "patience"}
    pause = next(n for n in run["trace"] if n["node_id"] == "pause")
    assert pause["status"] == "succeeded" and pause["duration_ms"] >= 300


def test_an_external_result_resumes_the_run_once(stack: Stack) -> None:
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), node("ext", "test.external"),
                  node("out", "output")],
        "edges": [edge("in", "text", "ext", "value"), edge("ext", "value", "out", "text")],
    }, name="external")
    run_id = stack.run(app_id, {"text": "what is six times seven?"})["id"]
    declined_id = stack.run(app_id, {"text": "and this?"})["id"]

    waiting = stack.wait_run(run_id, ("waiting",))
    ext = next(n for n in waiting["trace"] if n["node_id"] == "ext")
    assert (ext["status"], ext["waiting_for"], ext["outputs"]) == ("waiting", "external", None)
    assert statuses(waiting)["out"] == "pending"

    stack.send("runs.resume", run_id, "ext", {"answer": 42})
    run = stack.wait_run(run_id)
    assert run["status"] == "succeeded" and run["outputs"] == {"text": 42}

    late = stack.task_done(stack.send("runs.resume", run_id, "ext", {"answer": 41}))
    assert late.endswith(": False"), late
    again = stack.get_run(run_id)
    assert again["outputs"] == {"text": 42} and again["finished_at"] == run["finished_at"]
    assert next(n for n in again["trace"] if n["node_id"] == "ext")["outputs"] == {"value": 42}

    stack.wait_run(declined_id, ("waiting",))
    stack.send("runs.resume", declined_id, "ext", {"error": "the expert declined"})
    declined = stack.wait_run(declined_id)
    assert declined["status"] == "failed" and declined["error"]["node_id"] == "ext"
    assert "the expert declined" in declined["error"]["message"]


def test_a_deferred_node_times_out_and_a_run_deadline_ends_a_stuck_run(stack: Stack) -> None:
    def external(policy: dict[str, Any] | None = None, deadline_s: float | None = None) -> dict[str, Any]:
        ext = node("ext", "test.external")
        if policy is not None:
            ext["policy"] = policy
        graph: dict[str, Any] = {
            "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]), ext, node("out", "output")],
            "edges": [edge("in", "text", "ext", "value"), edge("ext", "value", "out", "text")],
        }
        if deadline_s is not None:
            graph["settings"] = {"deadline_s": deadline_s}
        return graph

    timed = stack.run(stack.publish(external(policy={"timeout_s": 0.3}), name="timeout"), {"text": "?"})
    stuck = stack.run(stack.publish(external(deadline_s=0.5), name="deadline"), {"text": "?"})

    timed_out = stack.wait_run(timed["id"])
    assert timed_out["status"] == "failed" and timed_out["error"]["node_id"] == "ext"
    assert "no result within 0.3 s" in timed_out["error"]["message"]
    late = stack.task_done(stack.send("runs.resume", timed["id"], "ext", {"answer": "late"}))
    assert late.endswith(": False"), late
    assert stack.get_run(timed["id"])["status"] == "failed"

    past_deadline = stack.wait_run(stuck["id"])
    assert past_deadline["status"] == "failed"
    assert past_deadline["error"] == {"type": "deadline", "node_id": None,
                                      "message": "the run did not finish within 0.5 s"}
    assert statuses(past_deadline) == {"in": "succeeded", "ext": "skipped", "out": "skipped"}


# -- duplicate deliveries (keep last: it adds a worker to the module's stack) -------------------------


def test_duplicate_advances_on_two_workers_run_each_node_once(stack: Stack, tmp_path: Path) -> None:
    hold = tmp_path / "release-b"
    app_id = stack.publish({
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("a", "test.count", database_url=stack.database_url),
                  node("b", "test.count", database_url=stack.database_url, hold_file=str(hold)),
                  node("c", "test.count", database_url=stack.database_url),
                  node("d", "test.count", database_url=stack.database_url),
                  node("out", "output")],
        "edges": [edge("in", "text", "a", "value"), edge("a", "value", "b", "value"),
                  edge("b", "value", "c", "value"), edge("c", "value", "d", "value"),
                  edge("d", "value", "out", "text")],
    }, name="duplicates")
    second = stack.start_worker(beat=False)  # one scheduler per stack: they share its schedule file
    try:
        run_id = stack.run(app_id, {"text": "once"})["id"]
        sent = [stack.send("runs.advance", run_id) for _ in range(4)]  # racing the API's own
        wait_until(lambda: statuses(stack.get_run(run_id))["b"] == "running", what="b to be running")
        sent += [stack.send("runs.advance", run_id) for _ in range(4)]  # while b holds, no lock held
        hold.touch()
        sent += [stack.send("runs.advance", run_id) for _ in range(4)]  # racing c and d
        run = stack.wait_run(run_id)
        for task_id in sent:
            stack.task_done(task_id)
    finally:
        second.stop()
        stack.workers.remove(second)

    assert run["status"] == "succeeded" and run["outputs"] == {"text": "once"}
    assert executions(stack.database_url, run_id) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert all(n["attempts"] == 1 for n in run["trace"]), run["trace"]
    started = [e["node_id"] for e in stack.events(run_id) if e["type"] == "node_started"]
    assert started == ["in", "a", "b", "c", "d", "out"]
