"""Request and response bodies of the builder API. Requests refuse unknown fields."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from builder.graph import Graph
from models.apps import TOOL_NAME
from models.orgs import Role
from models.runs import RunKind

T = TypeVar("T")

# A version number, as the database can store it (PostgreSQL's integer): a larger one in a path or
# a body was a 500 from the driver, not the 422 that names it.
MAX_VERSION = 2**31 - 1
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]
VersionInPath = Annotated[int, PathParam(ge=1, le=MAX_VERSION, description="A version number.")]


class Request(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Read(BaseModel):
    """Base of response bodies, read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class PageOf(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ProblemRead(BaseModel):
    """One validation problem; `code` is stable, `message` is for people."""

    code: str
    message: str
    node_id: str | None = None
    port: str | None = None
    path: str | None = None
    nodes: list[str] | None = None


class BlockPort(BaseModel):
    """A port in the block catalogue."""

    name: str
    type: str
    required: bool
    description: str = ""


class NodePorts(BaseModel):
    """The ports one node has with its current config (a template's variables are inputs)."""

    inputs: list[BlockPort]
    outputs: list[BlockPort]


class ValidationReport(BaseModel):
    """Whether a graph is valid, every problem it has, and each node's ports as configured."""

    valid: bool
    problems: list[ProblemRead]
    ports: dict[str, NodePorts] = Field(default_factory=dict, description=(
        "Node id -> its input and output ports with its current config; absent for a node whose "
        "type is unknown or whose config is invalid. A builder redraws a node's handles from it."))


class BlockRead(BaseModel):
    """A block type as the palette draws it."""

    type: str
    version: int
    title: str
    description: str
    category: str
    execution: Literal["inline", "deferred"]
    trigger: bool
    side_effects: bool
    inputs: list[BlockPort]
    outputs: list[BlockPort]
    dynamic_ports: str
    config_schema: dict[str, Any]


class BlockList(BaseModel):
    """Every registered block type."""

    items: list[BlockRead]


class AppCreate(Request):
    """A new app; the draft starts empty unless a graph is given."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    graph: Graph | None = None


class AppUpdate(Request):
    """Rename or re-describe an app, or offer it as an MCP tool."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tool: bool | None = Field(default=None, description=(
        "Offer the latest published version as a tool at `/mcp` (its trigger's fields are the tool's "
        "input schema)."))
    tool_name: str | None = Field(default=None, pattern=TOOL_NAME, description=(
        "The tool's name, unique in the organization (default: made of the app's name)."))
    tool_description: str | None = Field(default=None, max_length=2000, description=(
        "What the tool does, for the model that calls it (default: the app's description)."))


class VersionSummary(Read):
    """A published version, without its graph."""

    number: int
    note: str
    created_at: datetime
    created_by: str


class VersionRead(VersionSummary):
    """A published version with its frozen graph."""

    graph: dict[str, Any]


class AppSummary(Read):
    """An app in a list."""

    id: uuid.UUID
    name: str
    description: str
    draft_revision: int
    latest_version: int
    tool: bool = Field(default=False, description="Offered as an MCP tool at `/mcp`.")
    tool_name: str | None = None
    tool_description: str = ""
    created_at: datetime
    updated_at: datetime


class AppRead(AppSummary):
    """An app with its draft graph and its published versions."""

    draft: dict[str, Any]
    versions: list[VersionSummary]


class DraftRead(ValidationReport):
    """The draft graph, its revision (also the ETag) and its problems."""

    graph: dict[str, Any]
    revision: int


class PublishRequest(Request):
    """What to say about the version being published."""

    note: str = Field(default="", max_length=2000)


class ExportVersion(Request):
    """A version inside an export document."""

    number: int = Field(ge=1)
    note: str = Field(default="", max_length=2000)
    graph: Graph


class ExportDocument(Request):
    """An app as one JSON document: what a builder downloads and uploads."""

    format: Literal["mantle.app"] = "mantle.app"
    format_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    draft: Graph
    versions: list[ExportVersion] = Field(default_factory=list, max_length=1000)


class KeyCreate(Request):
    """A new API key."""

    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.builder


