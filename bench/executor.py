"""Executor benchmark: what the pure executor adds to each node a run executes, in memory.

A four-node app (trigger.api → text.template → logic.condition → output, the condition's `true`
branch wired to the output) is driven to its end with `Executor.drive`, many times; the figure is
microseconds per node. The baseline, measured in the same process, is the blocks' own work on the
same values: each block's `run` on its inputs model, as the executor calls it. The difference is
the executor's share (planning, events, budgets, the inputs model and the check of what a block
emits against its ports), the part a change to the run path moves; the ratio is comparable across
machines, the microseconds are not. No database and no queue: the run worker's own costs (its
transaction, its rows) come on top.

Run from the repository root: `.venv/bin/python bench/executor.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timing import timings_ms  # noqa: E402
from blocks.base import BlockContext  # noqa: E402
from blocks.registry import default_registry  # noqa: E402
from builder.executor import Executor, RunState  # noqa: E402
from builder.graph import Graph  # noqa: E402
from builder.validation import analyze  # noqa: E402
from core.statuses import RunStatus  # noqa: E402

INPUTS = {"name": "Ada", "n": 5}
NODES = 4
BATCH = 200  # runs per sample


def app() -> dict[str, Any]:
    """The benchmark's app: four nodes, one of them a branch."""
    def node(node_id: str, block_type: str, **config: Any) -> dict[str, Any]:
        return {"id": node_id, "type": block_type, "config": config}

    def edge(source: str, port: str, target: str, target_port: str) -> dict[str, Any]:
        return {"source": source, "source_port": port, "target": target, "target_port": target_port}

    return {"schema_version": 1, "nodes": [
        node("in", "trigger.api", fields=[{"name": "name", "type": "string"},
                                          {"name": "n", "type": "integer"}]),
        node("greet", "text.template", template="Hello, {{ name }}!"),
        node("check", "logic.condition", operator="greater_than", value=3),
        node("out", "output", fields=[{"name": "text", "type": "string"},
                                      {"name": "big", "type": "any", "required": False}]),
    ], "edges": [edge("in", "name", "greet", "name"), edge("greet", "text", "out", "text"),
                 edge("in", "n", "check", "value"), edge("check", "true", "out", "big")]}


def main() -> None:
    """Time the driven runs and the blocks' own work; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    analysis = analyze(Graph.model_validate(app()), default_registry())
    if not analysis.valid:
        sys.exit(f"the benchmark app is invalid: {[p.message for p in analysis.problems]}")
    executor = Executor(analysis)

    def one_run() -> RunState:
        state = RunState(run_id=uuid.uuid4(), org_id=uuid.uuid4(), app_id=uuid.uuid4(), inputs=dict(INPUTS),
                         created_at=datetime.now(UTC))
        for _ in executor.drive(state):
            pass
        return state

    done = one_run()
    if done.status is not RunStatus.succeeded or done.outputs != {"text": "Hello, Ada!", "big": 5}:
        sys.exit(f"the benchmark run went wrong: {done.status} {done.outputs} {done.error}")
    # The baseline: each block's run on the inputs model the executor gave it in that run.
    ctx = BlockContext(run_id=done.run_id, node_id="x", org_id=done.org_id, app_id=done.app_id)
    calls = [(block, block.typed_inputs(done.node(node_id).inputs or {}))
             for node_id, block in analysis.blocks.items()]

    def blocks_only() -> None:
        for block, inputs in calls:
            block.run(inputs, ctx)

    def batch(action: Any) -> Any:
        return lambda: [action() for _ in range(BATCH)]

    per_node = 1000 / (BATCH * NODES)  # milliseconds per batch -> microseconds per node
    driven = statistics.median(timings_ms(batch(one_run), args.samples, args.warmup)) * per_node
    alone = statistics.median(timings_ms(batch(blocks_only), args.samples, args.warmup)) * per_node
    print(json.dumps({
        "bench": "executor", "nodes_per_run": NODES, "us_per_node": round(driven, 2),
        "baseline_blocks_us_per_node": round(alone, 2), "executor_us_per_node": round(driven - alone, 2),
        "ratio": round(driven / alone, 2),
    }))


if __name__ == "__main__":
    main()
