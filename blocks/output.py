"""`output`: what the caller, the web page or the SMS reply gets back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blocks.base import Block, BlockContext, NoPorts, Port, PortsFromConfig
from blocks.fields import FieldSpec, ports_from_fields, unique_names


class OutputConfig(BaseModel):
    """The named results of the app."""

    model_config = ConfigDict(extra="forbid")

    fields: list[FieldSpec] = Field(
        default_factory=lambda: [FieldSpec(name="text", type="any")], min_length=1, max_length=100,
        description="Results of the app; each becomes an input port.",
    )

    _unique = field_validator("fields")(unique_names)


class OutputInputs(PortsFromConfig):
    """The app's results, one port per field of config.fields."""


class OutputBlock(Block[OutputConfig, OutputInputs, NoPorts]):
    """Collects the app's results: its inputs become the run's outputs."""

    type = "output"
    title = "Output"
    description = "The app's result: each declared field becomes an input port and a run output."
    category = "outputs"
    pure = True
    bounded = True
    dynamic_ports = "One input port per entry of config.fields."

    def input_ports(self) -> dict[str, Port]:
        return ports_from_fields(self.config.fields)

    def run(self, inputs: OutputInputs, ctx: BlockContext) -> NoPorts:
        return NoPorts()

    def results(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The run outputs this node contributes (missing optional fields get their default)."""
        return {f.name: inputs.get(f.name, f.default) for f in self.config.fields}


BLOCKS = [OutputBlock]
