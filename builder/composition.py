"""Loops and composition, planned without side effects: `flow.map` bodies and `app.call` chains.

Both run other graphs as child runs, so each item or callee gets everything a run has (its own
node runs, retries, deferred nodes, durability, a trace) and the engine only has to start
children and read how they ended. What to start, when a map is over and what it emits, which
call chains are refused: all of that is decided here, from plain values, so it is the same in
the validator, the engine and a unit test. The engine (worker/composition.py) records it.

A map's body is ordinary nodes of the app (the graph stays a flat DAG the builder can draw).
The validator checks the body's wiring and takes the body nodes out of the run's `order`: they
run only inside the items, each of which runs `body_graph` (the map node replaced by a trigger
of the same id with the item's ports, the body, and an output node of the collected ports).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blocks.app_call import AppCallBlock, AppDirectory, CalleeInterface
from blocks.base import AnyBlock
from blocks.fields import FieldSpec
from blocks.flow_map import ITEM_PORTS, MapBlock
from blocks.output import OutputBlock
from builder.problems import Code, Problem
from core.statuses import TERMINAL, RunStatus

# How many `app.call`s deep a chain may go (A calls B is one); a cycle is refused at any depth.
MAX_CALL_DEPTH = 5
# Triggers whose fields an `app.call` can fill (others take an SMS, a webhook or a schedule).
CALLABLE_TRIGGERS = frozenset({"trigger.api", "webapp.input"})


def collector_id(map_id: str, taken: Iterable[str]) -> str:
    """The id of the output node of a map's item graph: readable when it fits and is free."""
    wanted = f"{map_id}:collected"
    if len(wanted) <= 64 and wanted not in set(taken):
        return wanted
    return f"collected:{hashlib.sha256(map_id.encode()).hexdigest()[:16]}"


# -- validating bodies -------------------------------------------------------------------------

def check_bodies(blocks: Mapping[str, AnyBlock], edges: Iterable[Any], node_ids: Sequence[str]) -> tuple[
        list[Problem], dict[str, list[str]]]:
    """Problems of every map's body wiring, and the body node ids of each map."""
    problems: list[Problem] = []
    bodies: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    known = set(node_ids)

    def bad(message: str, node_id: str, port: str | None = None, path: str | None = None) -> None:
        problems.append(Problem(Code.map_body, message, node_id, port, path=path))

    for map_id, block in blocks.items():
        if not isinstance(block, MapBlock):
            continue
        members: list[str] = []
        for member in block.config.body:
            where, other = f"config.body: {member!r}", blocks.get(member)
            if member not in known:
                bad(f"{where} is not a node of the graph", map_id, path="config.body")
            elif member == map_id:
                bad(f"{where} is the map itself", map_id, path="config.body")
            elif member in owner:
                bad(f"{where} is already in the body of {owner[member]!r}", map_id, path="config.body")
            elif other is not None and (other.trigger or isinstance(other, MapBlock | OutputBlock)):
                bad(f"{where} is a {other.type} node: a body runs inside each item, so it holds no "
                    "trigger, output or map (call an app that maps instead)", map_id, path="config.body")
            else:
                owner[member] = map_id
                members.append(member)
        bodies[map_id] = members
        for i, spec in enumerate(block.config.collect):
            path = f"config.collect.{i}"
            collected = blocks.get(spec.node)
            if spec.node not in members:
                bad(f"{path}: node {spec.node!r} is not in the body", map_id, path=path)
            elif collected is not None and spec.port not in collected.output_ports():
                outputs = ", ".join(collected.output_ports()) or "none"
                bad(f"{path}: node {spec.node!r} has no output port {spec.port!r}; its outputs: {outputs}",
                    map_id, path=path)
    for edge in edges:
        source_map, target_map = owner.get(edge.source), owner.get(edge.target)
        wire = f"{edge.source}.{edge.source_port} → {edge.target}.{edge.target_port}"
        source = blocks.get(edge.source)
        if isinstance(source, MapBlock):
            per_item = source.item_ports()
            if edge.source_port in per_item and target_map != edge.source:
                bad(f"{wire}: a map's {edge.source_port!r} is set per item; only its body nodes may read it",
                    edge.target, edge.target_port)
            elif edge.source_port not in per_item and target_map == edge.source:
                bad(f"{wire}: the body reads the map's per-item ports ({', '.join(per_item)}), not its "
                    "results", edge.target, edge.target_port)
            if edge.source_port in per_item or target_map == edge.source:
                continue
        if target_map is not None and source_map != target_map:
            bad(f"{wire}: body nodes of {target_map!r} read only the map's per-item ports and other body "
                "nodes (give it other values as config.shared)", edge.target, edge.target_port)
        elif source_map is not None and target_map != source_map:
            bad(f"{wire}: a body node's outputs leave the map only through config.collect of "
                f"{source_map!r}", edge.source, edge.source_port)
    return problems, bodies


