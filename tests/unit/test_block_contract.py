"""The block contract: what a block emits is held to the output ports it declares; every block
module is registered; every kind of wait a block may start has a handler."""

from __future__ import annotations

import importlib
import pkgutil
import typing
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

import blocks
from blocks import suspends
from blocks.base import AnyBlock, Block, BlockContext, InputMismatch, PortsFromConfig, Suspend
from blocks.governance_policy import GovernancePolicyBlock, PolicyInputs
from blocks.human_review import HumanReviewBlock, ReviewInputs
from blocks.registry import default_registry
from blocks.text_template import TemplateBlock, TemplateOutputs
from builder.executor import Executor, RunState
from builder.graph import Graph
from builder.validation import analyze
from core.statuses import NodeStatus, RunStatus
from tests.factories import edge, make_block, make_deferred_block, node
from worker.engine import SERVED_KINDS, MissingWaitHandler, require_wait_handlers
from worker.hooks import handled_kinds, missing_handlers

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def run_block(block_type: type[AnyBlock], *, wired: str = "value", result: dict[str, Any] | None = None,
              handled: frozenset[str] | None = None, text_type: str = "string") -> RunState:
    """Run in.text → x → out, to its end; answer a deferred x with `result`."""
    graph = {"schema_version": 1, "nodes": [
        node("in", "trigger.api", fields=[{"name": "text", "type": text_type}]),
        node("x", block_type.type),
        node("out", "output", fields=[{"name": "value", "type": "any", "required": False}]),
    ], "edges": [edge("in", "text", "x", "text"), edge("x", wired, "out", "value")]}
    analysis = analyze(Graph.model_validate(graph), default_registry().extended(block_type))
    assert analysis.valid, [p.message for p in analysis.problems]
    executor = Executor(analysis, clock=lambda: T0, handled_kinds=handled)
    state = RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(),
                     inputs={"text": "hi"}, created_at=T0)
    list(executor.drive(state))
    if state.node("x").status is NodeStatus.waiting:
        state.node("x").result = result or {}
        list(executor.drive(state))
    return state


def emitting(outputs: Mapping[str, Any], **ports: Any) -> type[AnyBlock]:
    """An inline block with input `text` and these output ports, emitting `outputs`."""
    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
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


# -- typed end to end: each block's models ----------------------------------------------------


def test_every_block_names_its_models_and_its_methods_take_and_return_them() -> None:
    wrong: list[str] = []
    for block in default_registry():
        named = [typing.get_args(base) for base in block.__dict__.get("__orig_bases__", ())
                 if typing.get_origin(base) is Block]
        if named != [(block.Config, block.Inputs, block.Outputs)]:
            wrong.append(f"{block.type}: class {block.__name__}(Block[Config, Inputs, Outputs]) expected")
        for method in ("run", "start", "resume"):
            if getattr(block, method) is getattr(Block, method):
                continue  # not overridden: the base's own (raises, or emits the result)
            hints = typing.get_type_hints(getattr(block, method))
            returns = {block.Outputs} if method != "start" else \
                {Suspend, block.Outputs, Suspend | block.Outputs}
            if hints.get("inputs") is not block.Inputs or hints.get("return") not in returns:
                wrong.append(f"{block.type}.{method}({hints.get('inputs')}) -> {hints.get('return')}")
    assert wrong == []


def test_a_block_that_returns_a_dict_instead_of_its_outputs_model_breaks_its_contract() -> None:
    typed = make_block("test.untyped", inputs={"text": str}, outputs={"value": str})
    untyped = type("test_untyped", (typed,), {"run": lambda self, inputs, ctx: {"value": inputs.text}})
    state = run_block(untyped)
    assert state.node("x").error_type == "contract_broken"
    assert state.node("x").error == "block test.untyped returned dict, not its outputs model test.untypedOut"


def test_a_block_receives_its_inputs_model_and_an_unset_output_field_is_not_emitted() -> None:
    seen: list[Any] = []

    def run(inputs: Any, ctx: BlockContext) -> Mapping[str, Any]:
        seen.append(inputs)
        return {"yes": inputs.text}

    state = run_block(make_block("test.branch", inputs={"text": str},
                                 outputs={"yes": (str | None, None), "no": (str | None, None)}, run=run),
                      wired="yes")
    assert type(seen[0]).__name__ == "test.branchIn" and seen[0].text == "hi"
    assert state.node("x").outputs == {"yes": "hi"}  # `no` keeps its default, unset: not emitted


