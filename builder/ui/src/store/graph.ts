/**
 * The graph being edited: React Flow's nodes and edges, the block catalogue, each node's ports,
 * and the undo history. Every change to what is saved bumps `edits`, which autosave and live
 * validation watch; selection and measuring do not.
 */
import { type Connection, type EdgeChange, type NodeChange, applyEdgeChanges, applyNodeChanges } from "@xyflow/react";
import { create } from "zustand";
import type { Block, GraphDoc, NodePorts } from "../api/types";
import { type Clip, freshId } from "../canvas/clipboard";
import { toFlow } from "../canvas/convert";
import { type BlockFlowNode, type WireEdge, edgeId } from "../canvas/types";
import { type History, emptyHistory, record, redo, undo } from "./history";

interface Snapshot {
  nodes: BlockFlowNode[];
  edges: WireEdge[];
}

/** Config edits closer together than this are one undo step. */
const CONFIG_BURST_MS = 800;

export interface GraphState extends Snapshot {
  /** Keys of the saved graph besides nodes and edges (`settings`...), kept verbatim. */
  extras: Record<string, unknown>;
  blocks: Record<string, Block>;
  /** Ports the server computed from each node's config (dynamic ports); absent: the block's own. */
  ports: Record<string, NodePorts>;
  history: History<Snapshot>;
  edits: number;
  /** Start editing `graph`; `ports` as the server computed them for it, if it did. */
  load: (graph: GraphDoc, ports?: Record<string, NodePorts>) => void;
  setBlocks: (blocks: Block[]) => void;
  onNodesChange: (changes: NodeChange<BlockFlowNode>[]) => void;
  onEdgesChange: (changes: EdgeChange<WireEdge>[]) => void;
  /** Remember the state before a named change, for undo. */
  checkpoint: (label: string) => void;
  dragStart: () => void;
  dragStop: () => void;
  addBlock: (blockType: string, position: { x: number; y: number }) => string;
  connect: (connection: Connection) => void;
  removeSelected: () => number;
  paste: (clip: Clip) => void;
  setConfig: (nodeId: string, config: Record<string, unknown>) => void;
  select: (nodeId: string) => void;
  /** Take the server's ports; wires to ports that went away are removed and described. */
  setPorts: (ports: Record<string, NodePorts>) => string[];
  undo: () => string | null;
  redo: () => string | null;
}

let dragBefore: Snapshot | null = null;
let lastConfigEdit = { nodeId: "", at: 0 };

/** The ports of `nodeId`: the server's computation, else its block's declared ports. */
export function portsOf(state: Pick<GraphState, "nodes" | "ports" | "blocks">, nodeId: string): NodePorts | undefined {
  const computed = state.ports[nodeId];
  if (computed) return computed;
  const node = state.nodes.find((n) => n.id === nodeId);
  const block = node ? state.blocks[node.data.blockType] : undefined;
  return block ? { inputs: block.inputs, outputs: block.outputs } : undefined;
}

const samePorts = (a: NodePorts | undefined, b: NodePorts | undefined) => JSON.stringify(a) === JSON.stringify(b);