def body_graph(graph: Mapping[str, Any], map_id: str) -> dict[str, Any]:
    """The graph one item of map `map_id` runs: a `trigger.api` of the item's ports in the map's
    place (same id, so the body's edges still hold), the body nodes, and an output of the
    collected ports. `graph` is a valid graph as stored."""
    nodes = {n["id"]: n for n in graph.get("nodes", [])}
    config = nodes[map_id].get("config", {})
    body = set(config.get("body", []))
    fields: list[dict[str, Any]] = [{"name": "item", "type": "any", "required": False},
                                    {"name": "index", "type": "integer", "required": False}]
    fields += [{**FieldSpec.model_validate(f).model_dump(mode="json"), "required": False}
               for f in config.get("shared", [])]
    collect = config.get("collect", [])
    members = [n for n in graph.get("nodes", []) if n["id"] in body]
    out = collector_id(map_id, body)
    return {
        "schema_version": 1,
        "nodes": [{"id": map_id, "type": "trigger.api", "config": {"fields": fields}}, *members,
                  {"id": out, "type": "output", "config": {"fields": [
                      {"name": c["name"], "type": "any", "required": False} for c in collect]}}],
        "edges": [*(e for e in graph.get("edges", [])
                    if e["target"] in body and (e["source"] in body or e["source"] == map_id)),
                  *({"source": c["node"], "source_port": c["port"], "target": out, "target_port": c["name"]}
                    for c in collect)],
        "settings": dict(graph.get("settings") or {}),
    }


def item_inputs(block: MapBlock, inputs: Mapping[str, Any], index: int) -> dict[str, Any]:
    """What item `index`'s run starts with: the item, its index and the shared values."""
    values = {"item": inputs["items"][index], "index": index}
    values.update({f.name: inputs.get(f.name) for f in block.config.shared})
    return values


# -- planning a map ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Child:
    """A child run as the planner sees it."""

    run_id: uuid.UUID
    index: int | None
    attempt: int
    status: str
    error: str | None = None
    error_type: str | None = None


