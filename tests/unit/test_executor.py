"""The pure executor, driven in memory with throwaway blocks and a clock that moves only when told."""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from blocks.base import AnyBlock, BlockContext, Execution, Suspend, port_values
from blocks.registry import default_registry
from builder.executor import (
    Event,
    Executor,
    NodeFailed,
    NodeSkipped,
    NodeStarted,
    NodeSucceeded,
    NodeWaiting,
    RunFinished,
    RunState,
)
from builder.graph import Graph
from builder.validation import analyze
from core.errors import PolicyViolation
from core.statuses import TERMINAL, NodeStatus, RunStatus
from tests.factories import edge, greeter_graph, make_block, make_deferred_block, make_join_block, node

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


# -- building apps and runs --------------------------------------------------------------


def app(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    """A graph of these nodes and edges."""
    return {"schema_version": 1, "nodes": nodes, "edges": edges, "settings": settings}


def trigger(*names: str) -> dict[str, Any]:
    """An API trigger `in` with string fields."""
    return node("in", "trigger.api", fields=[{"name": n, "type": "string"} for n in names])


def output(node_id: str, *names: str, required: bool = True) -> dict[str, Any]:
    """An output node collecting these fields."""
    return node(node_id, "output", fields=[{"name": n, "type": "any", "required": required} for n in names])


def with_policy(spec: dict[str, Any], **policy: Any) -> dict[str, Any]:
    """The node with a failure policy."""
    return {**spec, "policy": policy}


def build(graph: dict[str, Any], *block_types: type[AnyBlock], clock: FakeClock) -> Executor:
    """An executor for a graph that must be valid."""
    analysis = analyze(Graph.model_validate(graph), default_registry().extended(*block_types))
    assert analysis.valid, [p.message for p in analysis.problems]
    return Executor(analysis, clock=clock)


def new_run(clock: FakeClock, **inputs: Any) -> RunState:
    """A queued run created now."""
    return RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(), inputs=inputs,
                    created_at=clock.now)


def steps(events: list[Event]) -> list[tuple[str, str | None]]:
    """Each event as (kind, node id)."""
    return [(type(e).__name__, e.node_id) for e in events]


def started(events: list[Event]) -> list[str | None]:
    """The nodes claimed, in order."""
    return [e.node_id for e in events if isinstance(e, NodeStarted)]


def statuses(state: RunState) -> dict[str, str]:
    """Every node's status."""
    return {node_id: n.status.value for node_id, n in state.nodes.items()}


def run_to_end(ex: Executor, state: RunState, clock: FakeClock,
               answer: Callable[[str, Mapping[str, Any]], dict[str, Any]] | None = None) -> list[Event]:
    """Drive until the run ends, answering deferred nodes and moving the clock to each wake-up."""
    events: list[Event] = []
    for _ in range(200):
        events += ex.drive(state)
        if state.status in TERMINAL:
            return events
        waiting = [i for i, n in state.nodes.items() if n.status is NodeStatus.waiting and n.result is None]
        if waiting and answer is not None:
            for node_id in waiting:
                state.node(node_id).result = answer(node_id, state.node(node_id).waiting_for or {})
            continue
        wake = ex.next_wakeup(state)
        assert wake is not None, f"the run is stuck: {statuses(state)}"
        clock.now = max(clock.now, wake)
    raise AssertionError("the run never finished")


def replayed(ex: Executor, state: RunState, events: list[Event]) -> RunState:
    """A fresh state of the same run with every recorded event applied."""
    fresh = RunState(run_id=state.run_id, org_id=state.org_id, app_id=state.app_id,
                     inputs=state.inputs, created_at=state.created_at)
    for event in events:
        ex.apply(fresh, event)
    return fresh


def summary(state: RunState) -> tuple[Any, ...]:
    """What a user sees of a run: its status, outputs, error, and each node's record."""
    nodes = {i: (n.status, n.outputs, n.error, n.attempts, n.inputs) for i, n in state.nodes.items()}
    return state.status, state.outputs, state.error, nodes


# -- throwaway blocks --------------------------------------------------------------------


def echo_block(calls: list[str], name: str = "test.echo") -> type[AnyBlock]:
    """Passes `value` on and records which node ran."""

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        calls.append(ctx.node_id)
        return {"value": inputs.value}

    return make_block(name, inputs={"value": str}, outputs={"value": str}, run=run)


def flaky_block(failures: int, attempts: list[int]) -> type[AnyBlock]:
    """Fails its first `failures` executions, then appends `!` to its value."""

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        attempts.append(ctx.attempt)
        if len(attempts) <= failures:
            raise RuntimeError(f"upstream unavailable (attempt {ctx.attempt})")
        return {"value": inputs.value + "!"}

    return make_block("test.flaky", inputs={"value": str}, outputs={"value": str}, run=run)


