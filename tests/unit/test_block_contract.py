"""The block contract at run time: what a block emits is held to the output ports it declares."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from blocks.base import Block, BlockContext, Suspend
from blocks.registry import default_registry
from builder.executor import Executor, NodeStatus, RunState, RunStatus
from builder.graph import Graph
from builder.validation import analyze
from tests.factories import edge, make_block, make_deferred_block, node

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def run_block(block_type: type[Block], *, wired: str = "value",
              result: dict[str, Any] | None = None) -> RunState:
    """Run in.text → x → out, to its end; answer a deferred x with `result`."""
    graph = {"schema_version": 1, "nodes": [
        node("in", "trigger.api", fields=[{"name": "text", "type": "string"}]),
        node("x", block_type.type),
        node("out", "output", fields=[{"name": "value", "type": "any", "required": False}]),
    ], "edges": [edge("in", "text", "x", "text"), edge("x", wired, "out", "value")]}
    analysis = analyze(Graph.model_validate(graph), default_registry().extended(block_type))
    assert analysis.valid, [p.message for p in analysis.problems]
    executor = Executor(analysis, clock=lambda: T0)
    state = RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                     inputs={"text": "hi"}, created_at=T0)
    list(executor.drive(state))
    if state.node("x").status is NodeStatus.waiting:
        state.node("x").result = result or {}
        list(executor.drive(state))
    return state


def emitting(outputs: Mapping[str, Any], **ports: Any) -> type[Block]:
    """An inline block with input `text` and these output ports, emitting `outputs`."""
    def run(inputs: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
        return outputs

    return make_block("test.emit", inputs={"text": str}, outputs=ports, run=run)


def test_a_value_of_the_wrong_type_fails_the_node_naming_block_port_type_and_value() -> None:
    state = run_block(emitting({"value": 42}, value=str))
    x = state.node("x")
    assert x.status is NodeStatus.failed
    assert x.error_type == "contract_broken"
    assert x.error == "block test.emit broke its output contract: 'value': expected string, got int 42"
    assert state.status is RunStatus.failed
    assert "Traceback" not in (state.error or {})["message"]


@pytest.mark.parametrize(("port_type", "value"), [
    (int, 3), (float, 3), (float, 2.5), (bool, False), (dict, {"a": 1}), (list, [1]), (Any, object()),
])
def test_values_of_the_declared_type_pass(port_type: Any, value: Any) -> None:
    state = run_block(emitting({"value": value}, value=port_type))
    assert state.node("x").status is NodeStatus.succeeded
    assert state.node("x").outputs == {"value": value}


@pytest.mark.parametrize(("port_type", "value", "shown"), [
    (int, True, "expected integer, got bool True"),      # JSON true is not a number
    (int, 2.5, "expected integer, got float 2.5"),
    (list, "abc", "expected array, got str 'abc'"),
    (dict, [1, 2], "expected object, got list [1, 2]"),
    (str, None, "expected string, got null"),           # `str` does not admit None
])
def test_wrong_values_are_reported_as_they_came(port_type: Any, value: Any, shown: str) -> None:
    state = run_block(emitting({"value": value}, value=port_type))
    assert state.node("x").error == f"block test.emit broke its output contract: 'value': {shown}"


def test_a_required_port_left_out_breaks_the_contract_but_an_optional_branch_does_not() -> None:
    missing = run_block(emitting({"value": "a"}, value=str, count=int))
    assert missing.node("x").error == \
        "block test.emit broke its output contract: 'count': required integer port not emitted"
    # A condition emits only its taken branch: ports with a default are optional.
    branch = run_block(emitting({"yes": "a"}, yes=(str | None, None), no=(str | None, None)),
                       wired="yes")
    assert branch.node("x").status is NodeStatus.succeeded
    assert branch.status is RunStatus.succeeded and branch.outputs == {"value": "a"}


def test_null_passes_on_a_port_that_admits_it() -> None:
    state = run_block(emitting({"value": None}, value=str | None))
    assert state.node("x").status is NodeStatus.succeeded


def test_a_port_the_block_does_not_declare_fails_the_node_listing_those_it_does() -> None:
    state = run_block(emitting({"value": "a", "extra": 1}, value=str))
    assert state.node("x").error == \
        "block test.emit emitted ports it does not declare: extra (it declares: value)"


def test_a_deferred_block_whose_resume_breaks_the_contract_fails_the_same_way() -> None:
    block = make_deferred_block(
        "test.ask", inputs={"text": str}, outputs={"value": int},
        start=lambda inputs, ctx: Suspend("external"),
        resume=lambda inputs, result, ctx: {"value": result["answer"]})
    ok = run_block(block, result={"answer": 7})
    assert ok.status is RunStatus.succeeded and ok.outputs == {"value": 7}
    broken = run_block(block, result={"answer": "seven"})
    assert broken.node("x").error == \
        "block test.ask broke its output contract: 'value': expected integer, got str 'seven'"
    assert broken.node("x").error_type == "contract_broken"
