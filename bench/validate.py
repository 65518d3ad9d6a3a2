"""Graph-validation benchmark: `analyze` on a valid 500-node, 1,000-edge graph.

Prints one JSON line: the median and p95 of `builder.validation.analyze` (goal: median under
50 ms), beside the baseline measured in the same process: pydantic's `Graph.model_validate`
of the same JSON plus a `json.dumps` of it, the parsing cost every request with this graph pays
before validation starts.

Run from the repository root: `.venv/bin/python bench/validate.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timing import p95, timings_ms  # noqa: E402
from blocks.registry import default_registry  # noqa: E402
from builder.graph import Graph  # noqa: E402
from builder.validation import analyze  # noqa: E402

NODES = 500
EDGES = 1000
GOAL_MS = 50
TRIGGER_FIELDS = ("name", "topic", "tone", "language")


def big_graph() -> dict[str, Any]:
    """trigger.api (4 fields) → 498 templates each reading 2 earlier ports → output (4 fields)."""
    nodes: list[dict[str, Any]] = [{
        "id": "in", "type": "trigger.api", "position": {"x": 0, "y": 0},
        "config": {"fields": [{"name": name, "type": "string"} for name in TRIGGER_FIELDS]},
    }]
    edges: list[dict[str, Any]] = []
    sources = [("in", name) for name in TRIGGER_FIELDS]  # every output port so far
    for i in range(NODES - 2):
        node_id = f"t{i}"
        # Read the newest port and one far back, so the graph is deep as well as wide.
        feeds = (sources[-1], sources[(i * 7) % len(sources)])
        nodes.append({
            "id": node_id, "type": "text.template", "position": {"x": 200 * (i % 20), "y": 100 * i},
            "config": {"template": f"Step {i}: {{{{ a }}}} and {{{{ b | upper }}}}."},
        })
        for (source, port), variable in zip(feeds, ("a", "b"), strict=True):
            edges.append({"source": source, "source_port": port, "target": node_id, "target_port": variable})
        sources.append((node_id, "text"))
    results = [f"r{k}" for k in range(EDGES - len(edges))]
    nodes.append({"id": "out", "type": "output",
                  "config": {"fields": [{"name": name, "type": "string"} for name in results]}})
    for k, name in enumerate(results):  # fed by the last templates, so each one is used
        edges.append({"source": f"t{NODES - 3 - k}", "source_port": "text",
                      "target": "out", "target_port": name})
    return {"schema_version": 1, "nodes": nodes, "edges": edges}


def main() -> None:
    """Check the graph, time validation and the parsing baseline, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    data = big_graph()
    registry = default_registry()
    graph = Graph.model_validate(data)
    analysis = analyze(graph, registry)
    if (len(graph.nodes), len(graph.edges)) != (NODES, EDGES) or analysis.problems:
        sys.exit(f"the benchmark graph is wrong: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
                 f"problems: {[p.as_dict() for p in analysis.problems[:5]]}")

    validation = timings_ms(lambda: analyze(graph, registry), args.runs, args.warmup)
    baseline = timings_ms(lambda: (Graph.model_validate(data), json.dumps(data)), args.runs, args.warmup)
    median, base_median = statistics.median(validation), statistics.median(baseline)
    print(json.dumps({
        "bench": "validate", "nodes": NODES, "edges": EDGES,
        "median_ms": round(median, 3), "p95_ms": round(p95(validation), 3), "goal_ms": GOAL_MS,
        "baseline_median_ms": round(base_median, 3), "ratio": round(median / base_median, 2),
    }))


if __name__ == "__main__":
    main()