def ask_block(starts: list[str]) -> type[AnyBlock]:
    """A deferred block asking someone outside a question; the answer arrives as `{"text": ...}`."""

    def start(inputs: Any, ctx: BlockContext) -> Suspend:
        starts.append(ctx.node_id)
        return Suspend("external", {"question": inputs.value})

    def resume(inputs: Any, result: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
        return {"answer": f"{inputs.value} -> {result['text']}"}

    return make_deferred_block("test.ask", inputs={"value": str}, outputs={"answer": str},
                               start=start, resume=resume)


def join_block(name: str = "test.join") -> type[AnyBlock]:
    """Joins up to three branches; reports which inputs arrived."""

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        arrived = sorted(port_values(inputs).items())
        return {"joined": ",".join(f"{k}={v}" for k, v in arrived if v is not None)}

    return make_join_block(name, inputs={"a": str, "b": str, "c": str}, outputs={"joined": str}, run=run)


def single_node_app(node_type: str, **policy: Any) -> dict[str, Any]:
    """in.text → `x` (of `node_type`, with `policy`) → out.value."""
    return app(
        [trigger("text"), with_policy(node("x", node_type), **policy), output("out", "value")],
        [edge("in", "text", "x", "value"), edge("x", "value", "out", "value")],
    )


# -- a linear app ------------------------------------------------------------------------


def test_greeter_succeeds_with_the_output_blocks_results_and_events_in_order() -> None:
    clock = FakeClock()
    ex = build(greeter_graph(), clock=clock)
    state = new_run(clock, name="Ada")

    events = list(ex.drive(state))

    assert state.status is RunStatus.succeeded
    assert state.outputs == {"text": "Hello, Ada!"}
    assert state.error is None
    assert steps(events) == [
        ("RunStarted", None),
        ("NodeStarted", "in"), ("NodeSucceeded", "in"),
        ("NodeStarted", "greet"), ("NodeSucceeded", "greet"),
        ("NodeStarted", "out"), ("NodeSucceeded", "out"),
        ("RunFinished", None),
    ]
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status is RunStatus.succeeded and finished.outputs == {"text": "Hello, Ada!"}
    assert statuses(state) == {"in": "succeeded", "greet": "succeeded", "out": "succeeded"}
    assert state.node("greet").inputs == {"name": "Ada"}
    assert state.node("greet").outputs == {"text": "Hello, Ada!"}
    assert all(n.attempts == 1 and n.started_at == T0 for n in state.nodes.values())


# -- branches ----------------------------------------------------------------------------


def branching_app() -> dict[str, Any]:
    """cond(text == "go"): true → yes1 → yes2 → join.a; false → no1 → no2 → no3 → join.b; join → out."""
    return app(
        [trigger("text"), node("cond", "logic.condition", operator="equals", value="go"),
         node("yes1", "test.echo"), node("yes2", "test.echo"),
         node("no1", "test.echo"), node("no2", "test.echo"), node("no3", "test.echo"),
         node("join", "test.join"), output("out", "joined")],
        [edge("in", "text", "cond", "value"),
         edge("cond", "true", "yes1", "value"), edge("yes1", "value", "yes2", "value"),
         edge("cond", "false", "no1", "value"), edge("no1", "value", "no2", "value"),
         edge("no2", "value", "no3", "value"),
         edge("yes2", "value", "join", "a"), edge("no3", "value", "join", "b"),
         edge("join", "joined", "out", "joined")],
    )


@pytest.mark.parametrize(("text", "taken", "untaken", "joined"), [
    ("go", ["yes1", "yes2"], ["no1", "no2", "no3"], "a=go"),
    ("stop", ["no1", "no2", "no3"], ["yes1", "yes2"], "b=stop"),
])
def test_only_the_taken_branch_runs_and_the_other_is_skipped_transitively(
        text: str, taken: list[str], untaken: list[str], joined: str) -> None:
    clock = FakeClock()
    calls: list[str] = []
    ex = build(branching_app(), echo_block(calls), join_block(), clock=clock)
    state = new_run(clock, text=text)

    events = list(ex.drive(state))

    assert state.status is RunStatus.succeeded
    assert calls == taken
    port = "true" if text == "go" else "false"
    assert state.node("cond").outputs == {port: text}  # the other port is not emitted at all
    for node_id in untaken:
        assert state.node(node_id).status is NodeStatus.skipped
        assert state.node(node_id).attempts == 0
    skipped = [e for e in events if isinstance(e, NodeSkipped)]
    assert [e.node_id for e in skipped] == untaken
    assert all("branch was not taken" in e.reason for e in skipped)
    assert set(started(events)) == {"in", "cond", *taken, "join", "out"}
    # The join ran with the one input that arrived.
    assert state.node("join").inputs == {"a" if text == "go" else "b": text}
    assert state.outputs == {"joined": joined}


def test_a_node_whose_inputs_all_come_from_skipped_branches_is_skipped() -> None:
    clock = FakeClock()
    calls: list[str] = []
    graph = app(
        [trigger("text"), node("cond", "logic.condition", operator="equals", value="go"),
         node("no1", "test.echo"), node("no2", "test.echo"), node("join", "test.join"),
         node("after", "test.echo"), output("out", "value")],
        [edge("in", "text", "cond", "value"),
         edge("cond", "false", "no1", "value"), edge("cond", "false", "no2", "value"),
         edge("no1", "value", "join", "a"), edge("no2", "value", "join", "b"),
         edge("join", "joined", "after", "value"), edge("after", "value", "out", "value")],
    )
    ex = build(graph, echo_block(calls), join_block(), clock=clock)
    state = new_run(clock, text="go")

    list(ex.drive(state))

    assert state.status is RunStatus.succeeded
    assert calls == []
    assert statuses(state) == {"in": "succeeded", "cond": "succeeded", "no1": "skipped", "no2": "skipped",
                               "join": "skipped", "after": "skipped", "out": "skipped"}
    assert state.outputs == {}


def test_independent_branches_both_run_and_the_join_gets_both() -> None:
    clock = FakeClock()
    calls: list[str] = []
    graph = app(
        [trigger("text"), node("left", "test.echo"), node("right", "test.echo"), node("join", "test.join"),
         output("out", "joined")],
        [edge("in", "text", "left", "value"), edge("in", "text", "right", "value"),
         edge("left", "value", "join", "a"), edge("right", "value", "join", "c"),
         edge("join", "joined", "out", "joined")],
    )
    ex = build(graph, echo_block(calls), join_block(), clock=clock)
    state = new_run(clock, text="hi")

    events = list(ex.drive(state))

    assert state.status is RunStatus.succeeded
    assert sorted(calls) == ["left", "right"]
    kinds = steps(events)
    join_start = kinds.index(("NodeStarted", "join"))
    assert kinds.index(("NodeSucceeded", "left")) < join_start
    assert kinds.index(("NodeSucceeded", "right")) < join_start
    assert state.node("join").inputs == {"a": "hi", "c": "hi"}
    assert state.outputs == {"joined": "a=hi,c=hi"}


def test_a_join_waits_for_a_branch_that_is_still_running() -> None:
    clock = FakeClock()
    calls: list[str] = []
    starts: list[str] = []
    graph = app(
        [trigger("text"), node("fast", "test.echo"), node("ask", "test.ask"), node("join", "test.join"),
         output("out", "joined")],
        [edge("in", "text", "fast", "value"), edge("in", "text", "ask", "value"),
         edge("fast", "value", "join", "a"), edge("ask", "answer", "join", "b"),
         edge("join", "joined", "out", "joined")],
    )
    ex = build(graph, echo_block(calls), ask_block(starts), join_block(), clock=clock)
    state = new_run(clock, text="hi")

    events = list(ex.drive(state))

    assert state.status is RunStatus.waiting
    assert calls == ["fast"] and starts == ["ask"]
    assert state.node("join").status is NodeStatus.pending
    assert "join" not in started(events)

    state.node("ask").result = {"text": "sure"}
    events = list(ex.drive(state))

    assert state.status is RunStatus.succeeded
    assert state.node("join").inputs == {"a": "hi", "b": "hi -> sure"}
    assert state.outputs == {"joined": "a=hi,b=hi -> sure"}


# -- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_a_flaky_node_succeeds_within_its_retries_after_backing_off(failures: int) -> None:
    clock = FakeClock()
    attempts: list[int] = []
    ex = build(single_node_app("test.flaky", retries=failures, backoff_s=5), flaky_block(failures, attempts),
               clock=clock)
    state = new_run(clock, text="hi")

    for attempt in range(1, failures + 1):
        events = list(ex.drive(state))
        failed = [e for e in events if isinstance(e, NodeFailed)]
        assert [e.node_id for e in failed] == ["x"]
        retry_at = clock.now + timedelta(seconds=5 * 2 ** (attempt - 1))
        assert failed[0].retry_at == retry_at
        assert failed[0].error == f"RuntimeError: upstream unavailable (attempt {attempt})"
        assert state.status is RunStatus.running
        assert state.node("x").status is NodeStatus.pending
        assert state.node("out").status is NodeStatus.pending
        assert ex.next_wakeup(state) == retry_at
        # Not a moment early: nothing is runnable before retry_at.
        clock.now = retry_at - timedelta(milliseconds=1)
        assert ex.plan(state) == []
        assert list(ex.drive(state)) == []
        clock.now = retry_at

    events = list(ex.drive(state))

    assert steps(events)[0] == ("NodeStarted", "x")
    assert state.status is RunStatus.succeeded
    assert state.outputs == {"value": "hi!"}
    assert attempts == list(range(1, failures + 2))  # the block sees which attempt it is
    assert state.node("x").attempts == failures + 1
    assert state.node("x").error is None
    assert ex.next_wakeup(state) is None


def test_without_retries_a_failure_fails_the_run_naming_the_node_and_the_error() -> None:
    clock = FakeClock()
    attempts: list[int] = []
    ex = build(single_node_app("test.flaky"), flaky_block(1, attempts), clock=clock)
    state = new_run(clock, text="hi")

    events = list(ex.drive(state))

    assert attempts == [1]
    assert state.status is RunStatus.failed
    assert state.error is not None
    assert state.error["type"] == "node_failed"
    assert state.error["node_id"] == "x"
    assert "'x'" in state.error["message"]
    assert "upstream unavailable (attempt 1)" in state.error["message"]
    assert state.node("x").status is NodeStatus.failed
    assert state.node("out").status is NodeStatus.skipped
    assert state.outputs is None
    assert steps(events)[-3:] == [("NodeFailed", "x"), ("NodeSkipped", "out"), ("RunFinished", None)]
    failed = events[-3]
    assert isinstance(failed, NodeFailed) and failed.retry_at is None
    assert ex.next_wakeup(state) is None


def test_a_node_failing_more_often_than_its_retries_fails_the_run() -> None:
    clock = FakeClock()
    attempts: list[int] = []
    ex = build(single_node_app("test.flaky", retries=1, backoff_s=2), flaky_block(5, attempts), clock=clock)
    state = new_run(clock, text="hi")

    events = run_to_end(ex, state, clock)

    assert attempts == [1, 2]
    assert clock.now == T0 + timedelta(seconds=2)
    assert state.status is RunStatus.failed
    assert state.error is not None and "upstream unavailable (attempt 2)" in state.error["message"]
    assert [e.retry_at for e in events if isinstance(e, NodeFailed)] == [T0 + timedelta(seconds=2), None]


# -- on_error: continue ------------------------------------------------------------------


def test_on_error_continue_sends_the_default_downstream_and_the_run_goes_on() -> None:
    clock = FakeClock()
    attempts: list[int] = []
    calls: list[str] = []
    graph = app(
        [trigger("text"),
         with_policy(node("x", "test.flaky"), on_error="continue", default={"value": "fallback"}),
         node("after", "test.echo"), output("out", "value")],
        [edge("in", "text", "x", "value"), edge("x", "value", "after", "value"),
         edge("after", "value", "out", "value")],
    )
    ex = build(graph, flaky_block(99, attempts), echo_block(calls), clock=clock)
    state = new_run(clock, text="hi")

    events = list(ex.drive(state))

    assert state.status is RunStatus.succeeded
    assert state.error is None
    assert calls == ["after"]
    assert state.node("after").inputs == {"value": "fallback"}
    assert state.outputs == {"value": "fallback"}
    assert state.node("x").status is NodeStatus.failed
    assert state.node("x").error == "RuntimeError: upstream unavailable (attempt 1)"
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert len(failed) == 1 and failed[0].continued


def test_on_error_continue_applies_only_once_the_retries_are_spent() -> None:
    clock = FakeClock()
    attempts: list[int] = []
    ex = build(single_node_app("test.flaky", retries=2, backoff_s=1, on_error="continue",
                               default={"value": "fallback"}),
               flaky_block(99, attempts), clock=clock)
    state = new_run(clock, text="hi")

    run_to_end(ex, state, clock)

    assert attempts == [1, 2, 3]
    assert state.status is RunStatus.succeeded
    assert state.outputs == {"value": "fallback"}


# -- timeouts of inline blocks -----------------------------------------------------------


def test_an_inline_block_overrunning_its_timeout_fails_with_a_timeout_message() -> None:
    clock = FakeClock()
    release = threading.Event()
    finished = threading.Event()

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        release.wait(30)
        finished.set()
        return {"value": "too late"}

    slow = make_block("test.slow", inputs={"value": str}, outputs={"value": str}, run=run)
    ex = build(single_node_app("test.slow", timeout_s=0.05), slow, clock=clock)
    state = new_run(clock, text="hi")
    try:
        events = list(ex.drive(state))
    finally:
        release.set()

    assert state.node("x").status is NodeStatus.failed
    error = state.node("x").error or ""
    assert "timeout" in error and "0.05 s" in error
    assert state.status is RunStatus.failed
    assert state.error is not None and state.error["node_id"] == "x"
    assert state.node("out").status is NodeStatus.skipped
    # The block's late result is discarded: nothing changes once it returns.
    assert finished.wait(5)
    assert ex.plan(state) == [] and state.node("x").outputs is None
    assert not any(isinstance(e, NodeSucceeded) and e.node_id == "x" for e in events)


def test_a_block_within_its_timeout_succeeds_and_its_own_error_is_reported_as_is() -> None:
    clock = FakeClock()

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        if inputs.value == "bad":
            raise ValueError("bad value")
        return {"value": inputs.value.upper()}

    upper = make_block("test.upper", inputs={"value": str}, outputs={"value": str}, run=run)
    ex = build(single_node_app("test.upper", timeout_s=30), upper, clock=clock)

    good = new_run(clock, text="hi")
    list(ex.drive(good))
    bad = new_run(clock, text="bad")
    list(ex.drive(bad))

    assert good.status is RunStatus.succeeded and good.outputs == {"value": "HI"}
    assert bad.status is RunStatus.failed
    assert bad.node("x").error == "ValueError: bad value"


def loading_block(name: str, execution: Execution, load_s: float, loads: list[str]) -> type[AnyBlock]:
    """A block whose `prepare` works for `load_s` seconds (a model's first load) before each node."""

    def work(inputs: Any, ctx: BlockContext) -> Any:
        return {"value": inputs.value.upper()}

    base = make_block(name, inputs={"value": str}, outputs={"value": str}, run=work, execution=execution)

    def prepare(self: AnyBlock) -> None:
        loads.append(self.type)
        until = time.monotonic() + load_s
        digest = b""
        while time.monotonic() < until:  # busy, like a load: the watchdog sees a node that works
            digest = hashlib.sha256(digest).digest()

    attrs: dict[str, Any] = {"prepare": prepare}
    if execution is Execution.deferred:
        attrs["start"] = lambda self, inputs, ctx: self.Outputs.model_construct(**work(inputs, ctx))
    return type(base.__name__, (base,), attrs)


@pytest.mark.parametrize("execution", [Execution.inline, Execution.deferred])
def test_what_a_block_loads_once_is_not_charged_to_its_nodes_time(execution: Execution) -> None:
    clock = FakeClock()
    loads: list[str] = []
    slow_load = loading_block("test.loads", execution, load_s=0.3, loads=loads)
    graph = single_node_app("test.loads", timeout_s=0.05)
    analysis = analyze(Graph.model_validate(graph), default_registry().extended(slow_load))
    ex = Executor(analysis, clock=clock, pure_timeout_s=0.05, start_timeout_s=0.05)
    state = new_run(clock, text="hi")

    list(ex.drive(state))

    # The load took six times the node's limit; the node's own work did not, and it succeeded.
    assert state.status is RunStatus.succeeded, state.node("x").error
    assert state.outputs == {"value": "HI"} and loads == ["test.loads"]


def test_a_block_that_cannot_load_what_it_needs_fails_its_node_with_the_reason() -> None:
    clock = FakeClock()

    def prepare(self: AnyBlock) -> None:
        raise OSError("the model's weights are missing")

    base = make_block("test.noload", inputs={"value": str}, outputs={"value": str},
                      run=lambda inputs, ctx: {"value": inputs.value})
    broken = type(base.__name__, (base,), {"prepare": prepare})
    ex = build(single_node_app("test.noload"), broken, clock=clock)
    state = new_run(clock, text="hi")

    list(ex.drive(state))

    assert state.status is RunStatus.failed
    assert state.node("x").error == "OSError: the model's weights are missing"


# -- deferred blocks ---------------------------------------------------------------------


def ask_app(**policy: Any) -> dict[str, Any]:
    """in.text → ask (deferred, with `policy`) → out.answer."""
    return app(
        [trigger("text"), with_policy(node("ask", "test.ask"), **policy), output("out", "answer")],
        [edge("in", "text", "ask", "value"), edge("ask", "answer", "out", "answer")],
    )


def test_a_deferred_node_suspends_the_run_until_its_result_arrives() -> None:
    clock = FakeClock()
    starts: list[str] = []
    ex = build(ask_app(), ask_block(starts), clock=clock)
    state = new_run(clock, text="proceed?")

    events = list(ex.drive(state))

    assert steps(events)[-3:] == [("NodeStarted", "ask"), ("NodeWaiting", "ask"), ("RunWaiting", None)]
    waiting = events[-2]
    assert isinstance(waiting, NodeWaiting) and waiting.suspend.kind == "external"
    assert state.status is RunStatus.waiting
    assert state.node("ask").status is NodeStatus.waiting
    assert state.node("ask").waiting_for == {"kind": "external", "payload": {"question": "proceed?"}}
    assert state.node("out").status is NodeStatus.pending
    # Asking again changes nothing and starts nothing twice.
    assert ex.plan(state) == []
    assert ex.next_wakeup(state) is None
    assert starts == ["ask"]

    state.node("ask").result = {"text": "yes"}
    events = list(ex.drive(state))

    assert steps(events) == [("NodeSucceeded", "ask"), ("NodeStarted", "out"), ("NodeSucceeded", "out"),
                             ("RunFinished", None)]
    assert state.status is RunStatus.succeeded
    assert state.node("ask").outputs == {"answer": "proceed? -> yes"}
    assert state.outputs == {"answer": "proceed? -> yes"}
    assert starts == ["ask"]


def test_a_deferred_result_with_an_error_fails_the_node() -> None:
    clock = FakeClock()
    ex = build(ask_app(), ask_block([]), clock=clock)
    state = new_run(clock, text="proceed?")
    list(ex.drive(state))

    state.node("ask").result = {"error": "the reviewer rejected it"}
    list(ex.drive(state))

    assert state.node("ask").status is NodeStatus.failed
    assert state.node("ask").error == "the reviewer rejected it"
    assert state.status is RunStatus.failed
    assert state.error is not None and state.error["node_id"] == "ask"
    assert "the reviewer rejected it" in state.error["message"]
    assert state.node("out").status is NodeStatus.skipped


def test_a_waiting_node_fails_once_the_clock_passes_its_timeout() -> None:
    clock = FakeClock()
    ex = build(ask_app(timeout_s=60), ask_block([]), clock=clock)
    state = new_run(clock, text="proceed?")
    list(ex.drive(state))

    assert ex.next_wakeup(state) == T0 + timedelta(seconds=60)
    clock.advance(59.9)
    assert ex.plan(state) == []
    assert state.node("ask").status is NodeStatus.waiting

    clock.advance(0.1)
    events = list(ex.drive(state))

    assert state.node("ask").status is NodeStatus.failed
    assert "no result within 60" in (state.node("ask").error or "")
    assert state.status is RunStatus.failed
    assert state.node("out").status is NodeStatus.skipped
    assert steps(events)[-1] == ("RunFinished", None)
    assert ex.next_wakeup(state) is None


def test_a_deferred_node_retried_after_an_error_result_asks_again() -> None:
    clock = FakeClock()
    starts: list[str] = []
    ex = build(ask_app(retries=1, backoff_s=10), ask_block(starts), clock=clock)
    state = new_run(clock, text="proceed?")
    list(ex.drive(state))

    state.node("ask").result = {"error": "the reviewer timed out"}
    events = list(ex.drive(state))

    assert steps(events) == [("NodeFailed", "ask")]
    assert state.node("ask").status is NodeStatus.pending
    # Nothing waits on a deferred result now: a retry timer holds the run.
    assert state.status is RunStatus.running
    assert ex.next_wakeup(state) == T0 + timedelta(seconds=10)

    clock.advance(10)
    events = list(ex.drive(state))

    assert steps(events) == [("NodeStarted", "ask"), ("NodeWaiting", "ask"), ("RunWaiting", None)]
    assert starts == ["ask", "ask"]
    assert state.node("ask").attempts == 2
    state.node("ask").result = {"text": "yes"}
    list(ex.drive(state))
    assert state.status is RunStatus.succeeded
    assert state.outputs == {"answer": "proceed? -> yes"}


def test_a_deferred_block_that_fails_to_start_fails_its_node() -> None:
    clock = FakeClock()

    def start(inputs: Any, ctx: BlockContext) -> Suspend:
        raise ConnectionError("the queue is down")

    broken = make_deferred_block("test.broken", inputs={"value": str}, outputs={"value": str}, start=start)
    ex = build(single_node_app("test.broken"), broken, clock=clock)
    state = new_run(clock, text="hi")

    list(ex.drive(state))

    assert state.status is RunStatus.failed
    assert state.node("x").error == "ConnectionError: the queue is down"


# -- the run's deadline ------------------------------------------------------------------


def test_a_run_past_its_deadline_fails_and_its_unfinished_nodes_are_skipped() -> None:
    clock = FakeClock()
    graph = {**ask_app(), "settings": {"deadline_s": 30}}
    ex = build(graph, ask_block([]), clock=clock)
    state = new_run(clock, text="proceed?")
    list(ex.drive(state))
    assert state.status is RunStatus.waiting
    assert ex.next_wakeup(state) == T0 + timedelta(seconds=30)

    clock.advance(29)
    assert ex.plan(state) == []
    clock.advance(1)
    events = ex.plan(state)

    assert steps(events) == [("NodeSkipped", "ask"), ("NodeSkipped", "out"), ("RunFinished", None)]
    assert state.status is RunStatus.failed
    assert state.error is not None and state.error["type"] == "deadline"
    assert "30" in state.error["message"]
    assert statuses(state) == {"in": "succeeded", "ask": "skipped", "out": "skipped"}
    assert ex.next_wakeup(state) is None
    assert ex.plan(state) == []


def test_the_deadline_also_ends_a_run_waiting_for_a_retry() -> None:
    clock = FakeClock()
    graph = {**single_node_app("test.flaky", retries=3, backoff_s=60), "settings": {"deadline_s": 10}}
    attempts: list[int] = []
    ex = build(graph, flaky_block(5, attempts), clock=clock)
    state = new_run(clock, text="hi")
    list(ex.drive(state))

    assert ex.next_wakeup(state) == T0 + timedelta(seconds=10)  # the deadline comes before the retry
    clock.advance(10)
    list(ex.drive(state))

    assert attempts == [1]
    assert state.status is RunStatus.failed and state.error is not None
    assert state.error["type"] == "deadline"
    assert statuses(state) == {"in": "succeeded", "x": "skipped", "out": "skipped"}


def test_a_node_still_running_when_the_deadline_passes_is_skipped() -> None:
    clock = FakeClock()
    ex = build({**greeter_graph(), "settings": {"deadline_s": 5}}, clock=clock)
    state = new_run(clock, name="Ada")
    assert steps(ex.plan(state))[-1] == ("NodeStarted", "in")  # claimed by a worker that is slow

    clock.advance(5)
    events = ex.plan(state)

    assert steps(events) == [("NodeSkipped", "in"), ("NodeSkipped", "greet"), ("NodeSkipped", "out"),
                             ("RunFinished", None)]
    assert state.status is RunStatus.failed
    assert set(statuses(state).values()) == {"skipped"}  # no node is left running in an ended run


def test_a_failure_elsewhere_skips_a_node_still_running() -> None:
    clock = FakeClock()
    starts: list[str] = []
    calls: list[str] = []
    graph = app(
        [trigger("text"), node("ask", "test.ask"), node("slow", "test.echo"),
         node("join", "test.join"), output("out", "joined")],
        [edge("in", "text", "ask", "value"), edge("in", "text", "slow", "value"),
         edge("ask", "answer", "join", "a"), edge("slow", "value", "join", "b"),
         edge("join", "joined", "out", "joined")],
    )
    ex = build(graph, ask_block(starts), echo_block(calls), join_block(), clock=clock)
    state = new_run(clock, text="hi")
    ex.plan(state)
    ex.apply(state, ex.run_node(state, "in"))
    assert steps(ex.plan(state)) == [("NodeStarted", "ask"), ("NodeWaiting", "ask"), ("NodeStarted", "slow")]

    state.node("ask").result = {"error": "rejected"}
    events = ex.plan(state)

    assert steps(events) == [("NodeFailed", "ask"), ("NodeSkipped", "slow"), ("NodeSkipped", "join"),
                             ("NodeSkipped", "out"), ("RunFinished", None)]
    assert state.status is RunStatus.failed
    assert state.error is not None and state.error["node_id"] == "ask"
    assert calls == []


# -- governance and contract breaches -----------------------------------------------------


def test_a_policy_violation_blocks_the_run_instead_of_failing_it() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        calls.append(ctx.attempt)
        raise PolicyViolation("the text contains a card number")

    guard = make_block("test.guard", inputs={"value": str}, outputs={"value": str}, run=run)
    ex = build(single_node_app("test.guard", retries=2, backoff_s=1), guard, clock=clock)
    state = new_run(clock, text="4111 1111 1111 1111")

    events = list(ex.drive(state))

    assert state.status is RunStatus.blocked
    assert state.error is not None
    assert state.error["type"] == "blocked" and state.error["node_id"] == "x"
    assert "card number" in state.error["message"]
    assert calls == [1]  # a governance rule is not retried
    assert state.node("out").status is NodeStatus.skipped
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status is RunStatus.blocked


def test_a_block_emitting_an_undeclared_port_fails_its_node_naming_the_port() -> None:
    clock = FakeClock()
    leaky = make_block("test.leaky", inputs={"value": str}, outputs={"value": str},
                       run=lambda inputs, ctx: {"value": "ok", "secret": "s3cr3t"})
    ex = build(single_node_app("test.leaky"), leaky, clock=clock)
    state = new_run(clock, text="hi")

    list(ex.drive(state))

    assert state.node("x").status is NodeStatus.failed
    assert "secret" in (state.node("x").error or "")
    assert state.node("x").outputs is None
    assert state.status is RunStatus.failed
    assert state.node("out").status is NodeStatus.skipped


# -- idempotence and replay --------------------------------------------------------------


def test_planning_a_finished_run_again_changes_nothing() -> None:
    clock = FakeClock()
    ex = build(greeter_graph(), clock=clock)
    state = new_run(clock, name="Ada")
    list(ex.drive(state))
    before = summary(state)

    clock.advance(3600)

    assert ex.plan(state) == []
    assert list(ex.drive(state)) == []
    assert summary(state) == before
    assert ex.next_wakeup(state) is None


def test_a_claimed_node_is_claimed_once_until_its_outcome_is_applied() -> None:
    clock = FakeClock()
    ex = build(greeter_graph(), clock=clock)
    state = new_run(clock, name="Ada")

    first = ex.plan(state)

    assert steps(first) == [("RunStarted", None), ("NodeStarted", "in")]
    assert state.node("in").status is NodeStatus.running
    assert ex.plan(state) == []  # a second worker asking now gets nothing to do
    outcome = ex.run_node(state, "in")
    assert isinstance(outcome, NodeSucceeded) and outcome.outputs == {"name": "Ada"}
    assert state.node("in").status is NodeStatus.running  # run_node reports, apply records
    ex.apply(state, outcome)
    assert steps(ex.plan(state)) == [("NodeStarted", "greet")]


def kitchen_sink_app() -> dict[str, Any]:
    """A branch, a retried node, a deferred node, a node that continues on error, and a join."""
    return app(
        [trigger("text"), node("cond", "logic.condition", operator="equals", value="go"),
         with_policy(node("flaky", "test.flaky"), retries=1, backoff_s=2),
         node("ask", "test.ask"), node("no", "test.echo"),
         with_policy(node("broken", "test.broken"), on_error="continue", default={"value": "fallback"}),
         node("join", "test.join"), output("out", "joined")],
        [edge("in", "text", "cond", "value"), edge("cond", "true", "flaky", "value"),
         edge("flaky", "value", "ask", "value"), edge("ask", "answer", "join", "a"),
         edge("cond", "false", "no", "value"), edge("no", "value", "join", "b"),
         edge("in", "text", "broken", "value"), edge("broken", "value", "join", "c"),
         edge("join", "joined", "out", "joined")],
    )


def test_replaying_the_recorded_events_gives_the_same_run() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    def broken(inputs: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
        raise RuntimeError("always broken")

    ex = build(kitchen_sink_app(), flaky_block(1, attempts), ask_block([]), echo_block([]), join_block(),
               make_block("test.broken", inputs={"value": str}, outputs={"value": str}, run=broken),
               clock=clock)
    state = new_run(clock, text="go")

    events = run_to_end(ex, state, clock, answer=lambda node_id, waiting: {"text": "ok"})

    assert state.status is RunStatus.succeeded
    assert state.outputs == {"joined": "a=go! -> ok,c=fallback"}
    assert statuses(state) == {"in": "succeeded", "cond": "succeeded", "flaky": "succeeded",
                               "ask": "succeeded", "no": "skipped", "broken": "failed",
                               "join": "succeeded", "out": "succeeded"}
    assert summary(replayed(ex, state, events)) == summary(state)
    # Replaying any prefix, then planning on, reaches the same end (a worker that crashed and resumed).
    cut = next(i for i, e in enumerate(events) if isinstance(e, NodeWaiting))
    resumed = replayed(ex, state, events[:cut + 1])
    resumed.node("ask").result = {"text": "ok"}
    run_to_end(ex, resumed, clock)
    assert summary(resumed) == summary(state)


# -- property: random apps match a tiny model of the rules --------------------------------

KINDS = ("echo", "flaky", "ask", "cond", "join")


def random_app(rng: random.Random) -> tuple[dict[str, Any], dict[str, list[tuple[str, str, str]]]]:
    """A random valid app and, per node, its inputs as (source, source port, target port)."""
    nodes = [trigger("text")]
    outs: dict[str, list[str]] = {"in": ["text"]}
    sources: dict[str, list[tuple[str, str, str]]] = {}
    for i in range(rng.randint(2, 14)):
        kind = rng.choice(KINDS)
        node_id = f"{kind}{i}"
        earlier = list(outs)[-3:] if rng.random() < 0.6 else list(outs)  # deep chains, some fan-in
        if kind == "join":
            ports = rng.sample(["a", "b", "c"], rng.randint(1, 3))
            picks = [(rng.choice(earlier), p) for p in sorted(ports)]
        else:
            picks = [(rng.choice(earlier), "value")]
        sources[node_id] = [(src, rng.choice(outs[src]), port) for src, port in picks]
        if kind == "cond":
            nodes.append(node(node_id, "logic.condition", operator="equals", value=rng.choice("ab")))
            outs[node_id] = ["true", "false"]
        elif kind == "join":
            nodes.append(node(node_id, "test.join"))
            outs[node_id] = ["joined"]
        else:
            spec = node(node_id, f"test.{kind}")
            nodes.append(with_policy(spec, retries=1, backoff_s=1) if kind == "flaky" else spec)
            outs[node_id] = ["value"]
    edges = [edge(src, sport, target, tport) for target, ins in sources.items() for src, sport, tport in ins]
    return app(nodes, edges), sources


def expected_outputs(graph: dict[str, Any], sources: dict[str, list[tuple[str, str, str]]],
                     text: str) -> dict[str, dict[str, Any] | None]:
    """Each node's outputs by the rules, or None where it must be skipped."""
    result: dict[str, dict[str, Any] | None] = {"in": {"text": text}}
    for spec in graph["nodes"][1:]:
        arrived = {}
        for src, sport, tport in sources[spec["id"]]:
            delivered = result[src]
            if delivered is not None and sport in delivered:
                arrived[tport] = delivered[sport]
        kind = spec["type"]
        if not arrived:
            result[spec["id"]] = None
        elif kind == "logic.condition":
            value = arrived["value"]
            result[spec["id"]] = {"true" if value == spec["config"]["value"] else "false": value}
        elif kind == "test.join":
            result[spec["id"]] = {"joined": ",".join(f"{k}={v}" for k, v in sorted(arrived.items()))}
        else:
            result[spec["id"]] = {"value": arrived["value"]}
    return result


@pytest.mark.parametrize("seed", range(60))
def test_random_apps_follow_the_branching_rules(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    graph, sources = random_app(rng)
    failed_once: set[str] = set()

    def flaky(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        if ctx.node_id not in failed_once:
            failed_once.add(ctx.node_id)
            raise RuntimeError("first attempt fails")
        return {"value": inputs.value}

    ex = build(graph, echo_block([]), join_block(),
               make_block("test.flaky", inputs={"value": str}, outputs={"value": str}, run=flaky),
               make_deferred_block("test.ask", inputs={"value": str}, outputs={"value": str},
                                   start=lambda inputs, ctx: Suspend("external", port_values(inputs))),
               clock=clock)
    text = rng.choice("ab")
    state = new_run(clock, text=text)

    events = run_to_end(ex, state, clock, answer=lambda node_id, waiting: dict(waiting["payload"]))

    assert state.status is RunStatus.succeeded
    for node_id, outputs in expected_outputs(graph, sources, text).items():
        n = state.node(node_id)
        if outputs is None:
            assert n.status is NodeStatus.skipped, node_id
        else:
            assert (n.status, n.outputs) == (NodeStatus.succeeded, outputs), node_id
    # A node starts only after every one of its sources is done, and runs again only to retry.
    done: set[str | None] = set()
    for event in events:
        if isinstance(event, NodeStarted):
            assert all(src in done for src, _, _ in sources.get(event.node_id or "", [])), event.node_id
        if isinstance(event, NodeSucceeded | NodeSkipped):
            assert event.node_id not in done
            done.add(event.node_id)
    ran = [i for i, n in state.nodes.items() if n.status is NodeStatus.succeeded]
    assert sorted(str(i) for i in started(events)) == sorted(ran + list(failed_once))
    assert summary(replayed(ex, state, events)) == summary(state)
