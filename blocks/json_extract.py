"""`json.extract`: pick values out of a JSON document with JMESPath expressions.

Each entry of `fields` is an output port: its name, a JMESPath expression evaluated against the
`data` input, and optionally a type (checked when the node runs) and whether a missing value
(the expression yields null) fails the node. Expressions are compiled when the graph is
validated, so a bad one is a problem on the node before anything runs. A `data` string is
parsed as JSON first (an API's text answer works as well as its parsed one).

A short expression can do enormous work: `[@,@]` doubles the printed size of its value, so
twenty pipes of it print millions of characters, and a flatten, a comparison or `to_string` of
such a value does that work at once, in C. Expressions are evaluated by `_BoundedInterpreter`:
every node it visits charges the node's work budget (`blocks/limits.py`), a flatten is refused
before it builds a list longer than the limit, and every value a function or a comparison
receives, and every result, is measured as it would print (shared parts counted each time).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, Port, PortsFromConfig, PortType, value_fits
from blocks.fields import IDENTIFIER, unique_names
from blocks.limits import MAX_CHARS, LimitExceeded, charge, measure
from core.errors import MantleError


class ExtractError(MantleError):
    """A value could not be extracted as configured."""

    type = "extract_error"


@lru_cache(maxsize=2048)
def compile_expression(expression: str) -> ParsedResult:
    """The compiled JMESPath expression (cached); raises ValueError naming the problem."""
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression {expression!r}: {str(exc).splitlines()[0]}") from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise ValueError(f"the JMESPath expression {expression[:100]!r}… is nested too deeply") from None


class _BoundedInterpreter(TreeInterpreter):  # type: ignore[misc]  # jmespath ships no types
    """JMESPath's own interpreter, charging the work budget and measuring what could explode."""

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        charge()
        return super().visit(node, *args, **kwargs)

    def visit_flatten(self, node: dict[str, Any], value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        length = sum(len(e) if isinstance(e, list) else 1 for e in base)
        charge(len(base) // 16 + 1)
        if length > MAX_CHARS:
            raise LimitExceeded(f"a flatten would build a list of {length:,} items")
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    def visit_comparator(self, node: dict[str, Any], value: Any) -> Any:
        if node["value"] in self._EQUALITY_OPS:  # equality compares whole values, part by part
            left = self.visit(node["children"][0], value)
            right = self.visit(node["children"][1], value)
            measure(left, what="a compared value")
            measure(right, what="a compared value")
            return self.COMPARATOR_FUNC[node["value"]](left, right)
        return super().visit_comparator(node, value)

    def visit_function_expression(self, node: dict[str, Any], value: Any) -> Any:
        name = node["value"]
        args = [self.visit(child, value) for child in node["children"]]
        for arg in args:
            measure(arg, what=f"an argument of {name}()")
        if name == "join" and len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], list) \
                and len(args[0]) * len(args[1]) > MAX_CHARS:  # the one function that multiplies sizes
            raise LimitExceeded(f"join() would build more than {MAX_CHARS:,} characters")
        return measure_result(self._functions.call_function(name, args))


def measure_result(value: Any) -> Any:
    """`value`, once measured within the limit."""
    measure(value, MAX_CHARS, what="the extracted value")
    return value


def search(expression: str, data: Any) -> Any:
    """The bounded evaluation of a (valid) expression against `data`."""
    return measure_result(_BoundedInterpreter().visit(compile_expression(expression).parsed, data))


class ExtractField(BaseModel):
    """One output port and the expression that fills it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER, description="Output port name.")
    expression: str = Field(min_length=1, max_length=2000, examples=["current.temperature_2m"],
                            description="JMESPath, evaluated against `data`.")
    type: PortType = Field(default="any",
                           description="Checked when the node runs (null passes unless required).")
    required: bool = Field(default=False,
                           description="A null result fails the node instead of emitting null.")
    description: str = Field(default="", max_length=2000)

    @field_validator("expression")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_expression(value)
        return value


class ExtractConfig(BaseModel):
    """The values to extract."""

    model_config = ConfigDict(extra="forbid")

    fields: list[ExtractField] = Field(
        default_factory=lambda: [ExtractField(name="value", expression="@")], min_length=1, max_length=100,
        description="Each entry becomes an output port.")

    _unique = field_validator("fields")(unique_names)


class ExtractInputs(BaseModel):
    """The document."""

    data: Any = Field(description="A JSON value (an object, a list) or a JSON text.")


class ExtractOutputs(PortsFromConfig):
    """The extracted values, one port per entry of config.fields."""


class JsonExtractBlock(Block[ExtractConfig, ExtractInputs, ExtractOutputs]):
    """Evaluates JMESPath expressions against its input, one output port each."""

    type = "json.extract"
    title = "Extract from JSON"
    description = "Picks values out of JSON with JMESPath expressions; each becomes an output port."
    category = "data"
    pure = True
    bounded = True
    dynamic_ports = "One output port per entry of config.fields."

    def output_ports(self) -> dict[str, Port]:
        return {f.name: Port(f.name, f.type, f.required, f.description or f.expression)
                for f in self.config.fields}

    def run(self, inputs: ExtractInputs, ctx: BlockContext) -> ExtractOutputs:
        data = inputs.data
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ExtractError(f"`data` is text that is not JSON: {exc}", loc=["data"]) from None
        found: dict[str, Any] = {}
        for spec in self.config.fields:
            try:
                value = search(spec.expression, data)
            except JMESPathError as exc:  # a function given the wrong type, say
                raise ExtractError(f"{spec.name}: {spec.expression!r} failed: {exc}") from None
            except LimitExceeded as exc:
                raise ExtractError(f"{spec.name}: {exc.message} "
                                   f"(expression {spec.expression[:60]!r})") from None
            if value is None:
                if spec.required:
                    raise ExtractError(f"{spec.name}: {spec.expression!r} found nothing in the input")
            elif not value_fits(value, spec.type):
                raise ExtractError(f"{spec.name}: {spec.expression!r} found {type(value).__name__} "
                                   f"{json.dumps(value)[:100]}, not {spec.type}")
            found[spec.name] = value
        return self.emit(found)


BLOCKS = [JsonExtractBlock]
