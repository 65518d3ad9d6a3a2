/**
 * How a status reads: a word, an icon and (in styles.css) a colour, so no state is told by colour
 * alone. Shared by the nodes on the canvas, the trace and the runs list.
 */
import type { NodeRun, NodeRunStatus } from "../store/run";

const NODE_LOOK: Record<NodeRunStatus, { icon: string; label: string }> = {
  queued: { icon: "○", label: "Queued" },
  running: { icon: "◔", label: "Running" },
  succeeded: { icon: "✓", label: "Succeeded" },
  failed: { icon: "✕", label: "Failed" },
  waiting: { icon: "⏸", label: "Waiting" },
  skipped: { icon: "⤼", label: "Skipped" },
  retrying: { icon: "↻", label: "Retrying" },
};

const WAITING_FOR: Record<string, string> = {
  review: "Waiting for a reviewer",
  inference: "Waiting for the model",
  timer: "Waiting for its timer",
};

export const RUN_ICONS: Record<string, string> = {
  queued: "○", running: "◔", waiting: "⏸", succeeded: "✓", failed: "✕", blocked: "⛔", cancelled: "⊘",
};

/** "Waiting for a reviewer", "Succeeded (reused)", "Retrying (attempt 2 failed)"... */
export function nodeLabel(run: NodeRun): string {
  if (run.status === "waiting" && run.waitingFor) return WAITING_FOR[run.waitingFor] ?? `Waiting (${run.waitingFor})`;
  if (run.status === "running" && run.text) return "Streaming";
  if (run.reused) return `${NODE_LOOK[run.status].label} (reused)`;
  if (run.status === "retrying" && run.attempt) return `Retrying (attempt ${run.attempt} failed)`;
  return NODE_LOOK[run.status]?.label ?? run.status;
}

export function nodeIcon(run: NodeRun): string {
  return NODE_LOOK[run.status]?.icon ?? "?";
}

/** A run's status in words: "succeeded" -> "Succeeded". */
export function runLabel(status: string): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}
