"""Testing one node of a draft alone: the checks, and the graph that runs it.

A node test is an ordinary run of a small graph: the draft's node, with its config and policy,
fed by a `trigger.api` node that declares one field per input given and is wired to the node's
ports of those names. So the engine runs it like any run (a deferred block waits for its model
or reviewer, the organization's policies surround a model call) and the test gets a run's trace,
event stream and durability. The node is checked first, each problem named: a node the draft
lacks, an unknown type or bad config, a trigger (test the whole draft instead), side effects not
asked for, and inputs that do not fit its ports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from blocks.base import AnyBlock
from blocks.registry import Registry
from builder.graph import Graph, Node
from builder.problems import Code
from builder.validation import analyze
from core.errors import GraphInvalid, InvalidInputs, InvalidRequest, NotFound


class SideEffectsRefused(InvalidRequest):
    """The node would change something outside Mantle and the request did not allow it."""

    type = "side_effects_refused"


# Problems of a node taken out of its graph that say nothing about the node itself.
_OUT_OF_CONTEXT = {Code.no_trigger, Code.required_input_missing}


def find_node(draft: Graph, node_id: str) -> Node:
    """The draft's node of that id, or NotFound."""
    for node in draft.nodes:
        if node.id == node_id:
            return node
    raise NotFound(f"the draft has no node {node_id!r}", loc=["path", "node_id"])


def testable_block(node: Node, registry: Registry, *, side_effects: bool) -> AnyBlock:
    """The node's configured block, if a node test may run it (else the reason, as an error)."""
    problems = [p for p in analyze(Graph(nodes=[node]), registry).problems if p.code not in _OUT_OF_CONTEXT]
    if problems:
        raise GraphInvalid([p.as_dict() for p in problems])
    block = registry.get(node.type).from_config(node.config)
    if block.trigger:
        raise InvalidRequest(f"node {node.id!r} is a trigger ({block.type}): it has nothing to test alone; "
                             "run the whole draft instead (POST /v1/apps/{app_id}/draft/runs)",
                             loc=["path", "node_id"])
    if block.has_side_effects() and not side_effects:
        raise SideEffectsRefused(
            f"node {node.id!r} ({block.type}) has side effects outside Mantle (it may send a message "
            "or change data elsewhere); send \"side_effects\": true to run it anyway",
            loc=["body", "side_effects"])
    return block


def accept_inputs(block: AnyBlock, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs checked against the block's input ports with the model a run validates them
    into (`Block.inputs_model`), coerced as a run would; InvalidInputs names every port that does
    not fit."""
    ports = block.input_ports()
    listed = ", ".join(f"{p.name} ({p.type})" for p in ports.values()) or "none"
    errors: list[dict[str, Any]] = [
        {"loc": ["body", "inputs", name], "msg": f"the node has no input port {name!r}; its inputs: {listed}",
         "type": "unknown_port"} for name in inputs if name not in ports]
    model = block.inputs_model()
    values: dict[str, Any] = {}
    try:
        values = model.model_validate({k: v for k, v in inputs.items() if k in ports}).model_dump(mode="json")
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            port = err["loc"][0] if err["loc"] else ""
            msg = (f"required input {port!r} ({ports[str(port)].type}) is missing"
                   if err["type"] == "missing" and str(port) in ports else err["msg"])
            errors.append({"loc": ["body", "inputs", *err["loc"]], "msg": msg, "type": err["type"]})
    if errors:
        raise InvalidInputs(errors)
    return {name: values[name] for name in inputs}


def node_test_graph(node: Node, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The graph a node test runs, and its trigger's id: `node` fed `inputs` by a `trigger.api`."""
    trigger = "inputs" if node.id != "inputs" else "inputs_"
    fields = [{"name": name, "type": "any"} for name in inputs]
    graph = {
        "schema_version": 1,
        "nodes": [{"id": trigger, "type": "trigger.api", "config": {"fields": fields}},
                  node.model_dump(mode="json", exclude_unset=True)],
        "edges": [{"source": trigger, "source_port": name, "target": node.id, "target_port": name}
                  for name in inputs],
    }
    return graph, trigger