@dataclass(slots=True)
class MapPlan:
    """What a map does now: items to start, children to cancel, and, once it is over, which
    children to collect (index, run) or the item that failed it."""

    start: list[int] = field(default_factory=list)
    cancel: list[uuid.UUID] = field(default_factory=list)
    done: bool = False
    collect: list[tuple[int, uuid.UUID]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failed: Child | None = None


def plan_map(*, count: int, concurrency: int, skip: bool, attempt: int, children: Iterable[Child]) -> MapPlan:
    """Decide a map's next moves from its children so far.

    An item counts by its latest child: succeeded (from any attempt of the node: a retried map
    never repeats a finished item), still running, failed in this attempt, or to be run again
    (it failed in an earlier attempt). Items start in order, `concurrency` at a time."""
    latest: dict[int, Child] = {}
    for child in children:
        if child.index is None or not 0 <= child.index < count:
            continue
        held = latest.get(child.index)
        if held is None or child.attempt > held.attempt:
            latest[child.index] = child
    plan = MapPlan()
    running = [c for c in latest.values() if c.status not in TERMINAL]
    failed = sorted((c for c in latest.values() if c.status in TERMINAL and c.status != RunStatus.succeeded
                     and c.attempt == attempt), key=lambda c: c.index or 0)
    if failed and not skip:
        plan.done, plan.failed = True, failed[0]
        plan.cancel = [c.run_id for c in running]
        return plan
    resolved = {i for i, c in latest.items() if c.status == RunStatus.succeeded} | {c.index for c in failed}
    if len(resolved) == count:
        plan.done = True
        plan.collect = sorted((i, c.run_id) for i, c in latest.items() if c.status == RunStatus.succeeded)
        plan.errors = [{"index": c.index, "error": c.error or c.status} for c in failed]
        return plan
    busy = {c.index for c in running}
    room = concurrency - len(running)
    for index in range(count):
        if room <= 0:
            break
        if index not in resolved and index not in busy:
            plan.start.append(index)
            room -= 1
    return plan


def map_outputs(block: MapBlock, collected: Sequence[tuple[int, Mapping[str, Any] | None]],
                errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The map's outputs: one list per collected port, in item order, and the failed items."""
    ordered = sorted(collected, key=lambda pair: pair[0])
    outputs: dict[str, Any] = {c.name: [(outputs or {}).get(c.name) for _, outputs in ordered]
                               for c in block.config.collect}
    outputs["errors"] = errors
    return outputs


# -- app calls -----------------------------------------------------------------------------------

def interface_of(analysis: Any, name: str, number: int) -> CalleeInterface | str:
    """What an app.call of this valid analysis sees: its trigger's fields and its outputs (or why
    it cannot be called)."""
    trigger = analysis.blocks.get(analysis.trigger or "")
    if trigger is None or trigger.type not in CALLABLE_TRIGGERS:
        kind = trigger.type if trigger is not None else "no"
        return (f"app {name!r} starts with a {kind} trigger; app.call runs apps that start with "
                f"{' or '.join(sorted(CALLABLE_TRIGGERS))}")
    inputs = [FieldSpec(name=p.name, type=p.type, required=p.required, description=p.description)
              for p in trigger.output_ports().values()]
    outputs: dict[str, FieldSpec] = {}
    for node_id in analysis.order:
        block = analysis.blocks[node_id]
        if isinstance(block, OutputBlock):
            for f in block.config.fields:
                outputs.setdefault(f.name, FieldSpec(name=f.name, type=f.type, required=False,
                                                     description=f.description))
    return CalleeInterface(name=name, version=number, inputs=inputs, outputs=list(outputs.values()))


def calls_in(graph: Mapping[str, Any]) -> list[tuple[str, uuid.UUID, int | None]]:
    """(node id, app id, version or None for latest) of every well-formed app.call of a stored graph."""
    found = []
    for node in graph.get("nodes", []):
        if node.get("type") != AppCallBlock.type:
            continue
        config = node.get("config") or {}
        try:
            app_id = uuid.UUID(str(config.get("app_id")))
        except ValueError:
            continue
        version = config.get("version", "latest")
        found.append((str(node.get("id")), app_id, version if isinstance(version, int) else None))
    return found


def chain_refusal(chain: Sequence[tuple[uuid.UUID, str]], callee: tuple[uuid.UUID, str]) -> str | None:
    """Why the last app of `chain` (the apps calling each other so far, outermost first) may not
    call `callee`: a cycle, or a chain deeper than `MAX_CALL_DEPTH`; None when it may."""
    names = " → ".join(name for _, name in [*chain, callee])
    if any(app_id == callee[0] for app_id, _ in chain):
        return f"app.call cycle: {names}"
    if len(chain) > MAX_CALL_DEPTH:
        return f"app.call chain {names} is {len(chain)} calls deep; the limit is {MAX_CALL_DEPTH}"
    return None


def call_problems(blocks: Mapping[str, AnyBlock], app: tuple[uuid.UUID, str] | None,
                  apps: AppDirectory) -> list[Problem]:
    """Cycles and chains too deep among the app.call nodes of a graph, following each callee's
    published graph (the version it pins, or its latest)."""
    problems: list[Problem] = []
    root = [app] if app is not None else []
    for node_id, block in blocks.items():
        if not isinstance(block, AppCallBlock) or block.config.interface is None:
            continue
        version = block.config.version
        start = (block.config.app_id, None if version == "latest" else version)
        refusal = _walk(root, start, apps)
        if refusal is not None:
            problems.append(Problem(Code.app_call_chain, refusal, node_id, path="config.app_id"))
    return problems


def _walk(root: list[tuple[uuid.UUID, str]], start: tuple[uuid.UUID, int | None],
          apps: AppDirectory) -> str | None:
    """The first refused chain reachable from calling `start` after `root` (depth first, no recursion)."""
    stack: list[tuple[list[tuple[uuid.UUID, str]], tuple[uuid.UUID, int | None]]] = [(root, start)]
    seen: set[tuple[uuid.UUID, int | None, int]] = set()
    while stack:
        chain, (app_id, version) = stack.pop()
        callee = (app_id, apps.name(app_id))
        refusal = chain_refusal(chain, callee)
        if refusal is not None:
            return refusal
        key = (app_id, version, len(chain))
        if key in seen:
            continue
        seen.add(key)
        stack.extend(([*chain, callee], nxt) for nxt in apps.calls(app_id, version))
    return None


def pin_interfaces(graph: dict[str, Any], blocks: Mapping[str, AnyBlock]) -> dict[str, Any]:
    """A copy of `graph` whose app.call nodes carry the interface the validator resolved, so the
    worker knows their ports without asking (a version is frozen with it)."""
    pinned = {node_id: b.config.interface.model_dump(mode="json") for node_id, b in blocks.items()
              if isinstance(b, AppCallBlock) and b.config.interface is not None}
    if not pinned:
        return graph
    nodes = [{**n, "config": {**(n.get("config") or {}), "interface": pinned[n["id"]]}}
             if n.get("id") in pinned else n for n in graph.get("nodes", [])]
    return {**graph, "nodes": nodes}


__all__ = ["ITEM_PORTS", "MAX_CALL_DEPTH", "Child", "MapPlan", "body_graph", "call_problems", "chain_refusal",
           "check_bodies", "interface_of", "map_outputs", "pin_interfaces", "plan_map"]

