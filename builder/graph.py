"""The JSON DAG of an app: nodes (configured blocks) joined by edges between typed ports.

UI fields a builder adds (`position`, colours, an edge's own id) are kept verbatim and
ignored by the engine, so nodes, edges and the graph accept extra keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NODE_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$"
PORT_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class NodePolicy(BaseModel):
    """How the engine treats a node's failures: retries, timeout, and what a failure means."""

    model_config = ConfigDict(extra="forbid", strict=True)

    retries: int = Field(default=0, ge=0, le=10, description="Extra attempts after a failure.")
    backoff_s: float = Field(default=1.0, ge=0, le=3600,
                             description="Wait before the first retry; doubles on each retry.")
    timeout_s: float | None = Field(default=None, gt=0, le=7 * 86400,
                                    description="Fail an attempt that takes longer than this.")
    on_error: Literal["fail", "continue"] = Field(
        default="fail", description="`continue` emits `default` instead of failing the run.")
    default: dict[str, Any] = Field(default_factory=dict,
                                    description="Outputs emitted on failure when on_error is continue.")


class Node(BaseModel):
    """A configured block on the canvas."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=NODE_ID, description="Stable id chosen by the builder.")
    type: str = Field(min_length=1, max_length=100, description="Block type, e.g. `text.template`.")
    config: dict[str, Any] = Field(default_factory=dict)
    policy: NodePolicy = Field(default_factory=NodePolicy)


class Edge(BaseModel):
    """A wire from one node's output port to another node's input port."""

    model_config = ConfigDict(extra="allow")

    source: str = Field(max_length=64)
    source_port: str = Field(pattern=PORT_NAME)
    target: str = Field(max_length=64)
    target_port: str = Field(pattern=PORT_NAME)


class RunSettings(BaseModel):
    """Settings of every run of the graph."""

    model_config = ConfigDict(extra="forbid", strict=True)

    deadline_s: float | None = Field(default=None, gt=0, le=30 * 86400,
                                     description="Fail a run unfinished this long after creation.")


class Graph(BaseModel):
    """An app's graph, as the builder saves it."""

    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    settings: RunSettings = Field(default_factory=RunSettings)

    def dump(self) -> dict[str, Any]:
        """The graph as JSON-ready data: what the builder sent (UI fields included), no defaults added."""
        return self.model_dump(mode="json", exclude_unset=True)
