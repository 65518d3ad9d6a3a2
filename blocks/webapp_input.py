"""`webapp.input`: an app started from a shared web page's form, one typed field per input.

The form the public page draws and the server-side check of what it posts both come from
this block's config, so a field's limits hold whether a person or a script submits.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from blocks.base import Block, BlockContext, Port, PortsFromConfig, PortType, RunPayload
from blocks.fields import IDENTIFIER

FieldKind = Literal["text", "long_text", "number", "choice", "checkbox"]
_PORT_TYPE: dict[str, PortType] = {"text": "string", "long_text": "string", "number": "number",
                                   "choice": "string", "checkbox": "boolean"}
_DEFAULT_MAX = {"text": 1_000, "long_text": 20_000}


def _number(value: float) -> int | float:
    """A whole number as an int (a form's "3" reads as 3, not 3.0), anything else as a float."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


class FormField(BaseModel):
    """One field of the form: its kind, how it is labelled, and the limits its value must keep."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER, description="Port name: letters, digits, underscore.")
    kind: FieldKind = "text"
    label: str = Field(default="", max_length=200, description="Shown above the field (default: the name).")
    help: str = Field(default="", max_length=1000, description="A hint shown under the field.")
    placeholder: str = Field(default="", max_length=200)
    required: bool = Field(default=True, description="A checkbox that is required must be ticked.")
    default: str | float | bool | None = None
    min_length: int | None = Field(default=None, ge=0, le=100_000)
    max_length: int | None = Field(default=None, ge=1, le=100_000,
                                   description="Text limit (default 1,000; long text 20,000).")
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = Field(default=None, gt=0, description="Number step; 1 makes it a whole number.")
    choices: list[str] = Field(default_factory=list, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _checkbox_optional(cls, data: Any) -> Any:
        # An unticked checkbox is an answer (false), so a checkbox is only required when asked.
        if isinstance(data, dict) and data.get("kind") == "checkbox" and "required" not in data:
            return {**data, "required": False}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FormField:
        if self.kind == "choice":
            if not self.choices:
                raise ValueError(f"choice field {self.name!r} needs at least one entry in `choices`")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"choice field {self.name!r} lists a choice twice")
        elif self.choices:
            raise ValueError(f"`choices` only applies to choice fields, not {self.kind!r}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"field {self.name!r}: minimum is above maximum")
        if self.min_length is not None and self.min_length > self.text_limit:
            raise ValueError(f"field {self.name!r}: min_length is above max_length")
        if self.default is not None:
            try:  # a required checkbox may well start unticked: check the default as optional
                self.model_copy(update={"required": False}).check(self.default)
            except PydanticCustomError as exc:
                raise ValueError(f"field {self.name!r}: default {exc.message()}") from None
        return self

    @property
    def text_limit(self) -> int:
        """The most characters a text value may have."""
        return self.max_length or _DEFAULT_MAX.get(self.kind, 1_000)

    @property
    def must_send(self) -> bool:
        """Whether a payload that leaves this field out is refused (required, and no default)."""
        return self.required and self.default is None

    @property
    def integer(self) -> bool:
        """Whether a number field takes whole numbers only."""
        return self.step is not None and float(self.step).is_integer()

    @property
    def port_type(self) -> PortType:
        """The type of the output port this field becomes."""
        return "integer" if self.kind == "number" and self.integer else _PORT_TYPE[self.kind]

    def value_schema(self) -> dict[str, Any]:
        """This field's JSON Schema: its type, limits and choices, as `check` enforces them."""
        prop: dict[str, Any] = {"type": self.port_type}
        if self.label or self.help:
            prop["description"] = self.help or self.label
        if self.default is not None:
            prop["default"] = self.default
        if self.kind == "choice":
            prop["enum"] = list(self.choices)
        elif self.kind in ("text", "long_text"):
            prop["maxLength"] = self.text_limit
            if self.min_length is not None:
                prop["minLength"] = self.min_length
        elif self.kind == "number":
            limits = (("minimum", self.minimum), ("maximum", self.maximum))
            prop.update({k: _number(v) for k, v in limits if v is not None})
        return prop

    @property
    def empty(self) -> Any:
        """The value of an optional field left empty."""
        return {"text": "", "long_text": "", "checkbox": False}.get(self.kind)

    def check(self, value: Any) -> Any:
        """The value checked against this field and normalised; raises PydanticCustomError."""
        if self.kind in ("text", "long_text", "choice"):
            return self._check_text(value)
        if self.kind == "number":
            return self._check_number(value)
        if value is None:
            value = bool(self.default)
        if isinstance(value, bool):
            if self.required and not value:
                raise PydanticCustomError("required", "must be ticked")
            return value
        raise PydanticCustomError("bool_type", "must be true or false")

    def _check_text(self, value: Any) -> Any:
        if value is None and self.default is not None:
            return self.default  # left out: the default; sent empty: a required field stays unanswered
        if value is None or value == "":
            if self.required:
                raise PydanticCustomError("missing", "is required")
            return self.default if self.default is not None else self.empty
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "must be text")
        if self.kind == "choice":
            if value not in self.choices:
                raise PydanticCustomError("choice", "must be one of: {choices}",
                                          {"choices": ", ".join(self.choices)})
            return value
        if self.required and not value.strip():
            raise PydanticCustomError("missing", "is required")
        if len(value) > self.text_limit:
            raise PydanticCustomError("too_long", "must be at most {n} characters", {"n": self.text_limit})
        if self.min_length is not None and len(value) < self.min_length:
            raise PydanticCustomError("too_short", "must be at least {n} characters", {"n": self.min_length})
        return value

    def _check_number(self, value: Any) -> Any:
        if value is None or value == "":
            if self.default is not None and (value is None or not self.required):
                value = self.default
            elif self.required:
                raise PydanticCustomError("missing", "is required")
            else:
                return None
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise PydanticCustomError("number_type", "must be a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PydanticCustomError("number_type", "must be a number")
        if self.integer and not float(value).is_integer():
            raise PydanticCustomError("integer_type", "must be a whole number")
        if self.minimum is not None and value < self.minimum:
            raise PydanticCustomError("too_small", "must be at least {n}", {"n": _number(self.minimum)})
        if self.maximum is not None and value > self.maximum:
            raise PydanticCustomError("too_large", "must be at most {n}", {"n": _number(self.maximum)})
        return _number(value)


class WebAppInputConfig(BaseModel):
    """The form's fields and its submit button."""

    model_config = ConfigDict(extra="forbid")

    fields: list[FormField] = Field(
        default_factory=lambda: [FormField(name="text", kind="long_text", label="Text")],
        min_length=1, max_length=50, description="The form's fields; each becomes an output port.",
    )
    submit_label: str = Field(default="Run", min_length=1, max_length=60)

    @field_validator("fields")
    @classmethod
    def _unique(cls, fields: list[FormField]) -> list[FormField]:
        names = [f.name for f in fields]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"field name(s) used twice: {', '.join(twice)}")
        return fields


