"""Retrying a failed run from its failed nodes: which nodes of the new run reuse earlier outputs.

A node is reused when it succeeded in the earlier run and every node it reads from is reused too:
it would then receive exactly the inputs it had, so running it again could only repeat a side
effect (an SMS sent twice) or a cost (a model called twice). Everything else runs again: the
nodes that failed, those skipped because the run failed, and everything downstream of a node
that runs again (a node that failed with `on_error: continue` handed on its default; its readers
must see what it emits this time). A node the new graph lacks, or whose block type changed
(the policies a draft runs under may have changed), is never reused.
"""

from __future__ import annotations

from collections.abc import Mapping

from builder.validation import Analysis


def reusable(analysis: Analysis, succeeded: Mapping[str, str]) -> list[str]:
    """The nodes of `analysis` a retry reuses, in the graph's order.

    `succeeded`: block type by node id, of every node that succeeded in the earlier run.
    """
    reused: set[str] = set()
    for node_id in analysis.order:  # topological: a node's sources are decided before it
        block = analysis.blocks[node_id]
        if succeeded.get(node_id) != block.type:
            continue
        if all(edge.source in reused for edge in analysis.incoming.get(node_id, ())):
            reused.add(node_id)
    return [node_id for node_id in analysis.order if node_id in reused]
