"""A timer node (`flow.wait`) is part of the run's record: its due time is stored with the node and
is the run's next wake-up, so whoever advances the run after it is due finishes the wait; no
message has to survive."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from blocks.registry import default_registry
from builder.executor import Executor, NodeWaiting, RunState
from builder.graph import Graph
from builder.validation import analyze
from core.statuses import NodeStatus, RunStatus
from tests.factories import edge, node

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


CLOCK = Clock()


def timer_app(seconds: float) -> Executor:
    """An executor of trigger → flow.wait(seconds) → output, on the shared clock."""
    graph = {"nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                       node("pause", "flow.wait", seconds=seconds), node("out", "output")],
             "edges": [edge("in", "text", "pause", "value"), edge("pause", "value", "out", "text")]}
    analysis = analyze(Graph.model_validate(graph), default_registry())
    assert analysis.valid, analysis.problems
    return Executor(analysis, clock=CLOCK)


def test_a_timer_is_the_runs_wake_up_and_finishes_once_due_whoever_advances_the_run() -> None:
    CLOCK.now = T0
    executor = timer_app(90)
    state = RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                     inputs={"text": "later"}, created_at=T0)
    events = list(executor.drive(state))
    assert state.status is RunStatus.waiting
    assert any(isinstance(e, NodeWaiting) and e.node_id == "pause" for e in events)
    assert executor.next_wakeup(state) == T0 + timedelta(seconds=90)

    # A fresh executor, as a new worker would have, with only what was recorded.
    recorded = RunState(run_id=state.run_id, org_id=state.org_id, app_id=state.app_id,
                        inputs=state.inputs, created_at=T0)
    for event in events:
        executor.apply(recorded, event)
    fresh = timer_app(90)
    CLOCK.now = T0 + timedelta(seconds=89)
    assert list(fresh.drive(recorded)) == [] and recorded.node("pause").status is NodeStatus.waiting
    CLOCK.now = T0 + timedelta(seconds=90)
    list(fresh.drive(recorded))
    assert recorded.status is RunStatus.succeeded and recorded.outputs == {"text": "later"}
    assert fresh.next_wakeup(recorded) is None
