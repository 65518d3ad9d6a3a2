"""A run as the API shows it: every node of its graph in order, large values truncated.

A published version never changes, so the list of its nodes is read and parsed once per process
(`VersionNodes`): reading a run costs the run and its node runs, not its version's graph too.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import ChildRun, NodeTrace, RunRead
from blocks.registry import Registry
from builder.graph import Graph
from core.nesting import MAX_INPUT_DEPTH, depth
from core.settings import Settings
from models.apps import version_graph
from models.runs import NodeRun, NodeRunValues, Run, RunKind, compact_json, node_runs

NodeList = tuple[tuple[str, str], ...]
COMPOSED = frozenset({"flow.map", "app.call"})  # nodes that start child runs


def graph_nodes(graph: dict[str, Any]) -> NodeList:
    """(id, type) of every node of a stored graph, in the graph's order."""
    return tuple((n.id, n.type) for n in Graph.model_validate(graph).nodes)


class VersionNodes:
    """The node lists of published versions by version id, the most recently used `size` kept."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[uuid.UUID, NodeList] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, version_id: uuid.UUID) -> NodeList:
        """The version's nodes, read from the database on a miss (none if it was deleted)."""
        with self._lock:
            hit = self._items.get(version_id)
            if hit is not None:
                self._items.move_to_end(version_id)
                return hit
        graph = version_graph(session, version_id=version_id)
        if graph is None:
            return ()  # not remembered: a deleted version's runs are gone with it
        nodes = graph_nodes(graph)
        with self._lock:
            self._items[version_id] = nodes
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return nodes


VERSION_NODES = VersionNodes()


def trim(value: Any, limit: int | None) -> Any:
    """`value`, or a marker with a preview when its JSON is over `limit` bytes (None: any size)
    or nests deeper than a response can be serialized (rows stored before inputs were bounded)."""
    if value is None:
        return None
    too_deep = depth(value, stop_past=MAX_INPUT_DEPTH) > MAX_INPUT_DEPTH
    if limit is None and not too_deep:
        return value
    try:
        text = compact_json(value)
    except RecursionError:
        text = ""
    if len(text) <= (limit or len(text)) and not too_deep:
        return value
    return {"_truncated": True, "bytes": len(text), "preview": text[: min(limit or 1000, 1000)]}


def _children(session: Session, run_id: uuid.UUID) -> dict[str, list[ChildRun]]:
    """The child runs of the run's map and call nodes, by node, in item and attempt order."""
    rows = session.execute(select(Run.id, Run.app_id, Run.status, Run.parent_node_id, Run.item_index,
                                  Run.parent_attempt).where(Run.parent_run_id == run_id)
                           .order_by(Run.item_index, Run.parent_attempt))
    found: dict[str, list[ChildRun]] = {}
    for row in rows:
        found.setdefault(row.parent_node_id or "", []).append(ChildRun(
            id=row.id, app_id=row.app_id, status=row.status, item_index=row.item_index,
            attempt=row.parent_attempt))
    return found


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds() * 1000, 3) if start and end else None


def run_read(session: Session, run: Run, registry: Registry, settings: Settings, *,
             fresh: bool = False, recorded: Sequence[NodeRun | NodeRunValues] | None = None) -> RunRead:
    """The run with its trace: one entry per node of its graph, in the graph's order.

    `fresh`: the run was created in this very transaction, so none of its nodes has run yet.
    `recorded`: its node runs, when the caller has just written them (a direct run).
    """
    if not run.draft and run.version_id is not None and run.kind != RunKind.map_item.value:
        nodes = list(VERSION_NODES.get(session, run.version_id))
    else:
        nodes = list(graph_nodes(run.draft_graph or {}))
    found: Sequence[NodeRun | NodeRunValues] = (
        [] if fresh else recorded if recorded is not None else node_runs(session, run_id=run.id))
    rows = {r.node_id: r for r in found}
    limit = settings.trace_value_bytes
    children = _children(session, run.id) if any(t in COMPOSED for _, t in nodes) and not fresh else {}
    trace = []
    # Nodes the run added to the graph (the organization's policies around each model call).
    listed = {node_id for node_id, _ in nodes}
    nodes += [(node_id, row.block_type) for node_id, row in rows.items() if node_id not in listed]
    for node_id, block_type in nodes:
        row = rows.get(node_id)
        if row is None:
            trace.append(NodeTrace(node_id=node_id, block_type=block_type,
                                   status="skipped" if run.status == "cancelled" else "pending"))
            continue
        trace.append(NodeTrace(
            node_id=node_id, block_type=row.block_type, status=row.status,
            inputs=trim(row.inputs, limit), outputs=trim(row.outputs, limit), error=row.error,
            attempts=row.attempts, started_at=row.started_at, finished_at=row.finished_at,
            duration_ms=_ms(row.started_at, row.finished_at),
            waiting_for=(row.waiting_for or {}).get("kind") if row.status == "waiting" else None,
            result=trim(row.result, limit), reused=row.reused, children=children.get(node_id),
        ))
    return RunRead(
        id=run.id, app_id=run.app_id, version_number=run.version_number, draft=run.draft,
        trigger=run.trigger, status=run.status, kind=RunKind(run.kind), test_node_id=run.test_node_id,
        retry_of=run.retry_of, rerun_of=run.rerun_of, parent_run_id=run.parent_run_id,
        parent_node_id=run.parent_node_id, item_index=run.item_index, created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at, inputs=trim(run.inputs, limit), outputs=trim(run.outputs, None),
        error=run.error, duration_ms=_ms(run.created_at, run.finished_at), trace=trace,
    )
