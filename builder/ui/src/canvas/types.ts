/** The shapes React Flow holds for our graph: one node type ("block"), handles named after ports. */
import type { Edge, Node } from "@xyflow/react";

export interface BlockData extends Record<string, unknown> {
  blockType: string;
  config: Record<string, unknown>;
  /** Other keys of the saved node (its `policy`, a label...), kept verbatim. */
  extra: Record<string, unknown>;
}

export type BlockFlowNode = Node<BlockData, "block">;

export interface WireData extends Record<string, unknown> {
  /** Other keys of the saved edge, kept verbatim. */
  extra: Record<string, unknown>;
}

export type WireEdge = Edge<WireData>;

/** An edge's id is derived from its ends, so the same wire always has the same id. */
export function edgeId(source: string, sourcePort: string, target: string, targetPort: string): string {
  return `${source}:${sourcePort}->${target}:${targetPort}`;
}
