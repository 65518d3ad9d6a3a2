"""Which nodes a retry reuses: those that succeeded and read only from reused nodes."""

from __future__ import annotations

from typing import Any

from blocks.registry import default_registry
from builder.graph import Graph
from builder.retry import reusable
from builder.validation import Analysis, analyze
from tests.factories import edge, node


def analysis(graph: dict[str, Any]) -> Analysis:
    found = analyze(Graph.model_validate(graph), default_registry())
    assert found.valid, found.problems
    return found


def two_branches() -> dict[str, Any]:
    """in → left → out_left, in → right → out_right (two independent branches)."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "text"}]),
                  node("left", "text.template", template="L {{ text }}"),
                  node("right", "text.template", template="R {{ text }}"),
                  node("out_left", "output", fields=[{"name": "l"}]),
                  node("out_right", "output", fields=[{"name": "r"}])],
        "edges": [edge("in", "text", "left", "text"), edge("in", "text", "right", "text"),
                  edge("left", "text", "out_left", "l"), edge("right", "text", "out_right", "r")],
    }


def test_a_failed_node_and_everything_after_it_run_again() -> None:
    plan = analysis(two_branches())
    succeeded = {"in": "trigger.api", "right": "text.template", "out_right": "output"}
    # `left` failed: it and `out_left` (skipped when the run failed) run again; the other branch is kept.
    assert reusable(plan, succeeded) == ["in", "right", "out_right"]


def test_a_node_reading_from_one_that_runs_again_runs_again_too() -> None:
    plan = analysis(two_branches())
    # `left` succeeded, but `in` did not (say it failed with on_error: continue): nothing is reused.
    assert reusable(plan, {"left": "text.template", "right": "text.template", "out_left": "output"}) == []


def test_a_node_whose_block_type_changed_is_not_reused() -> None:
    plan = analysis(two_branches())
    succeeded = {"in": "trigger.api", "left": "governance.policy", "right": "text.template"}
    assert reusable(plan, succeeded) == ["in", "right"]


def test_nodes_the_graph_no_longer_has_are_ignored() -> None:
    plan = analysis(two_branches())
    assert reusable(plan, {"in": "trigger.api", "gone": "text.template"}) == ["in"]
