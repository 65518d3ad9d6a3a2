"""Graph validation: every problem at once, each located at a node and port.

`analyze` is the one pass the rest of Mantle relies on: the API calls it to report
problems, publishing refuses a graph with any, and the executor runs the configured
blocks and topological order it returns.
"""

from __future__ import annotations

import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json

from blocks.app_call import AppDirectory
from blocks.base import AnyBlock, Port, types_compatible
from blocks.registry import Registry, UnknownBlockType
from builder import composition
from builder.graph import Edge, Graph, NodePolicy, RunSettings
from builder.problems import Code, Problem
from core.nesting import MAX_CONFIG_DEPTH, MAX_EXPRESSION_DEPTH, depth, expression_depth, strings


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits a graph must stay within, and the model deployments it may name."""

    max_nodes: int = 1000
    max_edges: int = 4000
    max_config_bytes: int = 64 * 1024
    max_graph_bytes: int = 2 * 1024 * 1024
    # Model deployment names the graph may use (None: not checked); see `Block.from_config`.
    models: frozenset[str] | None = None
    # The organization's published apps, for `app.call` ports and chains (None: the ports pinned
    # in each node's config are trusted, as the run worker does), and the app being validated.
    apps: AppDirectory | None = None
    app: tuple[uuid.UUID, str] | None = None

    def context(self) -> dict[str, Any] | None:
        """The validation context blocks' configs are checked with."""
        context: dict[str, Any] = {}
        if self.models is not None:
            context["models"] = self.models
        if self.apps is not None:
            context["apps"] = self.apps
        return context or None


@dataclass(slots=True)
class Analysis:
    """The result of validating a graph: its problems and, when valid, what the executor needs."""

    problems: list[Problem] = field(default_factory=list)
    blocks: dict[str, AnyBlock] = field(default_factory=dict)
    inputs: dict[str, dict[str, Port]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Port]] = field(default_factory=dict)
    incoming: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    outgoing: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    order: list[str] = field(default_factory=list)
    trigger: str | None = None
    policies: dict[str, NodePolicy] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=RunSettings)
    # Each `flow.map`'s body nodes: they run inside its items, never in the run itself, so they
    # are left out of `order`.
    bodies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """Whether the graph has no problem at all."""
        return not self.problems


def _config_problems(node_id: str, error: ValidationError) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in ("config", *err["loc"]))
        problems.append(Problem(Code.invalid_config, f"{path}: {err['msg']}", node_id, path=path))
    return problems