class WebAppInputOutputs(PortsFromConfig):
    """The form's answers, one port per field."""


class WebAppInputBlock(Block[WebAppInputConfig, RunPayload, WebAppInputOutputs]):
    """Starts the app from a shared page's form; its output ports are the form's fields."""

    type = "webapp.input"
    title = "Web form"
    description = "Starts the app from a shareable web page; each form field becomes an output port."
    category = "triggers"
    pure = True
    bounded = True
    trigger = True
    dynamic_ports = "One output port per entry of config.fields."

    def output_ports(self) -> dict[str, Port]:
        return {f.name: Port(f.name, f.port_type, True, f.help) for f in self.config.fields}

    @cached_property
    def _payload(self) -> builtins.type[BaseModel]:
        definitions: dict[str, Any] = {
            f.name: (Annotated[Any, PlainValidator(f.check)], ... if f.must_send else None)
            for f in self.config.fields
        }
        return create_model("FormPayload", __config__=ConfigDict(extra="forbid"), **definitions)

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Every field's value, checked against its limits; raises ValidationError naming each problem."""
        checked = self._payload.model_validate(dict(payload)).model_dump()
        # An optional field left out gets the value of one left empty (a default, "" or false).
        return {f.name: f.check(None) if checked[f.name] is None else checked[f.name]
                for f in self.config.fields}

    def payload_schema(self) -> dict[str, Any]:
        """The JSON Schema of the form's fields (what a script may post instead of a person)."""
        fields = self.config.fields
        return {"type": "object", "properties": {f.name: f.value_schema() for f in fields},
                "required": [f.name for f in fields if f.must_send], "additionalProperties": False}

    def run(self, inputs: RunPayload, ctx: BlockContext) -> WebAppInputOutputs:
        return self.emit(self.accept(inputs.model_extra or {}))


BLOCKS = [WebAppInputBlock]
