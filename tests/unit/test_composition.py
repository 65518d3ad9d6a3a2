"""The pure planning of maps and app calls: which items start, what a map emits, which chains are refused."""

from __future__ import annotations

import uuid

from blocks.app_call import CalleeInterface
from blocks.fields import FieldSpec
from blocks.registry import default_registry
from builder.composition import Child, chain_refusal, plan_map
from builder.graph import Graph
from builder.validation import Limits, analyze
from tests.factories import edge, node


def child(index: int, status: str, attempt: int = 1, error: str | None = None) -> Child:
    """A child run of item `index`."""
    return Child(uuid.uuid4(), index, attempt, status, error)


def test_items_start_in_order_within_the_concurrency_limit() -> None:
    assert plan_map(count=5, concurrency=2, skip=False, attempt=1, children=[]).start == [0, 1]
    running = [child(0, "succeeded"), child(1, "running"), child(2, "queued")]
    assert plan_map(count=5, concurrency=2, skip=False, attempt=1, children=running).start == []
    freed = [child(0, "succeeded"), child(1, "succeeded"), child(2, "running")]
    assert plan_map(count=5, concurrency=2, skip=False, attempt=1, children=freed).start == [3]


def test_stop_fails_at_the_first_failed_item_and_cancels_the_rest() -> None:
    busy = child(3, "running")
    plan = plan_map(count=5, concurrency=3, skip=False, attempt=1,
                    children=[child(0, "succeeded"), child(2, "failed", error="boom"), busy])
    assert plan.done and plan.failed is not None and plan.failed.index == 2
    assert plan.cancel == [busy.run_id] and plan.start == []


def test_skip_collects_the_others_in_order_and_lists_the_failures() -> None:
    done = [child(2, "succeeded"), child(0, "succeeded"), child(1, "failed", error="boom")]
    plan = plan_map(count=3, concurrency=1, skip=True, attempt=1, children=done)
    assert plan.done and [index for index, _ in plan.collect] == [0, 2]
    assert plan.errors == [{"index": 1, "error": "boom"}]


def test_a_retried_map_runs_again_only_the_items_that_failed() -> None:
    earlier = [child(0, "succeeded"), child(1, "failed"), child(2, "cancelled")]
    plan = plan_map(count=3, concurrency=4, skip=False, attempt=2, children=earlier)
    assert not plan.done and plan.start == [1, 2]


def test_cycles_and_deep_chains_are_refused_by_name() -> None:
    a, b, c = ((uuid.uuid4(), name) for name in "abc")
    assert chain_refusal([a, b], a) == "app.call cycle: a → b → a"
    assert chain_refusal([a, b], c) is None
    levels = [(uuid.uuid4(), f"l{i}") for i in range(7)]
    assert chain_refusal(levels[:5], levels[5]) is None
    assert chain_refusal(levels[:6], levels[6]) == ("app.call chain l0 → l1 → l2 → l3 → l4 → l5 → l6 is 6 "
                                                    "calls deep; the limit is 5")


class Apps:
    """A directory of two apps: `callee` (name → text) and `looper`, which calls the app validated."""

    def __init__(self, me: uuid.UUID) -> None:
        self.me = me
        self.callee, self.looper = uuid.uuid4(), uuid.uuid4()

    def interface(self, app_id: uuid.UUID, version: int | None) -> CalleeInterface | str:
        if app_id not in (self.callee, self.looper):
            return f"no app {app_id} in this organization"
        return CalleeInterface(name=self.name(app_id), version=1, inputs=[FieldSpec(name="name")],
                               outputs=[FieldSpec(name="text")])

    def calls(self, app_id: uuid.UUID, version: int | None) -> list[tuple[uuid.UUID, int | None]]:
        return [(self.me, None)] if app_id == self.looper else []

    def name(self, app_id: uuid.UUID) -> str:
        return {self.callee: "callee", self.looper: "looper", self.me: "me"}.get(app_id, str(app_id))


def calling(app_id: uuid.UUID) -> Graph:
    """trigger(name) → app.call → output."""
    return Graph.model_validate({
        "nodes": [node("in", "trigger.api", fields=[{"name": "name"}]),
                  node("call", "app.call", app_id=str(app_id)), node("out", "output")],
        "edges": [edge("in", "name", "call", "name"), edge("call", "text", "out", "text")]})


def test_app_call_ports_come_from_the_callee_and_chains_are_checked() -> None:
    me = uuid.uuid4()
    apps = Apps(me)
    limits = Limits(apps=apps, app=(me, "me"))
    fine = analyze(calling(apps.callee), default_registry(), limits)
    assert fine.valid, fine.problems
    assert list(fine.inputs["call"]) == ["name"] and list(fine.outputs["call"]) == ["text"]

    looping = analyze(calling(apps.looper), default_registry(), limits)
    found = [(p.code, p.message) for p in looping.problems]
    assert found == [("app_call_chain", "app.call cycle: me → looper → me")]

    stranger = uuid.uuid4()
    missing = analyze(calling(stranger), default_registry(), limits)
    assert any(f"no app {stranger} in this organization" in p.message for p in missing.problems)
