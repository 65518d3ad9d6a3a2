"""The JSON DAG of an app: nodes (configured blocks) joined by edges between typed ports.

UI fields a builder adds (`position`, colours, an edge's own id) are kept verbatim and
ignored by the engine, so nodes, edges and the graph accept extra keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NODE_ID = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$"
PORT_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class Node(BaseModel):
    """A configured block on the canvas."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=NODE_ID, description="Stable id chosen by the builder.")
    type: str = Field(min_length=1, max_length=100, description="Block type, e.g. `text.template`.")
    config: dict[str, Any] = Field(default_factory=dict)


class Edge(BaseModel):
    """A wire from one node's output port to another node's input port."""

    model_config = ConfigDict(extra="allow")

    source: str = Field(max_length=64)
    source_port: str = Field(pattern=PORT_NAME)
    target: str = Field(max_length=64)
    target_port: str = Field(pattern=PORT_NAME)


class Graph(BaseModel):
    """An app's graph, as the builder saves it."""

    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        """The graph as JSON-ready data, UI fields included."""
        return self.model_dump(mode="json")