def test_a_value_that_does_not_fit_a_typed_input_port_fails_the_node_naming_it() -> None:
    state = run_block(make_block("test.count", inputs={"text": int}, outputs={"value": int},
                                 run=lambda inputs, ctx: {"value": inputs.text}), text_type="any")
    assert state.node("x").error_type == InputMismatch.type
    assert str(state.node("x").error).startswith(
        "block test.count cannot take its inputs: text: Input should be a valid integer")


def test_ports_made_by_config_are_a_model_made_once_per_block_with_a_field_per_port() -> None:
    block = TemplateBlock.from_config({"template": "{{ name }} {{ json }}"})
    model = block.inputs_model()
    assert model is block.inputs_model() and issubclass(model, PortsFromConfig)
    assert set(model.model_fields) == {"name"}  # `json` is a BaseModel method: an extra value instead
    ctx = BlockContext(run_id=uuid.uuid4(), node_id="x", org_id=uuid.uuid4(), app_id=uuid.uuid4())
    assert block.run(block.typed_inputs({"name": "Ada", "json": "{}"}), ctx) == TemplateOutputs(text="Ada {}")
    with pytest.raises(InputMismatch, match="name: Field required"):
        block.typed_inputs({"json": "{}"})


# -- every block registered, every wait handled ----------------------------------------------


def test_every_block_class_in_the_blocks_package_is_listed_by_its_module_and_registered() -> None:
    registry = default_registry()
    defined: dict[str, type[AnyBlock]] = {}
    unlisted: list[str] = []
    for module_info in pkgutil.iter_modules(blocks.__path__):
        module = importlib.import_module(f"blocks.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Block) and value is not Block \
                    and value.__module__ == module.__name__:
                defined[value.type] = value
                if value not in getattr(module, "BLOCKS", ()):
                    unlisted.append(f"{module.__name__}.{value.__name__}")
    assert len(defined) >= 19
    assert unlisted == []
    assert {name: registry.get(name) for name in registry.names()} == defined


def test_every_deferred_block_declares_its_waits_and_every_kind_has_a_handler() -> None:
    registry = default_registry()
    undeclared = [b.type for b in registry if b.execution == "deferred" and not b.suspends]
    assert undeclared == []
    assert missing_handlers(registry, SERVED_KINDS) == []
    assert set(suspends.KINDS) <= handled_kinds(SERVED_KINDS)


class LostWait(suspends.SuspendPayload):
    """A wait nobody serves."""

    kind = "test.lost"


def lost_block() -> type[AnyBlock]:
    """A deferred block that suspends with a kind no worker handles."""
    block = make_deferred_block("test.lost", inputs={"text": str}, outputs={"value": str},
                                start=lambda inputs, ctx: LostWait().suspend())
    return type(block.__name__, (block,), {"suspends": (LostWait,)})


def test_a_worker_refuses_to_start_when_a_block_waits_for_a_kind_nobody_handles() -> None:
    with pytest.raises(MissingWaitHandler) as refused:
        require_wait_handlers(default_registry().extended(lost_block()))
    assert "test.lost: test.lost" in str(refused.value)
    assert "worker.hooks.on_wait" in str(refused.value)


def test_a_wait_nobody_handles_fails_its_node_at_once_instead_of_timing_out() -> None:
    state = run_block(lost_block(), handled=handled_kinds(SERVED_KINDS))
    assert state.node("x").status is NodeStatus.failed
    assert state.node("x").error == \
        "block test.lost suspended with kind 'test.lost', which no wait handler of this worker takes"


def test_a_wait_of_a_kind_the_block_does_not_declare_breaks_its_contract() -> None:
    block = type("test_sly", (lost_block(),), {"suspends": (suspends.TimerWait,)})
    state = run_block(block)
    assert state.node("x").error == \
        "block test.lost suspended with kind 'test.lost'; it declares timer"


def test_both_review_blocks_ask_with_the_one_review_payload() -> None:
    ctx = BlockContext(run_id=uuid.uuid4(), node_id="x", org_id=uuid.uuid4(), app_id=uuid.uuid4())
    asked = HumanReviewBlock.from_config({"deadline_s": 60}).start(ReviewInputs(text="hello"), ctx)
    flagged = GovernancePolicyBlock.from_config({"deny_list": {"keywords": ["hello"], "action": "review"}})
    policy = flagged.start(PolicyInputs(text="hello"), ctx)
    assert isinstance(asked, Suspend) and isinstance(policy, Suspend)
    assert asked.kind == policy.kind == "review"
    review, screened = suspends.ReviewRequest.read(asked.payload), suspends.ReviewRequest.read(policy.payload)
    assert (review.text, review.deadline_s, review.findings) == ("hello", 60, None)
    assert screened.text == "hello" and screened.findings
    assert screened.actions == ["approve", "edit", "reject"]