export const useGraph = create<GraphState>()((set, get) => {
  const snapshot = (): Snapshot => ({ nodes: get().nodes, edges: get().edges });
  const changed = (partial: Partial<GraphState>) => set((s) => ({ ...partial, edits: s.edits + 1 }));
  const restore = (step: ReturnType<typeof undo<Snapshot>>) => {
    if (!step) return null;
    set((s) => ({ ...step.state, history: step.history, edits: s.edits + 1 }));
    return step.label;
  };

  return {
    nodes: [],
    edges: [],
    extras: {},
    blocks: {},
    ports: {},
    history: emptyHistory(),
    edits: 0,

    load: (graph, ports = {}) => {
      const { nodes: _n, edges: _e, ...extras } = graph;
      set({ ...toFlow(graph), extras, ports, history: emptyHistory(), edits: 0 });
    },
    setBlocks: (blocks) => set({ blocks: Object.fromEntries(blocks.map((b) => [b.type, b])) }),

    onNodesChange: (changes) => {
      // Positions are saved once, when a drag stops; removals go through onBeforeDelete's checkpoint.
      const saves = changes.some((c) => c.type === "remove" || c.type === "add" || c.type === "replace");
      const nodes = applyNodeChanges(changes, get().nodes);
      if (saves) changed({ nodes });
      else set({ nodes });
    },
    onEdgesChange: (changes) => {
      const saves = changes.some((c) => c.type === "remove" || c.type === "add" || c.type === "replace");
      const edges = applyEdgeChanges(changes, get().edges);
      if (saves) changed({ edges });
      else set({ edges });
    },

    checkpoint: (label) => set((s) => ({ history: record(s.history, label, snapshot()) })),
    dragStart: () => {
      dragBefore = snapshot();
    },
    dragStop: () => {
      const before = dragBefore;
      dragBefore = null;
      if (!before) return;
      const moved = get().nodes.some((n) => {
        const old = before.nodes.find((o) => o.id === n.id);
        return old && (old.position.x !== n.position.x || old.position.y !== n.position.y);
      });
      if (moved) set((s) => ({ history: record(s.history, "move", before), edits: s.edits + 1 }));
    },

    addBlock: (blockType, position) => {
      get().checkpoint("add");
      const id = freshId(blockType, new Set(get().nodes.map((n) => n.id)));
      const node: BlockFlowNode = { id, type: "block", position, selected: true, data: { blockType, config: {}, extra: {} } };
      changed({
        nodes: [...get().nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), node],
        edges: get().edges.map((e) => (e.selected ? { ...e, selected: false } : e)),
      });
      return id;
    },
    connect: ({ source, sourceHandle, target, targetHandle }) => {
      if (!sourceHandle || !targetHandle) return;
      get().checkpoint("connect");
      const edge: WireEdge = {
        id: edgeId(source, sourceHandle, target, targetHandle), source, sourceHandle, target, targetHandle, data: { extra: {} },
      };
      changed({ edges: [...get().edges.filter((e) => e.id !== edge.id), edge] });
    },
    removeSelected: () => {
      const { nodes, edges } = get();
      const gone = new Set(nodes.filter((n) => n.selected).map((n) => n.id));
      const keptEdges = edges.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target));
      const count = gone.size + edges.length - keptEdges.length;
      if (count === 0) return 0;
      get().checkpoint("delete");
      changed({ nodes: nodes.filter((n) => !gone.has(n.id)), edges: keptEdges });
      return count;
    },
    paste: (clip) => {
      if (clip.nodes.length === 0) return;
      get().checkpoint("paste");
      // The pasted copies become the selection.
      const nodes = get().nodes.map((n) => (n.selected ? { ...n, selected: false } : n));
      const edges = get().edges.map((e) => (e.selected ? { ...e, selected: false } : e));
      changed({ nodes: [...nodes, ...clip.nodes], edges: [...edges, ...clip.edges] });
    },
    setConfig: (nodeId, config) => {
      const now = Date.now();
      if (lastConfigEdit.nodeId !== nodeId || now - lastConfigEdit.at > CONFIG_BURST_MS) get().checkpoint("edit config");
      lastConfigEdit = { nodeId, at: now };
      changed({ nodes: get().nodes.map((n) => (n.id === nodeId ? { ...n, data: { ...n.data, config } } : n)) });
    },
    select: (nodeId) => set({
      nodes: get().nodes.map((n) => (n.id === nodeId) === Boolean(n.selected) ? n : { ...n, selected: n.id === nodeId }),
      edges: get().edges.map((e) => (e.selected ? { ...e, selected: false } : e)),
    }),

    setPorts: (ports) => {
      const state = get();
      const moved = new Set(Object.keys(ports).filter((id) => !samePorts(portsOf(state, id), ports[id])));
      const dropped: string[] = [];
      const edges = state.edges.filter((e) => {
        const out = moved.has(e.source) && !ports[e.source]?.outputs.some((p) => p.name === e.sourceHandle);
        const inp = moved.has(e.target) && !ports[e.target]?.inputs.some((p) => p.name === e.targetHandle);
        if (out || inp) dropped.push(`${e.source}.${e.sourceHandle} → ${e.target}.${e.targetHandle}`);
        return !(out || inp);
      });
      if (dropped.length > 0) changed({ ports, edges });
      else set({ ports });
      return dropped;
    },

    undo: () => restore(undo(get().history, snapshot())),
    redo: () => restore(redo(get().history, snapshot())),
  };
});
