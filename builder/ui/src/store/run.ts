/**
 * The state of the run being watched, keyed by node id. It lives outside the graph store so a run
 * never dirties the draft; BlockNode reads its node's entry to show the status (text and colour).
 */
import { create } from "zustand";

export type NodeRunStatus = "queued" | "running" | "succeeded" | "failed" | "waiting" | "skipped";

export interface NodeRun {
  status: NodeRunStatus;
  /** Text streamed so far (a model's answer). */
  text?: string;
  error?: string;
}

interface RunState {
  runId: string | null;
  nodes: Record<string, NodeRun>;
  /** While a run is live the canvas is read-only. */
  live: boolean;
  start: (runId: string) => void;
  setNode: (nodeId: string, run: NodeRun) => void;
  finish: () => void;
  clear: () => void;
}

export const useRun = create<RunState>()((set) => ({
  runId: null,
  nodes: {},
  live: false,
  start: (runId) => set({ runId, nodes: {}, live: true }),
  setNode: (nodeId, run) => set((s) => ({ nodes: { ...s.nodes, [nodeId]: run } })),
  finish: () => set({ live: false }),
  clear: () => set({ runId: null, nodes: {}, live: false }),
}));
