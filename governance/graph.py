"""Organization policies in a run: the app's graph with policy nodes around every model call.

An app with attached policies runs a rewritten copy of its graph; the stored graph is never
changed. For each `llm.prompt` node `gen` and each policy, in order:

    inputs ─▶ gen:prompt (text.template, gen's template) ─▶ gen:in0 ─▶ … ─▶ gen (template "{{ text }}")
    gen ─▶ gen:out0 ─▶ … ─▶ whatever read gen's `text`

So the model receives the rendered prompt after every policy screened (and possibly redacted)
it, and the answer is screened before anything reads it. The inserted nodes are ordinary
`governance.policy` nodes: each decision is recorded on its own node run (verdict, findings
with rule and action), a `review` verdict waits in the review queue, and since nothing wires
their `blocked` port a `block` verdict ends the run `blocked`.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

MAX_NODE_ID = 64
PolicySpec = tuple[str, int, dict[str, Any]]  # name, version, rules


def _ids(node_id: str, suffixes: Sequence[str], taken: set[str]) -> dict[str, str]:
    """Ids for the nodes inserted around `node_id`: readable when they fit and are free."""
    wanted = {s: f"{node_id}:{s}" for s in suffixes}
    if any(len(i) > MAX_NODE_ID or i in taken for i in wanted.values()):
        digest = hashlib.sha256(node_id.encode()).hexdigest()[:16]
        wanted = {s: f"policy.{digest}:{s}" for s in suffixes}
    return wanted


def govern(graph: dict[str, Any], policies: Sequence[PolicySpec]) -> dict[str, Any]:
    """A copy of `graph` with `policies` applied to every `llm.prompt` input and output."""
    if not policies:
        return graph
    governed = copy.deepcopy(graph)
    nodes: list[dict[str, Any]] = governed.get("nodes", [])
    edges: list[dict[str, Any]] = governed.get("edges", [])
    taken = {str(n.get("id")) for n in nodes}
    for node in [n for n in nodes if n.get("type") == "llm.prompt"]:
        node_id = str(node["id"])
        count = len(policies)
        ids = _ids(node_id, ["prompt", *(f"in{i}" for i in range(count)), *(f"out{i}" for i in range(count))],
                   taken)
        taken.update(ids.values())
        config = node.setdefault("config", {})
        nodes.append({"id": ids["prompt"], "type": "text.template",
                      "config": {"template": config.get("template", "{{ text }}")}})
        config["template"] = "{{ text }}"
        for i, (_name, _version, rules) in enumerate(policies):
            nodes.append({"id": ids[f"in{i}"], "type": "governance.policy", "config": copy.deepcopy(rules)})
            nodes.append({"id": ids[f"out{i}"], "type": "governance.policy", "config": copy.deepcopy(rules)})
        for edge in edges:
            if edge.get("target") == node_id:
                edge["target"] = ids["prompt"]
            elif edge.get("source") == node_id and edge.get("source_port") == "text":
                edge["source"] = ids[f"out{count - 1}"]
        chain_in = [ids["prompt"], *(ids[f"in{i}"] for i in range(count)), node_id]
        chain_out = [node_id, *(ids[f"out{i}"] for i in range(count))]
        for chain in (chain_in, chain_out):
            edges.extend({"source": a, "source_port": "text", "target": b, "target_port": "text"}
                         for a, b in zip(chain, chain[1:], strict=False))
    return governed
