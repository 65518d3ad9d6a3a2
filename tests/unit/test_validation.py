"""Graph validation: each problem a builder can make, reported with its code, node, port and message."""

from __future__ import annotations

from typing import Any

from blocks.registry import Registry, default_registry
from builder.graph import Graph
from builder.problems import Code, Problem
from builder.validation import Limits, analyze, validate
from tests.factories import edge, greeter_graph, make_block, node


def app(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    """A graph of these nodes and edges."""
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def trigger(node_id: str = "in", *names: str) -> dict[str, Any]:
    """A trigger.api node with string fields (`text` when none is named)."""
    return node(node_id, "trigger.api", fields=[{"name": n, "type": "string"} for n in names or ("text",)])


def template(node_id: str, source: str) -> dict[str, Any]:
    """A text.template node."""
    return node(node_id, "text.template", template=source)


def output(node_id: str = "out", *names: str) -> dict[str, Any]:
    """An output node with `any` fields (`text` when none is named)."""
    return node(node_id, "output", fields=[{"name": n, "type": "any"} for n in names or ("text",)])


def problems(graph: dict[str, Any], registry: Registry | None = None,
             limits: Limits = Limits()) -> list[Problem]:
    """Every problem of `graph` against the default registry unless told otherwise."""
    return validate(graph, registry or default_registry(), limits)


def only(found: list[Problem], code: Code) -> Problem:
    """The one problem of `found`, checked to have `code`."""
    assert [p.code for p in found] == [code], [p.as_dict() for p in found]
    return found[0]


def typed_registry() -> Registry:
    """The default blocks plus typed throwaway ones: an integer source, a number and a string sink."""
    return default_registry().extended(
        make_block("test.count", inputs={"text": str}, outputs={"n": int}),
        make_block("test.half", inputs={"x": float}, outputs={"y": float}),
        make_block("test.shout", inputs={"s": str}, outputs={"s": str}),
        make_block("test.need_int", inputs={"i": int}, outputs={"i": int}),
    )


# -- a valid graph ------------------------------------------------------------------------


def test_the_greeter_graph_has_no_problem() -> None:
    analysis = analyze(Graph.model_validate(greeter_graph()), default_registry())

    assert analysis.problems == []
    assert analysis.trigger == "in"
    assert analysis.order == ["in", "greet", "out"]


def test_ui_fields_survive_a_round_trip_and_no_defaults_are_added() -> None:
    data = greeter_graph()
    data["edges"][0]["id"] = "e1"
    data["viewport"] = {"zoom": 1.5}

    dumped = Graph.model_validate(data).dump()

    assert dumped["nodes"][0]["position"] == {"x": 10, "y": 20}
    assert dumped["edges"][0]["id"] == "e1"
    assert dumped["viewport"] == {"zoom": 1.5}
    assert "policy" not in dumped["nodes"][0]
    assert dumped == data


# -- one test per problem code -------------------------------------------------------------


def test_an_unknown_block_type_is_named_with_the_known_ones() -> None:
    graph = greeter_graph()
    graph["nodes"][1]["type"] = "text.tempalte"

    problem = only(problems(graph), Code.unknown_block_type)

    assert problem.node_id == "greet"
    assert "'text.tempalte'" in problem.message
    assert "text.template" in problem.message  # the known types, to pick the right one


def test_an_invalid_config_is_located_inside_the_config() -> None:
    graph = greeter_graph()
    graph["nodes"][0]["config"]["fields"][0]["name"] = "first name"

    problem = only(problems(graph), Code.invalid_config)

    assert problem.node_id == "in"
    assert problem.path == "config.fields.0.name"
    assert problem.message.startswith("config.fields.0.name: ")
    assert "pattern" in problem.message


def test_an_unknown_config_key_is_an_invalid_config_at_that_key() -> None:
    graph = greeter_graph()
    graph["nodes"][1]["config"]["tempate"] = "typo"

    problem = only(problems(graph), Code.invalid_config)

    assert (problem.node_id, problem.path) == ("greet", "config.tempate")


def test_a_policy_default_for_a_port_the_block_lacks_is_an_invalid_policy() -> None:
    graph = greeter_graph()
    graph["nodes"][1]["policy"] = {"on_error": "continue", "default": {"txt": ""}}

    problem = only(problems(graph), Code.invalid_policy)

    assert (problem.node_id, problem.path) == ("greet", "policy.default")
    assert "txt" in problem.message
    assert "text (string)" in problem.message


def test_a_duplicate_node_id_is_reported_once_per_extra_node() -> None:
    graph = greeter_graph()
    graph["nodes"].append(output("greet"))

    problem = only(problems(graph), Code.duplicate_node_id)

    assert problem.node_id == "greet"
    assert "'greet'" in problem.message


def test_an_edge_to_a_node_that_does_not_exist_is_an_unknown_node() -> None:
    graph = greeter_graph()
    graph["edges"][1]["target"] = "ouput"
    graph["nodes"][2]["config"]["fields"][0]["required"] = False

    problem = only(problems(graph), Code.unknown_node)

    assert "'ouput'" in problem.message
    # Located at the end that does exist, so the builder can highlight it.
    assert (problem.node_id, problem.port) == ("greet", "text")


def test_an_unknown_output_port_lists_the_ports_that_exist_with_their_types() -> None:
    graph = app(
        [node("in", "trigger.api", fields=[{"name": "name", "type": "string"},
                                           {"name": "age", "type": "integer"}]),
         output()],
        [edge("in", "nmae", "out", "text")],
    )

    problem = only(problems(graph), Code.unknown_port)

    assert (problem.node_id, problem.port) == ("in", "nmae")
    assert "no output port 'nmae'" in problem.message
    assert "name (string), age (integer)" in problem.message


def test_an_unknown_input_port_lists_the_inputs_that_exist() -> None:
    graph = greeter_graph()
    graph["edges"][1]["target_port"] = "txt"
    graph["nodes"][2]["config"]["fields"][0]["required"] = False

    problem = only(problems(graph), Code.unknown_port)

    assert (problem.node_id, problem.port) == ("out", "txt")
    assert "no input port 'txt'" in problem.message
    assert "text (string)" in problem.message


def test_a_string_into_an_integer_port_is_a_type_mismatch() -> None:
    graph = app(
        [trigger("in", "text"), node("need", "test.need_int"), output()],
        [edge("in", "text", "need", "i"), edge("need", "i", "out", "text")],
    )

    problem = only(problems(graph, typed_registry()), Code.port_type_mismatch)

    assert (problem.node_id, problem.port) == ("need", "i")
    assert problem.message == "in.text is string but need.i expects integer"


def test_an_integer_may_feed_a_number_port_and_any_port() -> None:
    graph = app(
        [trigger("in", "text"), node("count", "test.count"), node("half", "test.half"),
         output("out", "half", "count")],
        [edge("in", "text", "count", "text"), edge("count", "n", "half", "x"),
         edge("half", "y", "out", "half"), edge("count", "n", "out", "count")],
    )

    assert problems(graph, typed_registry()) == []


def test_a_number_may_not_feed_an_integer_port() -> None:
    graph = app(
        [trigger("in", "text"), node("count", "test.count"), node("half", "test.half"),
         node("need", "test.need_int"), output()],
        [edge("in", "text", "count", "text"), edge("count", "n", "half", "x"),
         edge("half", "y", "need", "i"), edge("need", "i", "out", "text")],
    )

    problem = only(problems(graph, typed_registry()), Code.port_type_mismatch)

    assert problem.message == "half.y is number but need.i expects integer"


def test_an_unconnected_required_input_is_reported_with_its_type() -> None:
    graph = greeter_graph()
    del graph["edges"][0]

    problem = only(problems(graph), Code.required_input_missing)

    assert (problem.node_id, problem.port) == ("greet", "name")
    assert "'name' (any)" in problem.message


def test_an_unconnected_optional_input_is_fine() -> None:
    graph = greeter_graph()
    graph["nodes"][2]["config"]["fields"].append({"name": "note", "type": "string", "required": False})

    assert problems(graph) == []


def test_an_input_fed_by_two_edges_names_both_sources() -> None:
    graph = app(
        [trigger("in", "a", "b"), template("t", "{{ x }}"), output()],
        [edge("in", "a", "t", "x"), edge("in", "b", "t", "x"), edge("t", "text", "out", "text")],
    )

    problem = only(problems(graph), Code.input_fed_twice)

    assert (problem.node_id, problem.port) == ("t", "x")
    assert "in.a" in problem.message and "in.b" in problem.message


def test_a_cycle_names_the_nodes_on_it_and_not_those_downstream() -> None:
    # in → a → b → c → a, and c → d (downstream of the cycle, not on it)
    graph = app(
        [trigger(), template("a", "{{ x }}{{ back }}"), template("b", "{{ x }}"),
         template("c", "{{ x }}"), template("d", "{{ x }}"), output()],
        [edge("in", "text", "a", "x"), edge("a", "text", "b", "x"), edge("b", "text", "c", "x"),
         edge("c", "text", "a", "back"), edge("c", "text", "d", "x"), edge("d", "text", "out", "text")],
    )

    problem = only(problems(graph), Code.cycle)

    assert problem.nodes == ("a", "b", "c")
    assert problem.node_id == "a"
    assert problem.message == "cycle: a → b → c → a"
    assert "d" not in problem.message


def test_a_node_feeding_itself_is_a_cycle() -> None:
    graph = app(
        [trigger(), template("echo", "{{ x }}{{ again }}"), output()],
        [edge("in", "text", "echo", "x"), edge("echo", "text", "echo", "again"),
         edge("echo", "text", "out", "text")],
    )

    problem = only(problems(graph), Code.cycle)

    assert problem.nodes == ("echo",)
    assert problem.message == "cycle: echo → echo"


def test_two_separate_cycles_are_two_problems() -> None:
    graph = app(
        [trigger(), template("a", "{{ x }}{{ y }}"), template("b", "{{ x }}"),
         template("c", "{{ x }}{{ y }}"), template("d", "{{ x }}"), output("out", "b", "d")],
        [edge("in", "text", "a", "x"), edge("a", "text", "b", "x"), edge("b", "text", "a", "y"),
         edge("in", "text", "c", "x"), edge("c", "text", "d", "x"), edge("d", "text", "c", "y"),
         edge("b", "text", "out", "b"), edge("d", "text", "out", "d")],
    )

    found = problems(graph)

    assert sorted(p.nodes or () for p in found if p.code == Code.cycle) == [("a", "b"), ("c", "d")]
    assert len(found) == 2


def test_a_graph_without_a_trigger_is_told_to_add_one() -> None:
    graph = app([template("t", "hi"), output()], [edge("t", "text", "out", "text")])

    problem = only(problems(graph), Code.no_trigger)

    assert problem.node_id is None
    assert "trigger.api" in problem.message


def test_a_second_trigger_is_reported_at_the_extra_node() -> None:
    graph = greeter_graph()
    graph["nodes"].append(trigger("in2"))

    problem = only(problems(graph), Code.multiple_triggers)

    assert problem.node_id == "in2"
    assert "in, in2" in problem.message


def test_too_many_nodes_is_refused_before_anything_else() -> None:
    graph = greeter_graph()
    graph["nodes"][1]["type"] = "no.such.block"  # not looked into: the graph is refused first

    problem = only(problems(graph, limits=Limits(max_nodes=2)), Code.too_many_nodes)

    assert problem.message == "3 nodes; the limit is 2"


def test_too_many_edges() -> None:
    problem = only(problems(greeter_graph(), limits=Limits(max_edges=1)), Code.too_many_edges)

    assert problem.message == "2 edges; the limit is 1"


def test_a_config_too_large_is_reported_at_its_node() -> None:
    graph = greeter_graph()
    graph["nodes"][1]["config"]["template"] = "Hello, {{ name }}!" + " " * 200

    problem = only(problems(graph, limits=Limits(max_config_bytes=200)), Code.config_too_large)

    assert problem.node_id == "greet"
    assert "the limit is 200" in problem.message


def test_a_graph_too_large_is_refused() -> None:
    problem = only(problems(greeter_graph(), limits=Limits(max_graph_bytes=100)), Code.graph_too_large)

    assert problem.message.endswith("the limit is 100")


# -- all at once ---------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    graph = app(
        [trigger("in", "name"), node("x", "no.such.block"), template("t", "{{ a }} {{ b }}"),
         template("bad", "{% if %}"), output("out", "text", "extra")],
        [edge("in", "name", "t", "a"), edge("in", "nmae", "out", "extra"), edge("t", "text", "out", "text"),
         edge("t", "text", "ghost", "x")],
    )

    found = {(p.code, p.node_id, p.port) for p in problems(graph)}

    assert found == {
        (Code.unknown_block_type, "x", None),
        (Code.invalid_config, "bad", None),
        (Code.unknown_port, "in", "nmae"),
        (Code.unknown_node, "t", "text"),
        (Code.required_input_missing, "t", "b"),
    }


def test_problems_serialise_with_only_the_locations_they_have() -> None:
    graph = greeter_graph()
    graph["nodes"][1]["config"]["template"] = "{{ name }}{{ self_ }}"
    graph["edges"].append(edge("greet", "text", "greet", "self_"))

    (problem,) = problems(graph)

    assert problem.as_dict() == {
        "code": "cycle", "message": "cycle: greet → greet", "node_id": "greet", "port": None,
        "nodes": ["greet"],
    }
