/**
 * Between the saved graph (what the API stores) and React Flow's nodes and edges.
 *
 * Only what the graph means is saved: React Flow's own keys (`selected`, `dragging`, `measured`,
 * ...) stay in the browser, so selecting a node never changes the draft.
 */
import type { GraphDoc, GraphEdge, GraphNode } from "../api/types";
import { type BlockFlowNode, type WireEdge, edgeId } from "./types";

export function toFlow(graph: GraphDoc): { nodes: BlockFlowNode[]; edges: WireEdge[] } {
  // A new app's draft may be `{}`: no nodes or edges yet.
  const nodes = (graph.nodes ?? []).map((n, i): BlockFlowNode => {
    const { id, type, config, position, ...extra } = n;
    return {
      id,
      type: "block",
      // Nodes saved without a position (written by hand or through the API) are laid out in a grid.
      position: position ?? { x: (i % 6) * 260, y: Math.floor(i / 6) * 180 },
      data: { blockType: type, config: config ?? {}, extra },
    };
  });
  const edges = (graph.edges ?? []).map((e): WireEdge => {
    const { source, source_port, target, target_port, ...extra } = e;
    return {
      id: edgeId(source, source_port, target, target_port),
      source,
      sourceHandle: source_port,
      target,
      targetHandle: target_port,
      data: { extra },
    };
  });
  return { nodes, edges };
}

export function toGraph(nodes: BlockFlowNode[], edges: WireEdge[], extras: Record<string, unknown> = {}
): GraphDoc {
  return {
    ...extras,
    schema_version: 1,
    nodes: nodes.map((n): GraphNode => ({
      ...n.data.extra,
      id: n.id,
      type: n.data.blockType,
      config: n.data.config,
      position: { x: Math.round(n.position.x), y: Math.round(n.position.y) },
    })),
    edges: edges.map((e): GraphEdge => ({
      ...(e.data?.extra ?? {}),
      source: e.source,
      source_port: e.sourceHandle ?? "",
      target: e.target,
      target_port: e.targetHandle ?? "",
    })),
  };
}
