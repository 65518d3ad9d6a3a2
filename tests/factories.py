"""Small factories for graphs and throwaway block types (no mocks of the engine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from blocks.base import Block, BlockContext, Execution, Suspend


def node(node_id: str, block_type: str, **config: Any) -> dict[str, Any]:
    """A node of a graph."""
    return {"id": node_id, "type": block_type, "config": config}


def edge(source: str, source_port: str, target: str, target_port: str) -> dict[str, Any]:
    """An edge of a graph."""
    return {"source": source, "source_port": source_port, "target": target, "target_port": target_port}


def greeter_graph() -> dict[str, Any]:
    """trigger.api(name) → text.template → output: the smallest valid app."""
    return {
        "schema_version": 1,
        "nodes": [
            {**node("in", "trigger.api", fields=[{"name": "name", "type": "string"}]),
             "position": {"x": 10, "y": 20}},
            node("greet", "text.template", template="Hello, {{ name }}!"),
            node("out", "output", fields=[{"name": "text", "type": "string"}]),
        ],
        "edges": [edge("in", "name", "greet", "name"), edge("greet", "text", "out", "text")],
    }


def _field(spec: Any) -> Any:
    """A pydantic field definition: a type is a required port, `(type, default)` an optional one."""
    return spec if isinstance(spec, tuple) else (spec, ...)


# The outputs model of a throwaway block keeps whatever its function emits, undeclared ports and
# values of the wrong type included (built with model_construct), so the executor's check of the
# block's contract is what a test sees.
_LOOSE = ConfigDict(extra="allow")

# What a throwaway block's functions receive: its inputs model (read ports as attributes, or
# `port_values(inputs)` for those that arrived); they return a mapping of the ports to emit.
RunFn = Callable[[Any, BlockContext], Mapping[str, Any]]


def make_block(
    name: str,
    inputs: Mapping[str, Any] | None = None,
    outputs: Mapping[str, Any] | None = None,
    run: RunFn | None = None,
    *,
    trigger: bool = False,
    execution: Execution = Execution.inline,
    config: type[BaseModel] | None = None,
) -> type[Block[Any, Any, Any]]:
    """A throwaway block type: `make_block("test.add", inputs={"x": int}, outputs={"y": int})`; a port
    given as `(type, default)` is optional (`outputs={"maybe": (str | None, None)}`)."""
    in_model = create_model(f"{name}In", **{k: _field(v) for k, v in (inputs or {}).items()})
    out_model = create_model(f"{name}Out", __config__=_LOOSE,
                             **{k: _field(v) for k, v in (outputs or {}).items()})
    attrs: dict[str, Any] = {
        "type": name, "description": f"test block {name}", "category": "test",
        "trigger": trigger, "execution": execution, "Inputs": in_model, "Outputs": out_model,
    }
    if config is not None:
        attrs["Config"] = config
    if run is not None:
        attrs["run"] = lambda self, inputs, ctx: self.Outputs.model_construct(**run(inputs, ctx))
    return type(name.replace(".", "_"), (Block,), attrs)


def make_join_block(
    name: str,
    inputs: Mapping[str, type],
    outputs: Mapping[str, type] | None = None,
    run: RunFn | None = None,
) -> type[Block[Any, Any, Any]]:
    """A throwaway block whose inputs are all optional: it joins branches, some of them skipped."""
    base = make_block(name, outputs=outputs, run=run)
    optional = create_model(f"{name}In", **{k: (v | None, None) for k, v in inputs.items()})  # type: ignore[call-overload]
    return type(base.__name__, (base,), {"Inputs": optional})


def make_deferred_block(
    name: str,
    inputs: Mapping[str, type] | None = None,
    outputs: Mapping[str, type] | None = None,
    start: Callable[[Any, BlockContext], Suspend] | None = None,
    resume: Callable[[Any, Mapping[str, Any], BlockContext], Mapping[str, Any]] | None = None,
) -> type[Block[Any, Any, Any]]:
    """A throwaway deferred block: `start` suspends its node, `resume` turns a result into outputs
    (both receive the inputs model)."""
    base = make_block(name, inputs, outputs, execution=Execution.deferred)
    attrs: dict[str, Any] = {}
    if start is not None:
        attrs["start"] = lambda self, inputs, ctx: start(inputs, ctx)
    if resume is not None:
        attrs["resume"] = lambda self, inputs, result, ctx: self.Outputs.model_construct(
            **resume(inputs, result, ctx))
    return type(base.__name__, (base,), attrs)
