"""`app.call`: run another published app of the organization as one node (a deferred block).

Its ports are the callee's: one input per field of the callee's trigger (`trigger.api` or
`webapp.input`), one output per field of its `output` nodes. The validator learns them from an
`AppDirectory` of the organization's published apps, passed in pydantic's validation context
(`apps`), and keeps them in `config.interface`; publishing freezes that interface into the
version, so the run worker knows the ports without asking anyone (the callee's `latest` version
may change later: its run then takes what the caller's edges deliver, checked by its trigger).

The node suspends with kind `app.call`; the run engine starts the child run, links it both ways
(`parent_run_id`/`parent_node_id`), refuses cycles and chains deeper than the limit, and records
the child's outputs (or its error) as the node's result when the child ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from blocks.base import Block, BlockContext, Execution, Port, PortsFromConfig, Suspend
from blocks.fields import FieldSpec, ports_from_fields
from blocks.suspends import CallWait

# The kind a suspended `app.call` node waits with; the run engine, not a wait handler, serves it.
WAIT_KIND = CallWait.kind


class CalleeInterface(BaseModel):
    """The called app's ports, as the validator found them (filled in by Mantle)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200, description="The called app's name.")
    version: int = Field(ge=1, description="The version whose ports these are.")
    inputs: list[FieldSpec] = Field(default_factory=list, max_length=100)
    outputs: list[FieldSpec] = Field(default_factory=list, max_length=100)


class AppDirectory(Protocol):
    """The published apps of one organization, as the validator may see them."""

    def interface(self, app_id: uuid.UUID, version: int | None) -> CalleeInterface | str:
        """The ports of version `version` (None: the latest) of the app, or why it cannot be called."""
        ...

    def calls(self, app_id: uuid.UUID, version: int | None) -> list[tuple[uuid.UUID, int | None]]:
        """The apps (and versions; None: latest) that version of the app calls."""
        ...

    def name(self, app_id: uuid.UUID) -> str:
        """The app's name (its id when it has none this organization can see)."""
        ...


class AppCallConfig(BaseModel):
    """Which app to call, and which of its versions."""

    model_config = ConfigDict(extra="forbid")

    app_id: uuid.UUID = Field(description="The published app of this organization to run.",
                              json_schema_extra={"x-mantle-source": "apps"})
    version: int | Literal["latest"] = Field(
        default="latest", description="A version number to pin, or `latest` (resolved when the node runs).",
        json_schema_extra={"x-mantle-source": "app-versions", "x-mantle-app-field": "app_id"})
    interface: CalleeInterface | None = Field(
        default=None, description="Filled in by Mantle when the app is validated and published: the called "
                                  "app's input fields and outputs. Leave it out.")

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> AppCallConfig:
        apps: AppDirectory | None = (info.context or {}).get("apps")
        if isinstance(self.version, int) and self.version < 1:
            raise ValueError("version must be a number from 1, or \"latest\"")
        if apps is not None:  # validating for a person: the callee as it is now
            found = apps.interface(self.app_id, None if self.version == "latest" else self.version)
            if isinstance(found, str):
                raise ValueError(found)
            self.interface = found
        return self


class AppCallInputs(PortsFromConfig):
    """The called app's inputs, one port per field of its trigger."""


class AppCallOutputs(PortsFromConfig):
    """The called app's outputs, one port per field of its output nodes."""


class AppCallBlock(Block[AppCallConfig, AppCallInputs, AppCallOutputs]):
    """Runs another published app as a child run and emits its outputs."""

    type = "app.call"
    title = "Call app"
    description = ("Runs another published app of the organization (a pinned version or the latest) as one "
                   "node; its inputs are the app's trigger fields, its outputs the app's outputs.")
    category = "logic"
    execution = Execution.deferred
    bounded = True
    suspends = (CallWait,)
    dynamic_ports = ("One input port per field of the called app's trigger, one output port per field of "
                     "its output nodes (config.app_id and config.version choose the app).")

    def input_ports(self) -> dict[str, Port]:
        interface = self.config.interface
        return ports_from_fields(interface.inputs) if interface is not None else {}

    def output_ports(self) -> dict[str, Port]:
        interface = self.config.interface
        if interface is None:
            return {}
        # A callee's output may be left unset by a branch it did not take: never required downstream.
        return {name: Port(p.name, p.type, False, p.description)
                for name, p in ports_from_fields(interface.outputs).items()}

    def has_side_effects(self) -> bool:
        """The called app may do anything its own blocks do."""
        return True

    def start(self, inputs: AppCallInputs, ctx: BlockContext) -> Suspend:
        return CallWait(app_id=str(self.config.app_id), version=self.config.version).suspend()

    def resume(self, inputs: AppCallInputs, result: Mapping[str, Any], ctx: BlockContext) -> AppCallOutputs:
        outputs: Mapping[str, Any] = result.get("outputs") or {}
        declared = self.output_ports()
        return self.emit({name: value for name, value in outputs.items() if name in declared})


BLOCKS = [AppCallBlock]
