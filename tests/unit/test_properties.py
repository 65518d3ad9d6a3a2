"""Properties of graph validation over random apps: acyclic ones pass, a closed loop is always named."""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from blocks.base import PORT_TYPES
from blocks.registry import default_registry
from builder.graph import Graph
from builder.problems import Code
from builder.validation import analyze, validate
from tests.factories import edge, node

PROPERTY = settings(max_examples=100, deadline=None)
BACK = "w_back"  # a variable no generated template reads (theirs start with `v_`)

names = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)
literal = st.text(alphabet="abcxyz ,.!?\n", max_size=8)
# Ways a template reads a variable: printed, filtered, tested, concatenated.
uses = st.sampled_from(["{{ %s }}", "{{ %s | string | upper }}", "{%% if %s %%}yes{%% endif %%}",
                        "{{ %s ~ '!' }}", "{%% for c in %s | string %%}{{ c }}{%% endfor %%}"])


@dataclass
class App:
    """A random acyclic app: nodes in a topological order, and what each template reads."""

    nodes: list[dict[str, Any]] = field(default_factory=list)  # in topological order
    edges: list[dict[str, Any]] = field(default_factory=list)
    listed_nodes: list[dict[str, Any]] = field(default_factory=list)  # the order the graph lists them
    listed_edges: list[dict[str, Any]] = field(default_factory=list)

    def graph(self) -> dict[str, Any]:
        """The app as the builder saves it (nodes and edges in an arbitrary order)."""
        return {"schema_version": 1, "nodes": self.listed_nodes, "edges": self.listed_edges}

    def ids(self, block_type: str) -> list[str]:
        """The ids of the nodes of one type, in topological order."""
        return [n["id"] for n in self.nodes if n["type"] == block_type]

    def reaches(self, start: str, end: str) -> bool:
        """Whether a path of edges leads from `start` to `end`."""
        return end in self.descendants(start)

    def descendants(self, start: str) -> set[str]:
        """Every node a path of edges leads to from `start` (itself included)."""
        seen, todo = {start}, [start]
        while todo:
            current = todo.pop()
            for e in self.edges:
                if e["source"] == current and e["target"] not in seen:
                    seen.add(e["target"])
                    todo.append(e["target"])
        return seen


def compatible_types(source: str) -> list[str]:
    """Port types a value of port type `source` may feed."""
    return sorted({source, "any"} | ({"number"} if source == "integer" else set()))


@st.composite
def apps(draw: st.DrawFn) -> App:
    """A trigger.api, templates and outputs; each input fed by a port of a node earlier in the order."""
    kinds = ["trigger"] + ["template"] * draw(st.integers(0, 10)) + ["output"] * draw(st.integers(1, 3))
    kinds = draw(st.permutations(kinds))
    ids = draw(st.lists(names, min_size=len(kinds), max_size=len(kinds), unique=True))
    app = App()
    ports: list[tuple[str, str, str]] = []  # (node, port, type) of every output port so far
    for node_id, kind in zip(ids, kinds, strict=True):
        if kind == "trigger":
            fields: list[dict[str, Any]] = [
                {"name": n, "type": draw(st.sampled_from(PORT_TYPES)), "required": draw(st.booleans())}
                for n in draw(st.lists(names, min_size=1, max_size=4, unique=True))]
            app.nodes.append(node(node_id, "trigger.api", fields=fields))
            ports += [(node_id, f["name"], f["type"]) for f in fields]
        elif kind == "template":
            variables = draw(st.lists(names, max_size=3 if ports else 0, unique=True))
            pieces = [draw(literal)]
            for variable in variables:
                pieces += [draw(uses) % f"v_{variable}", draw(literal)]
                source, port, _ = draw(st.sampled_from(ports))
                app.edges.append(edge(source, port, node_id, f"v_{variable}"))
            app.nodes.append(node(node_id, "text.template", template="".join(pieces)))
            ports.append((node_id, "text", "string"))
        else:
            fields = []
            for n in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
                connected = bool(ports) and draw(st.booleans())
                if not connected:  # an optional result nothing feeds
                    fields.append({"name": n, "type": draw(st.sampled_from(PORT_TYPES)), "required": False})
                    continue
                source, port, port_type = draw(st.sampled_from(ports))
                fields.append({"name": n, "type": draw(st.sampled_from(compatible_types(port_type))),
                               "required": draw(st.booleans())})
                app.edges.append(edge(source, port, node_id, n))
            app.nodes.append(node(node_id, "output", fields=fields))
    app.listed_nodes = draw(st.permutations(app.nodes))
    app.listed_edges = draw(st.permutations(app.edges))
    return app


def with_back_edge(app: App, source: str, target: str) -> dict[str, Any]:
    """The app's graph plus an edge from template `source` into a new variable of template `target`."""
    graph = copy.deepcopy(app.graph())
    (target_node,) = (n for n in graph["nodes"] if n["id"] == target)
    target_node["config"]["template"] += "{{ " + BACK + " }}"
    graph["edges"].append(edge(source, "text", target, BACK))
    return graph


@PROPERTY
@given(apps())
def test_an_acyclic_app_with_every_input_fed_once_is_valid(app: App) -> None:
    analysis = analyze(Graph.model_validate(app.graph()), default_registry())

    assert [p.as_dict() for p in analysis.problems] == []
    # The execution order covers every node and runs each edge's source before its target.
    position = {node_id: i for i, node_id in enumerate(analysis.order)}
    assert set(position) == {n["id"] for n in app.nodes}
    assert all(position[e["source"]] < position[e["target"]] for e in app.edges)


@PROPERTY
@given(apps(), st.data())
def test_a_back_edge_to_an_ancestor_is_a_cycle_through_both_ends(app: App, data: st.DataObject) -> None:
    templates = app.ids("text.template")
    pairs = [(later, earlier) for later in templates for earlier in templates
             if earlier != later and app.reaches(earlier, later)]
    assume(pairs)
    later, earlier = data.draw(st.sampled_from(pairs))
    graph = with_back_edge(app, later, earlier)

    found = validate(graph, default_registry())

    assert [p.code for p in found] == [Code.cycle]
    cycle = found[0].nodes
    assert cycle is not None and {earlier, later} <= set(cycle)
    assert found[0].message == "cycle: " + " → ".join([*cycle, cycle[0]])
    # Each step of the reported loop is a wire of the graph, and only nodes on it are named.
    wires = {(e["source"], e["target"]) for e in graph["edges"]}
    assert all((a, b) in wires for a, b in zip(cycle, (*cycle[1:], cycle[0]), strict=True))
    assert len(set(cycle)) == len(cycle)


@PROPERTY
@given(apps(), st.data())
def test_a_later_to_earlier_edge_between_unrelated_nodes_is_no_cycle(app: App, data: st.DataObject) -> None:
    templates = app.ids("text.template")
    pairs = [(later, earlier) for i, earlier in enumerate(templates) for later in templates[i + 1:]
             if not app.reaches(earlier, later)]
    assume(pairs)
    later, earlier = data.draw(st.sampled_from(pairs))

    assert validate(with_back_edge(app, later, earlier), default_registry()) == []