class KeyRead(Read):
    """An API key, without its secret."""

    id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None = Field(description="Who made it: `user:<id>:<email>`, `key:<id>:<name>` or "
                                               "`cli` (null for keys made before this was recorded).")
    user_id: uuid.UUID | None = Field(description="The person whose own key it is (it ends when they "
                                                  "leave the organization), or null.")


class KeyCreated(KeyRead):
    """A new key: `key` is shown this once and never again."""

    key: str


class OrgRead(BaseModel):
    """The caller's organization, and its key or the person signed in."""

    id: uuid.UUID
    name: str
    key: KeyRead | None = Field(description="The calling key (null when a person signed in calls).")
    actor: str = Field(description="Who the audit log says acted: `user:<id>:<email>` or `key:<id>:<name>`.")


class AuditRead(Read):
    """One audit log entry."""

    id: uuid.UUID
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]


class RunStart(Request):
    """A run's inputs (the trigger's fields) and, optionally, which published version to run."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    version: VersionNumber | None = Field(default=None, description="Default: the latest published version.")


class NodeTestStart(Request):
    """What to feed one node of the draft, and whether it may act outside Mantle."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"inputs": {"text": "Summarise: the meeting moved to Tuesday."}, "side_effects": False}]})

    inputs: dict[str, Any] = Field(default_factory=dict, description=(
        "A value per input port of the node with its current config, by port name (a template's "
        "variables are ports). Checked against the ports' types; a missing required port, an unknown "
        "port or a value of the wrong type is a 422 naming the port."))
    side_effects: bool = Field(default=False, description=(
        "Must be true to test a node that acts outside Mantle (`twilio.sms_output` sends a real SMS, "
        "`http.request` with a method other than GET or HEAD); without it such a node is refused (422)."))


class ChildRun(BaseModel):
    """A run a node started: an app it called, or one item of a map."""

    id: uuid.UUID
    app_id: uuid.UUID
    status: str
    item_index: int | None = Field(default=None, description="The item's position in the map's list.")
    attempt: int | None = Field(default=None, description="The node's attempt that started it.")


class NodeTrace(BaseModel):
    """One node of a run: what it received, what it emitted, how it went."""

    node_id: str
    block_type: str
    status: str
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    waiting_for: str | None = None
    result: Any = Field(default=None, description=(
        "What a deferred node's outside worker recorded: a model's token counts and timings "
        "(queue wait, time to first token, generation time), a reviewer's decision."))
    reused: bool = Field(default=False, description=(
        "Not executed in this run: a retry copied its inputs and outputs from the run it retries, "
        "where it had succeeded."))
    children: list[ChildRun] | None = Field(default=None, description=(
        "The child runs of a `flow.map` (one per item and attempt) or `app.call` node: each has its own "
        "trace at `GET /v1/runs/{id}`."))


class RunSummary(Read):
    """A run in a list."""

    id: uuid.UUID
    app_id: uuid.UUID
    version_number: int | None
    draft: bool
    trigger: str
    status: str
    kind: RunKind = Field(default=RunKind.run, description=(
        "`run`: the app (or its draft) run; `node_test`: one node of the draft tried alone "
        "(`test_node_id`), listed only when asked for (`kind=node_test` or `kind=all`)."))
    test_node_id: str | None = Field(default=None, description="The node a node test ran.")
    retry_of: uuid.UUID | None = Field(default=None, description=(
        "The failed run this one retries: the nodes that had succeeded there are reused."))
    rerun_of: uuid.UUID | None = Field(default=None, description="The run this one runs again from the start")
    parent_run_id: uuid.UUID | None = Field(default=None, description=(
        "The run whose node started this one: an `app.call` that called this app, or the `flow.map` "
        "this run is one item of (`kind` `map_item`)."))
    parent_node_id: str | None = Field(default=None, description="That node's id.")
    item_index: int | None = Field(default=None, description="The item of the map this run is.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunGraph(BaseModel):
    """The graph a run executed, as it was saved (UI fields such as `position` included)."""

    run_id: uuid.UUID
    draft: bool = Field(description="The graph is the draft's copy taken when the run started (or a node "
                                    "test's own two-node graph), not a published version.")
    version_number: int | None = Field(description="The published version it ran; null for a draft run.")
    graph: dict[str, Any]


class RunRead(RunSummary):
    """A run with its inputs, outputs, error, timings and trace."""

    inputs: Any
    outputs: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    trace: list[NodeTrace]
