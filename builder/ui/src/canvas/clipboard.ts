/** Copy and paste of nodes: pasted nodes get fresh ids and an offset; wires among them come along. */
import { type BlockFlowNode, type WireEdge, edgeId } from "./types";

export interface Clip {
  nodes: BlockFlowNode[];
  edges: WireEdge[];
}

/** A node id for a new block of `blockType`: its last name part and the first free number. */
export function freshId(blockType: string, taken: ReadonlySet<string>): string {
  const base = (blockType.split(".").pop() ?? "node").replace(/[^A-Za-z0-9_]/g, "_").slice(0, 50) || "node";
  for (let n = 1; ; n++) {
    const id = `${base}_${n}`;
    if (!taken.has(id)) return id;
  }
}

/** The selected nodes and the edges whose both ends are selected. */
export function copySelection(nodes: readonly BlockFlowNode[], edges: readonly WireEdge[]): Clip {
  const picked = nodes.filter((n) => n.selected);
  const ids = new Set(picked.map((n) => n.id));
  return {
    nodes: structuredClone(picked),
    edges: structuredClone(edges.filter((e) => ids.has(e.source) && ids.has(e.target))),
  };
}

/** The clip's nodes and edges renamed so no id collides with `taken`, moved by `offset`, selected. */
export function pasteClip(clip: Clip, taken: ReadonlySet<string>, offset: { x: number; y: number }): Clip {
  const used = new Set(taken);
  const rename = new Map<string, string>();
  const nodes = clip.nodes.map((n): BlockFlowNode => {
    const id = freshId(n.data.blockType, used);
    used.add(id);
    rename.set(n.id, id);
    return {
      id,
      type: "block",
      position: { x: n.position.x + offset.x, y: n.position.y + offset.y },
      data: structuredClone(n.data),
      selected: true,
    };
  });
  const edges = clip.edges.map((e): WireEdge => {
    const source = rename.get(e.source) as string;
    const target = rename.get(e.target) as string;
    return {
      id: edgeId(source, e.sourceHandle ?? "", target, e.targetHandle ?? ""),
      source,
      sourceHandle: e.sourceHandle ?? null,
      target,
      targetHandle: e.targetHandle ?? null,
      data: structuredClone(e.data ?? { extra: {} }),
    };
  });
  return { nodes, edges };
}
