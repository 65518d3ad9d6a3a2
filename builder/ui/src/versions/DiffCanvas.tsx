/**
 * The diff on a read-only canvas: the newer graph, plus what the older one had and lost, each node
 * and wire marked added, removed or changed by a word and a line style as well as a colour.
 */
import { Background, Controls, type Edge, Handle, type Node, type NodeProps, Position, ReactFlow } from "@xyflow/react";
import { memo, useMemo } from "react";
import type { GraphDoc } from "../api/types";
import { edgeId } from "../canvas/types";
import { T } from "../testids";
import type { GraphDiff } from "./diff";

type Change = "added" | "removed" | "changed" | "same";
interface DiffData extends Record<string, unknown> {
  blockType: string;
  change: Change;
  keys: string[];
}
type DiffNode = Node<DiffData, "diff">;

const WORDS: Record<Change, string> = { added: "Added", removed: "Removed", changed: "Changed", same: "" };

function DiffNodeView({ id, data }: NodeProps<DiffNode>) {
  return (
    <div className={`diff-node diff-${data.change}`} data-change={data.change}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="diff-node-head"><code>{id}</code>{data.change !== "same" && <strong>{WORDS[data.change]}</strong>}</div>
      <div className="diff-node-type">{data.blockType}</div>
      {data.keys.length > 0 && <div className="diff-node-keys">config: {data.keys.join(", ")}</div>}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

// Declared once, outside any component (xyflow performance guide).
const nodeTypes = { diff: memo(DiffNodeView) };

function layout(graph: GraphDoc, at: number, id: string) {
  const i = graph.nodes.findIndex((n) => n.id === id);
  return graph.nodes[i]?.position ?? { x: (at % 5) * 240, y: Math.floor(at / 5) * 140 };
}

export function DiffCanvas({ before, after, diff }: { before: GraphDoc; after: GraphDoc; diff: GraphDiff }) {
  const { nodes, edges } = useMemo(() => {
    const changed = new Map(diff.nodes.changed.map((c) => [c.id, c.keys]));
    const added = new Set(diff.nodes.added.map((n) => n.id));
    const shown: DiffNode[] = after.nodes.map((n, i) => ({
      id: n.id, type: "diff", position: layout(after, i, n.id), draggable: false,
      data: { blockType: n.type, change: added.has(n.id) ? "added" : changed.has(n.id) ? "changed" : "same", keys: changed.get(n.id) ?? [] },
    }));
    diff.nodes.removed.forEach((n, i) => shown.push({
      id: n.id, type: "diff", position: layout(before, after.nodes.length + i, n.id), draggable: false,
      data: { blockType: n.type, change: "removed", keys: [] },
    }));
    const newWires = new Set(diff.edges.added.map((e) => edgeId(e.source, e.source_port, e.target, e.target_port)));
    const wires: Edge[] = after.edges.map((e) => {
      const id = edgeId(e.source, e.source_port, e.target, e.target_port);
      const isNew = newWires.has(id);
      return { id, source: e.source, target: e.target, className: isNew ? "diff-added" : undefined,
        label: isNew ? `added: ${e.source_port} → ${e.target_port}` : undefined };
    });
    diff.edges.removed.forEach((e) => wires.push({
      id: `removed:${edgeId(e.source, e.source_port, e.target, e.target_port)}`, source: e.source, target: e.target,
      className: "diff-removed", label: `removed: ${e.source_port} → ${e.target_port}`,
    }));
    return { nodes: shown, edges: wires };
  }, [before, after, diff]);

  return (
    <div className="diff-canvas" data-testid={T.diffCanvas}>
      <ReactFlow<DiffNode, Edge> nodes={nodes} edges={edges} nodeTypes={nodeTypes} nodesDraggable={false}
        nodesConnectable={false} elementsSelectable={false} fitView minZoom={0.1}
        aria-label="The changes on the graph (read only)">
        <Background gap={16} />
        <Controls showInteractive={false} aria-label="Zoom and fit" />
      </ReactFlow>
    </div>
  );
}
