"""Validation problems: one shape, stable codes the builder can rely on."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Code(enum.StrEnum):
    """Every problem the validator reports; the values are a public, stable contract."""

    unknown_block_type = "unknown_block_type"
    invalid_config = "invalid_config"
    invalid_policy = "invalid_policy"
    duplicate_node_id = "duplicate_node_id"
    unknown_node = "unknown_node"
    unknown_port = "unknown_port"
    port_type_mismatch = "port_type_mismatch"
    required_input_missing = "required_input_missing"
    input_fed_twice = "input_fed_twice"
    cycle = "cycle"
    no_trigger = "no_trigger"
    multiple_triggers = "multiple_triggers"
    too_many_nodes = "too_many_nodes"
    too_many_edges = "too_many_edges"
    config_too_large = "config_too_large"
    graph_too_large = "graph_too_large"
    too_deep = "too_deep"
    map_body = "map_body"
    app_call_chain = "app_call_chain"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a graph, located at a node and port where it can be."""

    code: Code
    message: str
    node_id: str | None = None
    port: str | None = None
    path: str | None = None  # inside a node's config, for `invalid_config`
    nodes: tuple[str, ...] | None = None  # the nodes on a cycle, in order

    def as_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready data (absent locations left out)."""
        data: dict[str, Any] = {"code": self.code.value, "message": self.message, "node_id": self.node_id,
                "port": self.port}
        if self.path is not None:
            data["path"] = self.path
        if self.nodes is not None:
            data["nodes"] = list(self.nodes)
        return data