def _nesting_problem(node_id: str, config: dict[str, Any], extra: dict[str, Any]) -> Problem | None:
    """A node whose config or UI fields nest past the limits (see `core/nesting.py`), or None."""
    if depth(config, stop_past=MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH:
        return Problem(Code.too_deep, f"config is nested too deeply: past the limit of {MAX_CONFIG_DEPTH} "
                       "levels", node_id, path="config")
    if depth(extra, stop_past=MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH:
        return Problem(Code.too_deep, f"the node's own fields are nested too deeply: past the limit of "
                       f"{MAX_CONFIG_DEPTH} levels", node_id)
    for where, text in strings(config, "config"):
        found = expression_depth(text)
        if found > MAX_EXPRESSION_DEPTH:
            return Problem(Code.too_deep, f"{where} is nested too deeply: brackets or template blocks "
                           f"{found} levels deep; the limit is {MAX_EXPRESSION_DEPTH}", node_id, path=where)
    return None


def _find_cycle(start: str, members: set[str], succ: dict[str, list[str]]) -> list[str]:
    """A path start → … → start through `members` (breadth-first, so a shortest one)."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for nxt in succ[current]:
            if nxt == start:
                path = [current]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt in members and nxt not in parent:
                parent[nxt] = current
                queue.append(nxt)
    return [start, start]  # unreachable for a strongly connected set


def _strongly_connected(nodes: list[str], succ: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (a deep graph must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = succ[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _order_and_cycles(analysis: Analysis, node_ids: list[str]) -> None:
    succ: dict[str, list[str]] = {n: [] for n in node_ids}
    indegree = dict.fromkeys(node_ids, 0)
    for target, edges in analysis.incoming.items():
        for edge in edges:
            succ[edge.source].append(target)
            indegree[target] += 1
    ready = deque(n for n in node_ids if indegree[n] == 0)
    while ready:
        current = ready.popleft()
        analysis.order.append(current)
        for nxt in succ[current]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(analysis.order) == len(node_ids):
        return
    stuck = [n for n in node_ids if indegree[n] > 0]
    stuck_set = set(stuck)
    sub = {n: [m for m in succ[n] if m in stuck_set] for n in stuck}
    for component in _strongly_connected(stuck, sub):
        members = set(component)
        if len(component) == 1 and component[0] not in sub[component[0]]:
            continue  # downstream of a cycle, not on one
        start = min(component)
        path = _find_cycle(start, members, sub)
        analysis.problems.append(Problem(
            Code.cycle, "cycle: " + " → ".join(path), start, nodes=tuple(path[:-1]),
        ))


def analyze(graph: Graph, registry: Registry, limits: Limits = Limits()) -> Analysis:
    """Validate `graph` against `registry` and `limits`, collecting every problem."""
    analysis = Analysis(settings=graph.settings)
    problems = analysis.problems
    if len(graph.nodes) > limits.max_nodes:
        problems.append(Problem(Code.too_many_nodes,
                                f"{len(graph.nodes)} nodes; the limit is {limits.max_nodes}"))
    if len(graph.edges) > limits.max_edges:
        problems.append(Problem(Code.too_many_edges,
                                f"{len(graph.edges)} edges; the limit is {limits.max_edges}"))
    # Sizes are UTF-8 bytes of compact JSON, serialised by pydantic-core: a 500-node graph is
    # measured on every autosave, and the standard library took four times as long.
    size = len(graph.model_dump_json())
    if size > limits.max_graph_bytes:
        problems.append(Problem(Code.graph_too_large,
                                f"the graph is {size} bytes; the limit is {limits.max_graph_bytes}"))
    ui_fields = [("graph", graph.model_extra or {})]
    ui_fields += [(f"edge {e.source}.{e.source_port} → {e.target}.{e.target_port}", e.model_extra or {})
                  for e in graph.edges]
    for where, fields in ui_fields:
        if depth(fields, stop_past=MAX_CONFIG_DEPTH) > MAX_CONFIG_DEPTH:
            problems.append(Problem(Code.too_deep, f"the {where}'s own fields are nested too deeply: past "
                                    f"the limit of {MAX_CONFIG_DEPTH} levels"))
    if problems:
        return analysis  # too big to look into further: refuse before doing the work

    node_ids: list[str] = []
    triggers: list[str] = []
    for node in graph.nodes:
        if node.id in analysis.blocks or node.id in node_ids:
            problems.append(Problem(Code.duplicate_node_id,
                                    f"node id {node.id!r} is used more than once", node.id))
            continue
        node_ids.append(node.id)
        config_size = len(to_json(node.config))
        if config_size > limits.max_config_bytes:
            problems.append(Problem(
                Code.config_too_large,
                f"config is {config_size} bytes; the limit is {limits.max_config_bytes}", node.id))
            continue
        deep = _nesting_problem(node.id, node.config, node.model_extra or {})
        if deep is not None:  # checked before any parser sees it: parsers recurse once per level
            problems.append(deep)
            continue
        try:
            block_type = registry.get(node.type)
        except UnknownBlockType:
            known = ", ".join(registry.names())
            problems.append(Problem(Code.unknown_block_type,
                                    f"unknown block type {node.type!r}; known types: {known}",
                                    node.id))
            continue
        if block_type.trigger:
            triggers.append(node.id)
        try:
            block = block_type.from_config(node.config, limits.context())
            analysis.inputs[node.id] = block.input_ports()
            analysis.outputs[node.id] = block.output_ports()
        except ValidationError as exc:
            problems.extend(_config_problems(node.id, exc))
            continue
        except RecursionError:  # a shape the nesting check does not know: still a problem, never a 500
            problems.append(Problem(Code.too_deep, "config is nested too deeply to parse", node.id,
                                    path="config"))
            continue
        analysis.blocks[node.id] = block
        analysis.policies[node.id] = node.policy
        unknown = set(node.policy.default) - set(analysis.outputs[node.id])
        if unknown:
            problems.append(Problem(
                Code.invalid_policy,
                f"policy.default names ports the block does not have: {', '.join(sorted(unknown))}; "
                f"its outputs: {_describe_ports(analysis.outputs[node.id])}", node.id, path="policy.default"))

    if not triggers:
        problems.append(Problem(Code.no_trigger, "the graph has no trigger node; add one "
                                "(for example `trigger.api`)"))
    elif len(triggers) > 1:
        for extra in triggers[1:]:
            problems.append(Problem(Code.multiple_triggers,
                                    f"more than one trigger: {', '.join(triggers)}", extra))
    else:
        analysis.trigger = triggers[0]

    known_nodes = set(node_ids)
    fed: dict[tuple[str, str], Edge] = {}
    for edge in graph.edges:
        _check_edge(analysis, edge, known_nodes, fed)

    for node_id, ports in analysis.inputs.items():
        for port in ports.values():
            if port.required and (node_id, port.name) not in fed:
                problems.append(Problem(Code.required_input_missing,
                                        f"required input {port.name!r} ({port.type}) is not "
                                        "connected", node_id, port.name))

    _order_and_cycles(analysis, node_ids)
    _compose(analysis, graph, node_ids, limits)
    return analysis


def _compose(analysis: Analysis, graph: Graph, node_ids: list[str], limits: Limits) -> None:
    """Check map bodies and app.call chains; take body nodes out of the run's order."""
    kinds = {b.type for b in analysis.blocks.values()}
    if "flow.map" in kinds:
        problems, analysis.bodies = composition.check_bodies(analysis.blocks, graph.edges, node_ids)
        analysis.problems.extend(problems)
        inside = {member for members in analysis.bodies.values() for member in members}
        analysis.order = [n for n in analysis.order if n not in inside]
    if "app.call" in kinds and limits.apps is not None:
        analysis.problems.extend(composition.call_problems(analysis.blocks, limits.app, limits.apps))


def _describe_ports(ports: dict[str, Port]) -> str:
    return ", ".join(f"{p.name} ({p.type})" for p in ports.values()) or "none"


def _check_edge(analysis: Analysis, edge: Edge, known: set[str],
                fed: dict[tuple[str, str], Edge]) -> None:
    problems = analysis.problems
    ok = True
    ends = ((edge.source, edge.target, edge.target_port), (edge.target, edge.source, edge.source_port))
    for end, other, other_port in ends:
        if end not in known:
            problems.append(Problem(
                Code.unknown_node,
                f"edge {edge.source}.{edge.source_port} → {edge.target}.{edge.target_port} "
                f"refers to a node {end!r} that does not exist",
                other if other in known else None, other_port if other in known else None))
            ok = False
    if not ok:
        return
    src_ports = analysis.outputs.get(edge.source)
    dst_ports = analysis.inputs.get(edge.target)
    src = dst = None
    if src_ports is not None:
        src = src_ports.get(edge.source_port)
        if src is None:
            problems.append(Problem(
                Code.unknown_port,
                f"node {edge.source!r} has no output port {edge.source_port!r}; its outputs: "
                f"{_describe_ports(src_ports)}", edge.source, edge.source_port))
    if dst_ports is not None:
        dst = dst_ports.get(edge.target_port)
        if dst is None:
            problems.append(Problem(
                Code.unknown_port,
                f"node {edge.target!r} has no input port {edge.target_port!r}; its inputs: "
                f"{_describe_ports(dst_ports)}", edge.target, edge.target_port))
    if src is not None and dst is not None and not types_compatible(src.type, dst.type):
        problems.append(Problem(
            Code.port_type_mismatch,
            f"{edge.source}.{edge.source_port} is {src.type} but {edge.target}.{edge.target_port} "
            f"expects {dst.type}", edge.target, edge.target_port))
    key = (edge.target, edge.target_port)
    if key in fed:
        first = fed[key]
        problems.append(Problem(
            Code.input_fed_twice,
            f"input {edge.target_port!r} is fed by {first.source}.{first.source_port} and by "
            f"{edge.source}.{edge.source_port}; an input takes one edge", edge.target,
            edge.target_port))
        return
    fed[key] = edge
    analysis.incoming[edge.target].append(edge)
    analysis.outgoing[edge.source].append(edge)


def validate(graph: Graph | dict[str, Any], registry: Registry, limits: Limits = Limits()) -> list[Problem]:
    """Every problem of `graph`, or an empty list when it is valid."""
    parsed = graph if isinstance(graph, Graph) else Graph.model_validate(graph)
    return analyze(parsed, registry, limits).problems
