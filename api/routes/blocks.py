"""The block catalogue and graph validation without an app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Builder, CurrentKey, LimitsDep, RegistryDep
from api.schemas import BlockList, BlockRead, ValidationReport
from blocks.registry import Registry, UnknownBlockType
from builder.graph import Graph
from builder.validation import Limits, analyze
from core.errors import NotFound

router = APIRouter(tags=["blocks"])


def report_data(graph: Graph, registry: Registry, limits: Limits) -> dict[str, Any]:
    """Validate `graph`: the ValidationReport's fields as plain JSON-ready data.

    Big drafts are saved often (the builder's autosave); building the report as plain data and
    letting the caller send it as is saves a pydantic round trip over every port of every node.
    """
    analysis = analyze(graph, registry, limits)
    ports = {node_id: {"inputs": [p.as_dict() for p in inputs.values()],
                       "outputs": [p.as_dict() for p in analysis.outputs.get(node_id, {}).values()]}
             for node_id, inputs in analysis.inputs.items()}
    return {"valid": not analysis.problems, "problems": [p.as_dict() for p in analysis.problems],
            "ports": ports}


def report(graph: Graph, registry: RegistryDep, limits: LimitsDep) -> ValidationReport:
    """Validate `graph` and shape the result for a response."""
    return ValidationReport.model_validate(report_data(graph, registry, limits))


@router.get("/blocks", response_model=BlockList)
def list_blocks(_: CurrentKey, registry: RegistryDep) -> BlockList:
    """Every block type: ports, execution mode and config JSON Schema, for the palette."""
    return BlockList.model_validate({"items": [b.describe() for b in registry]})


@router.get("/blocks/{block_type}", response_model=BlockRead)
def get_block(block_type: str, _: CurrentKey, registry: RegistryDep) -> BlockRead:
    """One block type."""
    try:
        return BlockRead.model_validate(registry.get(block_type).describe())
    except UnknownBlockType:
        raise NotFound(f"unknown block type {block_type!r}", loc=["path", "block_type"]) from None


@router.post("/graphs/validate", response_model=ValidationReport)
def validate_graph(graph: Graph, _: Builder, registry: RegistryDep, limits: LimitsDep
                   ) -> ValidationReport:
    """Validate a graph that is not saved anywhere (the builder's live check)."""
    return report(graph, registry, limits)
