/**
 * The state of the run being watched, keyed by node id. It lives outside the graph store so a run
 * never dirties the draft; BlockNode reads its node's entry to show the status (text, icon and
 * colour). The event stream is reduced into it by src/runs/follow.ts; the full trace (inputs,
 * outputs, timing of every node) arrives when the run ends.
 */
import { create } from "zustand";
import type { RunRead } from "../api/types";

export type NodeRunStatus = "queued" | "running" | "succeeded" | "failed" | "waiting" | "skipped" | "retrying";

export type RunStatus = "queued" | "running" | "waiting" | "succeeded" | "failed" | "blocked" | "cancelled";

export interface NodeRun {
  status: NodeRunStatus;
  /** Text streamed so far (a model's answer). */
  text?: string;
  error?: string;
  /** What a waiting node waits for: `review`, `inference`, `timer`... */
  waitingFor?: string;
  /** Not executed in this run: a retry reused its outputs from the failed run. */
  reused?: boolean;
  attempt?: number;
}

/** What a run looks like after the events seen so far. */
export interface RunView {
  status: RunStatus;
  nodes: Record<string, NodeRun>;
  outputs?: unknown;
  error?: string;
  /** The id of the last event applied (a reconnecting stream sends it as Last-Event-ID). */
  lastEventId: number;
}

interface RunState extends RunView {
  runId: string | null;
  /** While a run is live the canvas is read-only. */
  live: boolean;
  /** The run as GET /v1/runs/{id} answered once it ended (the node inspector reads it). */
  trace: RunRead | null;
  /** Why following the run stopped early (the stream could not be read), if it did. */
  problem: string;
  start: (runId: string, view: RunView) => void;
  show: (view: Partial<RunView>) => void;
  setTrace: (trace: RunRead) => void;
  setNode: (nodeId: string, run: NodeRun) => void;
  finish: (problem?: string) => void;
  clear: () => void;
}

const EMPTY: RunView = { status: "queued", nodes: {}, lastEventId: 0 };

export const useRun = create<RunState>()((set) => ({
  ...EMPTY,
  runId: null,
  live: false,
  trace: null,
  problem: "",
  start: (runId, view) => set({ ...EMPTY, ...view, runId, live: true, trace: null, problem: "" }),
  show: (view) => set(view),
  setTrace: (trace) => set({ trace }),
  setNode: (nodeId, run) => set((s) => ({ nodes: { ...s.nodes, [nodeId]: run } })),
  finish: (problem = "") => set({ live: false, problem }),
  clear: () => set({ ...EMPTY, runId: null, live: false, trace: null, problem: "" }),
}));
