/**
 * The graph a run executed, read-only, each node showing its status in the run (icon, words and
 * colour, from the run store). Clicking a node selects its entry in the trace beside it.
 */
import { Background, Controls, type Edge, Handle, type Node, type NodeProps, Position, ReactFlow } from "@xyflow/react";
import { memo, useMemo } from "react";
import type { Block, GraphDoc } from "../api/types";
import { edgeId } from "../canvas/types";
import { useRun } from "../store/run";
import { T } from "../testids";
import { NodeRunLine } from "./NodeRunLine";

interface RunNodeData extends Record<string, unknown> {
  blockType: string;
  title: string;
  selected: boolean;
}
type RunNode = Node<RunNodeData, "run">;

function RunNodeView({ id, data }: NodeProps<RunNode>) {
  const run = useRun((s) => s.nodes[id]);
  return (
    <div className={`block-node run-node${data.selected ? " is-selected" : ""}${run ? ` run-${run.status}` : ""}`}
      data-block-type={data.blockType}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="block-head">
        <span className="block-title">{data.title}</span>
        <span className="block-id">{id}</span>
      </div>
      {run ? <NodeRunLine run={run} /> : <p className="block-run muted">Not reached</p>}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

// Declared once, outside any component (xyflow performance guide).
const nodeTypes = { run: memo(RunNodeView) };

interface Props {
  graph: GraphDoc;
  blocks: Record<string, Block>;
  selected: string | null;
  onSelect: (nodeId: string) => void;
}

export function RunCanvas({ graph, blocks, selected, onSelect }: Props) {
  const nodes = useMemo(() => graph.nodes.map((n, i): RunNode => ({
    id: n.id, type: "run", draggable: false, connectable: false,
    position: n.position ?? { x: (i % 5) * 260, y: Math.floor(i / 5) * 160 },
    data: { blockType: n.type, title: blocks[n.type]?.title ?? n.type, selected: n.id === selected },
  })), [graph, blocks, selected]);
  const edges = useMemo(() => graph.edges.map((e): Edge => ({
    id: edgeId(e.source, e.source_port, e.target, e.target_port), source: e.source, target: e.target,
    ariaLabel: `${e.source}.${e.source_port} to ${e.target}.${e.target_port}`,
  })), [graph]);

  return (
    <div className="run-canvas" data-testid={T.runCanvas}>
      <ReactFlow<RunNode, Edge> nodes={nodes} edges={edges} nodeTypes={nodeTypes} nodesDraggable={false}
        nodesConnectable={false} elementsSelectable={false} onNodeClick={(_, node) => onSelect(node.id)}
        fitView minZoom={0.1} aria-label="The graph this run executed (read only)">
        <Background gap={16} />
        <Controls showInteractive={false} aria-label="Zoom and fit" />
      </ReactFlow>
    </div>
  );
}
