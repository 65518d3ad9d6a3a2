"""`flow.map`: run part of the graph once per item of a list and collect the results (deferred).

The graph stays a flat DAG the builder draws: the body is ordinary nodes of the app, named in
`config.body`, wired from the map's per-item ports (`item`, `index` and each `shared` value) and
among themselves. Each item runs that body as a child run of the run that maps (a trigger of
the item's values, the body nodes, an output of the `collect` ports: see builder/composition.py),
so every item has its own node runs, retries, deferred nodes and durability. The run engine
starts the items in order, at most `concurrency` at a time, and when they have ended the map
emits one list per `collect` entry (in item order) and `errors` (items that failed, when
`on_failure` is `skip`; `stop` fails the node at the first failed item and starts no more).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from blocks.base import Block, BlockContext, Execution, Port, PortsFromConfig, Suspend
from blocks.fields import IDENTIFIER, FieldSpec, ports_from_fields
from blocks.suspends import MapWait
from core.errors import MantleError

WAIT_KIND = MapWait.kind
MAX_ITEMS = 10_000
# Output ports every map has; `item`, `index` and the shared values feed the body, the rest
# reach the nodes after the map.
ITEM_PORTS = ("item", "index")
RESERVED = frozenset({"items", *ITEM_PORTS, "errors"})


class CollectSpec(BaseModel):
    """One output of the map: a body node's port, collected from every item into a list."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER, description="The map's output port (a list, one entry per item).")
    node: str = Field(min_length=1, max_length=64, description="The body node whose output is collected.",
                      json_schema_extra={"x-mantle-source": "nodes"})
    port: str = Field(pattern=IDENTIFIER, description="That node's output port.")


class MapConfig(BaseModel):
    """The body run per item, what is collected, and how items run."""

    model_config = ConfigDict(extra="forbid")

    body: list[str] = Field(min_length=1, max_length=200, description=(
        "Ids of the nodes run once per item; they read the map's `item`, `index` and shared ports."),
        json_schema_extra={"x-mantle-source": "nodes"})
    collect: list[CollectSpec] = Field(min_length=1, max_length=50, description=(
        "Body outputs gathered into lists; each becomes an output port of the map."))
    shared: list[FieldSpec] = Field(default_factory=list, max_length=50, description=(
        "Values given to every item unchanged: each is an input port of the map and an output the "
        "body reads."))
    concurrency: int = Field(default=4, ge=1, le=50, description="Items running at the same time at most.")
    max_items: int = Field(default=100, ge=1, le=MAX_ITEMS, description="A longer list fails the node.")
    on_failure: Literal["stop", "skip"] = Field(default="stop", description=(
        "`stop`: the first failed item fails the node; `skip`: leave it out and list it in `errors`."))

    @model_validator(mode="after")
    def _names(self) -> MapConfig:
        seen: set[str] = set()
        for name in [*(c.name for c in self.collect), *(f.name for f in self.shared)]:
            if name in RESERVED:
                raise ValueError(f"{name!r} is a port every map has; choose another name")
            if name in seen:
                raise ValueError(f"port name {name!r} is used twice in collect and shared")
            seen.add(name)
        if len(set(self.body)) != len(self.body):
            raise ValueError("body names a node twice")
        return self


class MapInputs(PortsFromConfig):
    """The list to map over, and one port per config.shared field."""

    items: list[Any]


class MapOutputs(PortsFromConfig):
    """The per-item ports the body reads, one list per config.collect entry, and `errors`."""


class MapBlock(Block[MapConfig, MapInputs, MapOutputs]):
    """Runs its body once per item (in order, a few at a time) and collects the results into lists."""

    type = "flow.map"
    title = "Map"
    description = ("Runs the body nodes once per item of a list, a few at a time, and collects their "
                   "outputs into lists in item order.")
    category = "logic"
    execution = Execution.deferred
    bounded = True
    suspends = (MapWait,)
    dynamic_ports = ("Inputs: `items` and one port per config.shared field. Outputs to the body: `item`, "
                     "`index` and the shared fields; outputs after the map: one list per config.collect "
                     "entry, and `errors`.")

    def input_ports(self) -> dict[str, Port]:
        return {"items": Port("items", "array", True, "The list to map over."),
                **ports_from_fields(self.config.shared)}

    def item_ports(self) -> dict[str, Port]:
        """The ports the body reads, set per item."""
        return {"item": Port("item", "any", False, "The current item."),
                "index": Port("index", "integer", False, "The current item's position, from 0."),
                **ports_from_fields(self.config.shared)}

    def output_ports(self) -> dict[str, Port]:
        collected = {c.name: Port(c.name, "array", False, f"{c.node}.{c.port} of every item")
                     for c in self.config.collect}
        errors = Port("errors", "array", False, "Items that failed (with on_failure skip): index and error.")
        return {**self.item_ports(), **collected, "errors": errors}

    def has_side_effects(self) -> bool:
        """The body may do anything its blocks do."""
        return True

    def start(self, inputs: MapInputs, ctx: BlockContext) -> Suspend | MapOutputs:
        items = inputs.items  # a list: the inputs model checked it
        if len(items) > self.config.max_items:
            raise MantleError(f"the list has {len(items)} items; this map takes at most "
                              f"{self.config.max_items} (config.max_items)")
        if not items:
            return self.emit({**{c.name: [] for c in self.config.collect}, "errors": []})
        return MapWait(items=len(items)).suspend()

    def resume(self, inputs: MapInputs, result: Mapping[str, Any], ctx: BlockContext) -> MapOutputs:
        return self.emit(result.get("outputs") or {})


BLOCKS = [MapBlock]
