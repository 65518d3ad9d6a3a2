/**
 * A run's events (GET /v1/runs/{id}/events) reduced to what the canvas shows: the run's status
 * and each node's. Pure, so the reduction is tested without a browser; the worker's `_describe`
 * (worker/engine.py) and the inference reporter's `node_progress` are the events' source.
 */
import type { NodeTrace, RunRead } from "../api/types";
import type { NodeRun, NodeRunStatus, RunStatus, RunView } from "../store/run";

/** One entry of a run's event log, as the stream sends it. */
export interface RunEvent {
  id: number;
  type: string;
  node_id: string | null;
  at: string;
  data: Record<string, unknown>;
}

export const ENDED: ReadonlySet<string> = new Set(["succeeded", "failed", "blocked", "cancelled"]);

const RUN_STATUSES: ReadonlySet<string> = new Set(["queued", "running", "waiting", ...ENDED]);
const NODE_STATUSES: Record<string, NodeRunStatus> = {
  pending: "queued", queued: "queued", running: "running", waiting: "waiting",
  succeeded: "succeeded", failed: "failed", skipped: "skipped",
};

/** A person-readable sentence from an error as the API records it (a string or `{message}`). */
export function errorText(error: unknown): string | undefined {
  if (error === null || error === undefined || error === "") return undefined;
  if (typeof error === "string") return error;
  if (typeof error === "object" && "message" in error && typeof error.message === "string") return error.message;
  return JSON.stringify(error);
}

/** A run about to start: every node of its graph queued. */
export function startView(nodeIds: string[]): RunView {
  return { status: "queued", nodes: Object.fromEntries(nodeIds.map((id) => [id, { status: "queued" }])), lastEventId: 0 };
}

function withNode(view: RunView, nodeId: string, change: (old: NodeRun) => NodeRun): RunView {
  const old = view.nodes[nodeId] ?? { status: "queued" };
  return { ...view, nodes: { ...view.nodes, [nodeId]: change(old) } };
}

/** The view after one more event (events already applied, by id, change nothing). */
export function reduce(view: RunView, event: RunEvent): RunView {
  if (event.id <= view.lastEventId) return view;
  const next = { ...view, lastEventId: event.id };
  const data = event.data ?? {};
  const node = event.node_id;
  switch (event.type) {
    case "run_started":
      return { ...next, status: "running" };
    case "run_waiting":
      return { ...next, status: "waiting" };
    case "run_finished": {
      const status = String(data.status);
      return { ...next, status: (RUN_STATUSES.has(status) ? status : "failed") as RunStatus,
        outputs: data.outputs, error: errorText(data.error) };
    }
  }
  if (!node) return next;
  switch (event.type) {
    case "node_started":
      return withNode(next, node, (old) => ({ ...old, status: "running", attempt: Number(data.attempt) || 1,
        error: undefined, waitingFor: undefined }));
    case "node_waiting":
      return withNode(next, node, (old) => ({ ...old, status: "waiting", waitingFor: String(data.kind ?? "") }));
    case "node_retrying":
      return withNode(next, node, (old) => ({ ...old, status: "retrying", error: errorText(data.error) }));
    case "node_progress":
      return withNode(next, node, (old) => ({ ...old, text: (old.text ?? "") + String(data.delta ?? "") }));
    case "node_finished":
      return withNode(next, node, (old) => ({
        ...old,
        status: NODE_STATUSES[String(data.status)] ?? "failed",
        error: errorText(data.error),
        waitingFor: undefined,
        reused: data.reused === true || undefined,
      }));
    default:
      return next;
  }
}

/** Every event applied in order (a frame's worth of the stream at once). */
export function reduceAll(view: RunView, events: readonly RunEvent[]): RunView {
  return events.reduce(reduce, view);
}

/** A node's entry from a run's trace (an ended run opened later, or the trace after the stream). */
export function nodeFromTrace(entry: NodeTrace): NodeRun {
  const outputs = entry.outputs as Record<string, unknown> | null | undefined;
  const text = entry.block_type === "llm.prompt" && typeof outputs?.text === "string" ? outputs.text : undefined;
  return {
    status: NODE_STATUSES[entry.status] ?? "failed",
    error: entry.error ?? undefined,
    waitingFor: entry.status === "waiting" ? entry.waiting_for ?? undefined : undefined,
    reused: entry.reused || undefined,
    attempt: entry.attempts || undefined,
    text,
  };
}

/** The whole view of a run read with GET /v1/runs/{id}. */
export function viewFromTrace(run: RunRead, lastEventId = 0): RunView {
  return {
    status: (RUN_STATUSES.has(run.status) ? run.status : "failed") as RunStatus,
    nodes: Object.fromEntries(run.trace.map((t) => [t.node_id, nodeFromTrace(t)])),
    outputs: run.outputs ?? undefined,
    error: errorText(run.error),
    lastEventId,
  };
}
