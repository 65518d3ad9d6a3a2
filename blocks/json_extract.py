"""`json.extract`: pick values out of a JSON document with JMESPath expressions.

Each entry of `fields` is an output port: its name, a JMESPath expression evaluated against the
`data` input, and optionally a type (checked when the node runs) and whether a missing value
(the expression yields null) fails the node. Expressions are compiled when the graph is
validated, so a bad one is a problem on the node before anything runs. A `data` string is
parsed as JSON first (an API's text answer works as well as its parsed one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, Port, PortType
from blocks.fields import IDENTIFIER, unique_names
from core.errors import MantleError

_CHECKS: dict[str, Any] = {
    "string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list,
}


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


class JsonExtractBlock(Block):
    """Evaluates JMESPath expressions against its input, one output port each."""

    type = "json.extract"
    title = "Extract from JSON"
    description = "Picks values out of JSON with JMESPath expressions; each becomes an output port."
    category = "data"
    pure = True
    Config = ExtractConfig
    Inputs = ExtractInputs
    dynamic_ports = "One output port per entry of config.fields."

    config: ExtractConfig

    def output_ports(self) -> dict[str, Port]:
        return {f.name: Port(f.name, f.type, f.required, f.description or f.expression)
                for f in self.config.fields}

    def run(self, inputs: Mapping[str, Any], ctx: BlockContext) -> Mapping[str, Any]:
        data = inputs.get("data")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ExtractError(f"`data` is text that is not JSON: {exc}", loc=["data"]) from None
        found: dict[str, Any] = {}
        for spec in self.config.fields:
            try:
                value = compile_expression(spec.expression).search(data)
            except JMESPathError as exc:  # a function given the wrong type, say
                raise ExtractError(f"{spec.name}: {spec.expression!r} failed: {exc}") from None
            if value is None:
                if spec.required:
                    raise ExtractError(f"{spec.name}: {spec.expression!r} found nothing in the input")
            elif spec.type != "any" and not _fits(value, spec.type):
                raise ExtractError(f"{spec.name}: {spec.expression!r} found {type(value).__name__} "
                                   f"{json.dumps(value)[:100]}, not {spec.type}")
            found[spec.name] = value
        return found


def _fits(value: Any, port_type: str) -> bool:
    if isinstance(value, bool) and port_type not in ("boolean", "any"):
        return False  # JSON true is not the number 1
    return isinstance(value, _CHECKS[port_type])
