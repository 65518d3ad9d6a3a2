"""Typed fields declared in config (a form's inputs, an app's outputs) and their ports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from blocks.base import Port, PortType

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

_PY_TYPES: dict[str, Any] = {
    "string": str, "number": float, "integer": int, "boolean": bool,
    "object": dict[str, Any], "array": list[Any], "any": Any,
}


class FieldSpec(BaseModel):
    """One named, typed value a block takes from outside or hands out."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=IDENTIFIER, description="Port name: letters, digits, underscore.")
    type: PortType = "string"
    required: bool = True
    default: Any = None
    label: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)


def unique_names(fields: list[FieldSpec]) -> list[FieldSpec]:
    """Refuse two fields with the same name (pydantic validator helper)."""
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"field name {f.name!r} is used twice")
        seen.add(f.name)
    return fields


def ports_from_fields(fields: list[FieldSpec]) -> dict[str, Port]:
    """One port per field, typed and required as the field says."""
    return {f.name: Port(f.name, f.type, f.required, f.description) for f in fields}


def payload_model(fields: list[FieldSpec]) -> type[BaseModel]:
    """A strict pydantic model that checks a payload against the fields (unknown keys refused)."""
    definitions: dict[str, Any] = {}
    for f in fields:
        default = ... if f.required and f.default is None else f.default
        # An optional field may be sent as null: that is what an omitted one becomes anyway.
        py_type = _PY_TYPES[f.type] if f.required else _PY_TYPES[f.type] | None
        definitions[f.name] = (py_type, default)
    return create_model(
        "Payload", __config__=ConfigDict(extra="forbid", strict=False), **definitions
    )


def check_payload(model: type[BaseModel], payload: dict[str, Any]) -> dict[str, Any]:
    """The payload coerced to the fields' types; raises ValidationError naming each problem."""
    return model.model_validate(payload).model_dump()


def fields_schema(fields: list[FieldSpec]) -> dict[str, Any]:
    """The JSON Schema of a payload `payload_model(fields)` accepts (an MCP tool's input schema)."""
    properties: dict[str, Any] = {}
    for f in fields:
        prop: dict[str, Any] = {} if f.type == "any" else {"type": f.type}
        if f.label or f.description:
            prop["description"] = f.description or f.label
        if f.default is not None:
            prop["default"] = f.default
        properties[f.name] = prop
    required = [f.name for f in fields if f.required and f.default is None]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


__all__ = ["FieldSpec", "ValidationError", "check_payload", "fields_schema", "payload_model",
           "ports_from_fields"]
