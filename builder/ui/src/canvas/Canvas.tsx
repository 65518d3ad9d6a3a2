/**
 * The React Flow canvas: blocks dropped from the palette, wires checked by one rule
 * (`wireProblem`) whose refusal is said in the status line, undo checkpoints at drag and delete.
 */
import {
  Background, type Connection, Controls, type Edge, type FinalConnectionState, MiniMap, ReactFlow, useReactFlow,
} from "@xyflow/react";
import { type DragEvent, useCallback, useMemo, useState } from "react";
import type { Problem } from "../api/types";
import { portsOf, useGraph } from "../store/graph";
import { useProblems, wireProblemKeys } from "../store/problems";
import { useRun } from "../store/run";
import { useUi } from "../store/ui";
import { T } from "../testids";
import { BlockNode } from "./BlockNode";
import { describe } from "./describe";
import { wireProblem } from "./connect";
import type { BlockFlowNode, WireEdge } from "./types";

/** The MIME type of a palette item being dragged; its data is the block type. */
export const BLOCK_MIME = "application/x-mantle-block";

// Declared once, outside any component, so React Flow never sees a new object (xyflow performance guide).
const nodeTypes = { block: BlockNode };
const deleteKeys = ["Delete", "Backspace"];
const fitOptions = { maxZoom: 1 };
/** Above this many nodes, only the visible part of the graph is drawn. */
const VIRTUALIZE_FROM = 150;

/** Wires a problem names are drawn red and dashed, with a warning sign and the message as label. */
function flagWires(edges: WireEdge[], problems: Problem[]): WireEdge[] {
  const keys = wireProblemKeys(problems);
  if (keys.size === 0) return edges;
  return edges.map((e) => {
    const message = keys.get(`${e.target}:${e.targetHandle}`);
    return message ? { ...e, className: "has-problem", label: "⚠", ariaLabel: `Wire with a problem: ${message}` } : e;
  });
}

function problemOf(c: Connection | Edge): string | null {
  const state = useGraph.getState();
  return wireProblem(c, { edges: state.edges, portsOf: (id) => portsOf(state, id) });
}

export function Canvas() {
  const nodes = useGraph((s) => s.nodes);
  const edges = useGraph((s) => s.edges);
  const onNodesChange = useGraph((s) => s.onNodesChange);
  const onEdgesChange = useGraph((s) => s.onEdgesChange);
  const live = useRun((s) => s.live);
  const problems = useProblems((s) => s.problems);
  const shownEdges = useMemo(() => flagWires(edges, problems), [edges, problems]);
  const { screenToFlowPosition } = useReactFlow();
  // Fit the graph that was opened; an empty one must not re-fit (and jump) when its first block lands.
  const [fitOnOpen] = useState(() => useGraph.getState().nodes.length > 0);

  const isValidConnection = useCallback((c: Connection | Edge) => {
    const why = problemOf(c);
    if (why) useUi.getState().say(why);
    return why === null;
  }, []);

  const onConnect = useCallback((c: Connection) => {
    useGraph.getState().connect(c);
    useUi.getState().say(`Connected ${c.source}.${c.sourceHandle} to ${c.target}.${c.targetHandle}.`);
  }, []);

  const onConnectEnd = useCallback((_: MouseEvent | TouchEvent, state: FinalConnectionState) => {
    if (state.isValid !== false || !state.toHandle || !state.fromHandle) return;
    const from = state.fromHandle;
    const to = state.toHandle;
    const [src, dst] = from.type === "source" ? [from, to] : [to, from];
    const why = problemOf({ source: src.nodeId, sourceHandle: src.id ?? null, target: dst.nodeId, targetHandle: dst.id ?? null });
    if (why) useUi.getState().say(`Wire refused. ${why}`);
  }, []);

  const onBeforeDelete = useCallback(async ({ nodes: n, edges: e }: { nodes: BlockFlowNode[]; edges: WireEdge[] }) => {
    if (n.length + e.length > 0) {
      useGraph.getState().checkpoint("delete");
      useUi.getState().say(`Deleted ${describe(n.length, e.length)}.`);
    }
    return true;
  }, []);

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(BLOCK_MIME)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }, []);

  const onDrop = useCallback((event: DragEvent) => {
    const blockType = event.dataTransfer.getData(BLOCK_MIME);
    if (!blockType || useRun.getState().live) return;
    event.preventDefault();
    const at = screenToFlowPosition({ x: event.clientX, y: event.clientY });
    const id = useGraph.getState().addBlock(blockType, { x: at.x - 90, y: at.y - 20 });
    useUi.getState().say(`Added ${blockType} as ${id}.`);
  }, [screenToFlowPosition]);

  return (
    <div className="canvas" data-testid={T.canvas} onDragOver={onDragOver} onDrop={onDrop}>
      <ReactFlow<BlockFlowNode, WireEdge>
        nodes={nodes}
        edges={shownEdges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        onBeforeDelete={onBeforeDelete}
        onNodeDragStart={useGraph.getState().dragStart}
        onNodeDragStop={useGraph.getState().dragStop}
        deleteKeyCode={live ? null : deleteKeys}
        nodesDraggable={!live}
        nodesConnectable={!live}
        elementsSelectable
        onlyRenderVisibleElements={nodes.length > VIRTUALIZE_FROM}
        fitView={fitOnOpen}
        fitViewOptions={fitOptions}
        minZoom={0.1}
        aria-label="Canvas: the app's blocks and wires"
      >
        <Background gap={16} />
        <Controls aria-label="Zoom and fit" />
        <MiniMap pannable zoomable ariaLabel="Minimap of the whole graph" />
      </ReactFlow>
    </div>
  );
}
