"""The simple blocks, each driven on its own: template, condition, API trigger, output, registry."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.base import AnyBlock, BlockContext, InputMismatch, Port, port_values
from blocks.logic_condition import ConditionBlock, ConditionError
from blocks.output import OutputBlock
from blocks.registry import Registry, default_registry
from blocks.text_template import TemplateBlock, TemplateError
from blocks.trigger_api import ApiTriggerBlock
from builder.problems import Code
from builder.validation import validate
from tests.factories import greeter_graph, make_block


def ctx() -> BlockContext:
    """The context of a node in a fresh run."""
    return BlockContext(run_id=uuid.uuid4(), node_id="n", org_id=uuid.uuid4(), app_id=uuid.uuid4())


def run(block: AnyBlock, **inputs: Any) -> dict[str, Any]:
    """The ports `block` emits for these inputs."""
    return port_values(block.run(block.typed_inputs(inputs), ctx()))


# -- text.template -------------------------------------------------------------------------


def test_a_template_renders_its_inputs() -> None:
    block = TemplateBlock.from_config(
        {"template": "Dear {{ name | title }},\n{% for t in topics %}- {{ t }}\n{% endfor %}"})

    assert run(block, name="ada lovelace", topics=["engines", "poems"]) == {
        "text": "Dear Ada Lovelace,\n- engines\n- poems\n"}


def test_the_variables_a_template_reads_become_its_input_ports() -> None:
    block = TemplateBlock.from_config({"template": "{% set greeting = 'Hi' %}{{ greeting }} {{ name }}, "
                                                   "{% for t in topics %}{{ t }}{% endfor %}"})

    assert block.input_ports() == {"name": Port("name", "any", True), "topics": Port("topics", "any", True)}
    assert block.output_ports() == {"text": Port("text", "string", True)}


def test_a_template_syntax_error_is_an_invalid_config_naming_the_line() -> None:
    with pytest.raises(ValidationError, match="template syntax error on line 2"):
        TemplateBlock.from_config({"template": "Hello\n{{ name"})

    graph = greeter_graph()
    graph["nodes"][1]["config"]["template"] = "Hello\n{% if name %}"
    (problem,) = validate(graph, default_registry())
    assert (problem.code, problem.node_id, problem.path) == (Code.invalid_config, "greet", "config.template")
    assert "line 2" in problem.message


def test_a_missing_variable_fails_the_render_instead_of_printing_nothing() -> None:
    block = TemplateBlock.from_config({"template": "Hello {{ name }}"})

    with pytest.raises(InputMismatch, match="name: Field required"):  # a required port: never reaches run
        run(block)
    with pytest.raises(TemplateError, match="'name' is undefined"):
        block.render({})


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ value.__init__.__globals__ }}",
    "{{ value | attr('__class__') }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_the_sandbox_refuses_to_reach_python_internals(source: str) -> None:
    block = TemplateBlock.from_config({"template": source})

    assert isinstance(block, TemplateBlock)
    with pytest.raises(TemplateError, match="unsafe"):
        block.render({"value": "x", "cycler": object()})


# -- logic.condition -----------------------------------------------------------------------


def condition(operator: str, value: Any = None, *, case_sensitive: bool = True) -> ConditionBlock:
    """A condition block with this test."""
    block = ConditionBlock.from_config({"operator": operator, "value": value,
                                        "case_sensitive": case_sensitive})
    assert isinstance(block, ConditionBlock)
    return block


@pytest.mark.parametrize(("operator", "value", "passes", "fails"), [
    ("equals", "yes", "yes", "Yes"),
    ("not_equals", "yes", "no", "yes"),
    ("contains", "ell", "hello", "help"),
    ("not_contains", "ell", "help", "hello"),
    ("greater_than", 3, 4, 3),
    ("less_than", 3, 2, 3),
    ("greater_or_equal", 3, 3, 2),
    ("less_or_equal", 3, 3, 4),
    ("matches", r"^\d{3}-\d{4}$", "555-1234", "555-12345"),
    ("is_empty", None, "", "x"),
    ("is_not_empty", None, [0], []),
    ("is_true", None, 1, 0),
])
def test_each_operator(operator: str, value: Any, passes: Any, fails: Any) -> None:
    block = condition(operator, value)

    assert block.test(passes) is True
    assert block.test(fails) is False


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_is_empty_knows_every_kind_of_empty(empty: Any) -> None:
    assert condition("is_empty").test(empty) is True
    assert condition("is_not_empty").test(empty) is False


def test_case_insensitive_comparisons_fold_both_sides() -> None:
    assert condition("equals", "YES", case_sensitive=False).test("yes") is True
    assert condition("contains", "STRASSE", case_sensitive=False).test("Hauptstraße 5") is True
    assert condition("matches", "^hel+o", case_sensitive=False).test("HELLO there") is True
    assert condition("matches", "^hel+o").test("HELLO there") is False


def test_a_condition_emits_only_on_the_taken_port() -> None:
    block = condition("greater_than", 10)

    assert run(block, value=42) == {"true": 42}
    assert run(block, value=7) == {"false": 7}


def test_incomparable_values_are_a_condition_error() -> None:
    with pytest.raises(ConditionError, match="cannot apply 'greater_than' to 'ten'"):
        condition("greater_than", 10).test("ten")


@pytest.mark.parametrize(("value", "message"), [
    ("(unclosed", "invalid regular expression"),
    (3, "needs a regular expression string"),
    ("a" * 1001, "longer than 1000 characters"),
])
def test_a_bad_regex_is_a_config_error(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConditionBlock.from_config({"operator": "matches", "value": value})


# -- trigger.api ---------------------------------------------------------------------------


def api_trigger(*fields: dict[str, Any]) -> ApiTriggerBlock:
    """An API trigger with these fields."""
    block = ApiTriggerBlock.from_config({"fields": list(fields)})
    assert isinstance(block, ApiTriggerBlock)
    return block


FORM = (
    {"name": "name", "type": "string"},
    {"name": "age", "type": "integer"},
    {"name": "score", "type": "number"},
    {"name": "subscribe", "type": "boolean", "required": False, "default": False},
    {"name": "note", "type": "string", "required": False},
)


def test_the_fields_of_an_api_trigger_are_its_typed_output_ports() -> None:
    ports = api_trigger(*FORM).output_ports()

    assert {name: (p.type, p.required) for name, p in ports.items()} == {
        "name": ("string", True), "age": ("integer", True), "score": ("number", True),
        "subscribe": ("boolean", False), "note": ("string", False),
    }


def test_accept_coerces_to_the_field_types_and_fills_defaults() -> None:
    accepted = api_trigger(*FORM).accept({"name": "Ada", "age": "36", "score": 9})

    assert accepted == {"name": "Ada", "age": 36, "score": 9.0, "subscribe": False, "note": None}
    assert isinstance(accepted["score"], float)


@pytest.mark.parametrize(("payload", "loc", "error"), [
    ({"age": 36, "score": 1}, ("name",), "missing"),
    ({"name": "Ada", "age": 36, "score": 1, "nmae": "x"}, ("nmae",), "extra_forbidden"),
    ({"name": "Ada", "age": "thirty", "score": 1}, ("age",), "int_parsing"),
    ({"name": "Ada", "age": 36.5, "score": 1}, ("age",), "int_from_float"),
    ({"name": ["Ada"], "age": 36, "score": 1}, ("name",), "string_type"),
])
def test_accept_refuses_a_bad_payload_naming_the_field(payload: dict[str, Any], loc: tuple[str, ...],
                                                       error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        api_trigger(*FORM).accept(payload)

    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(loc, error)]


def test_an_optional_field_may_be_sent_as_null_or_left_out() -> None:
    block = api_trigger(*FORM)

    assert block.accept({"name": "Ada", "age": 36, "score": 1, "note": None})["note"] is None
    assert block.accept({"name": "Ada", "age": 36, "score": 1})["note"] is None


def test_the_trigger_runs_on_the_inputs_the_api_accepted() -> None:
    # The API accepts a run's inputs and stores them; the worker's trigger node checks them again.
    block = api_trigger(*FORM)
    accepted = block.accept({"name": "Ada", "age": 36, "score": 1})

    assert run(block, **accepted) == accepted


# -- output --------------------------------------------------------------------------------


def test_output_results_are_its_inputs_with_defaults_for_missing_optional_fields() -> None:
    block = OutputBlock.from_config({"fields": [
        {"name": "text", "type": "string"},
        {"name": "score", "type": "number", "required": False, "default": 0},
    ]})

    assert block.results({"text": "hi"}) == {"text": "hi", "score": 0}
    assert block.results({"text": "hi", "score": 0.5}) == {"text": "hi", "score": 0.5}
    assert run(block, text="hi") == {}  # it emits nothing: its inputs are the run's outputs
    assert {p.name: p.type for p in block.input_ports().values()} == {"text": "string", "score": "number"}


def test_an_output_needs_at_least_one_field_and_unique_names() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        OutputBlock.from_config({"fields": []})
    with pytest.raises(ValidationError, match="'text' is used twice"):
        OutputBlock.from_config({"fields": [{"name": "text"}, {"name": "text"}]})


# -- registry and catalogue ----------------------------------------------------------------


def test_the_registry_refuses_a_second_type_with_the_same_name() -> None:
    twin = make_block("text.template", inputs={"x": str}, outputs={"y": str})

    with pytest.raises(ValueError, match="'text.template' is registered twice"):
        default_registry().extended(twin)
    with pytest.raises(ValueError, match="registered twice"):
        Registry([twin, twin])


def test_every_registered_block_describes_itself_as_json() -> None:
    registry = default_registry()

    for block_type in registry:
        described = block_type.describe()
        assert json.loads(json.dumps(described)) == described, block_type.type
        assert described["type"] == block_type.type
        assert isinstance(described["inputs"], list) and isinstance(described["outputs"], list)
        assert described["config_schema"]["type"] == "object", block_type.type
        assert described["description"], block_type.type

    assert {"trigger.api", "text.template", "logic.condition", "output"} <= set(registry.names())
    palette = {b.type: b.describe() for b in registry}
    assert palette["trigger.api"]["trigger"] is True
    assert [p["name"] for p in palette["logic.condition"]["outputs"]] == ["true", "false"]
