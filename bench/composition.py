"""Loops benchmark: a `flow.map` over N items against the same work as N runs started at once.

Prints one JSON line: the seconds from starting a run whose map renders a template for each of N
items (each item a child run, `concurrency` at a time) to its end, and, as the baseline measured
in the same process on the same stack and worker, the seconds from starting N runs of an app that
renders the same template once to the end of the last of them. The ratio is what a map's
bookkeeping (its parent's steps, the items' links) costs over plain runs. Also an `app.call`
chain of depth 3 against one run of the innermost app.

    python bench/composition.py [--stack embedded|production] [--items 20] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.engine.conftest import Stack, running_stack  # noqa: E402
from tests.factories import edge, node  # noqa: E402

TEMPLATE = "Hello, {{ item }}!"


def mapping(items: int, concurrency: int) -> dict[str, Any]:
    """trigger(items) → flow.map(template) → output."""
    return {
        "nodes": [node("in", "trigger.api", fields=[{"name": "items", "type": "array"}]),
                  node("m", "flow.map", body=["t"], collect=[{"name": "texts", "node": "t", "port": "text"}],
                       concurrency=concurrency, max_items=max(items, 1)),
                  node("t", "text.template", template=TEMPLATE),
                  node("out", "output", fields=[{"name": "texts", "type": "array"}])],
        "edges": [edge("in", "items", "m", "items"), edge("m", "item", "t", "item"),
                  edge("m", "texts", "out", "texts")],
    }


def single() -> dict[str, Any]:
    """trigger(item) → template → output: one item's work as an app."""
    return {"nodes": [node("in", "trigger.api", fields=[{"name": "item"}]),
                      node("t", "text.template", template=TEMPLATE), node("out", "output")],
            "edges": [edge("in", "item", "t", "item"), edge("t", "text", "out", "text")]}


def caller(callee: str) -> dict[str, Any]:
    """trigger(item) → app.call(callee) → output: calls chain, since every app takes `item`."""
    return {"nodes": [node("in", "trigger.api", fields=[{"name": "item"}]),
                      node("call", "app.call", app_id=callee), node("out", "output")],
            "edges": [edge("in", "item", "call", "item"), edge("call", "text", "out", "text")]}


def timed(stack: Stack, starts: list[tuple[str, dict[str, Any]]]) -> float:
    """Seconds from starting these runs to the end of the last one (each must succeed)."""
    began = time.perf_counter()
    ids = [stack.run(app_id, inputs)["id"] for app_id, inputs in starts]
    for run_id in ids:
        run = stack.wait_run(run_id, timeout=300)
        assert run["status"] == "succeeded", run
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_stack(args.stack, Path(tmp)) as stack:
        mapper = stack.publish(mapping(args.items, args.concurrency), name="bench-map")
        one = stack.publish(single(), name="bench-one")
        chain = [one]
        for depth in range(3):
            chain.append(stack.publish(caller(chain[-1]), name=f"bench-call-{depth + 1}"))
        items = [f"item {i}" for i in range(args.items)]
        timed(stack, [(mapper, {"items": items[:2]}), (one, {"item": "warm"}), (chain[-1], {"item": "warm"})])
        map_s, runs_s, call_s, plain_s = [], [], [], []
        for _ in range(args.rounds):
            map_s.append(timed(stack, [(mapper, {"items": items})]))
            runs_s.append(timed(stack, [(one, {"item": item}) for item in items]))
            call_s.append(timed(stack, [(chain[-1], {"item": "x"})]))
            plain_s.append(timed(stack, [(one, {"item": "x"})]))
    best_map, best_runs = min(map_s), min(runs_s)
    print(json.dumps({
        "bench": "flow_map", "stack": args.stack, "items": args.items, "concurrency": args.concurrency,
        "map_s": round(best_map, 3), "baseline_separate_runs_s": round(best_runs, 3),
        "ratio": round(best_map / best_runs, 2),
        "app_call_depth3_s": round(min(call_s), 3), "baseline_one_run_s": round(min(plain_s), 3),
    }))


if __name__ == "__main__":
    main()
