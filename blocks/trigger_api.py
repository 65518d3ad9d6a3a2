"""`trigger.api`: an app started by an API call, with typed input fields."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, Port, PortsFromConfig, RunPayload
from blocks.fields import (
    FieldSpec,
    check_payload,
    fields_schema,
    payload_model,
    ports_from_fields,
    unique_names,
)


class ApiTriggerConfig(BaseModel):
    """The app's input fields."""

    model_config = ConfigDict(extra="forbid")

    fields: list[FieldSpec] = Field(
        default_factory=lambda: [FieldSpec(name="text")], max_length=100,
        description="Inputs the caller sends; each becomes an output port.",
    )

    _unique = field_validator("fields")(unique_names)


class ApiTriggerOutputs(PortsFromConfig):
    """The run's inputs, one port per field of config.fields."""


class ApiTriggerBlock(Block[ApiTriggerConfig, RunPayload, ApiTriggerOutputs]):
    """Starts the app from `POST /v1/apps/{id}/runs`; its output ports are the input fields."""

    type = "trigger.api"
    title = "API trigger"
    description = "Starts the app from an API call; each declared field becomes an output port."
    category = "triggers"
    pure = True
    bounded = True
    trigger = True
    dynamic_ports = "One output port per entry of config.fields."

    def output_ports(self) -> dict[str, Port]:
        return ports_from_fields(self.config.fields)

    @cached_property
    def _payload(self) -> builtins.type[BaseModel]:
        return payload_model(self.config.fields)

    def accept(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The run's inputs checked and coerced; raises ValidationError on a bad payload."""
        return check_payload(self._payload, dict(payload))

    def payload_schema(self) -> dict[str, Any]:
        """The JSON Schema of the fields a caller sends."""
        return fields_schema(self.config.fields)

    def run(self, inputs: RunPayload, ctx: BlockContext) -> ApiTriggerOutputs:
        return self.emit(self.accept(inputs.model_extra or {}))


BLOCKS = [ApiTriggerBlock]
