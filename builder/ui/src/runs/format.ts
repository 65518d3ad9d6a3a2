/** How runs read in lists and headings: their kind, how long they took, a short id. */
import type { RunSummary } from "../api/types";
import { localTime } from "../versions/format";

/** "Node test of gen", "Retry", "Re-run", "Draft run", "Run". */
export function kindLabel(run: Pick<RunSummary, "kind" | "test_node_id" | "retry_of" | "rerun_of" | "draft">): string {
  if (run.kind === "node_test") return `Node test${run.test_node_id ? ` of ${run.test_node_id}` : ""}`;
  if (run.retry_of) return "Retry";
  if (run.rerun_of) return "Re-run";
  return run.draft ? "Draft run" : "Run";
}

/** Milliseconds between two server times (null while either is missing). */
export function elapsedMs(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from || !to) return null;
  return parseServerTime(to) - parseServerTime(from);
}

/** A server time (UTC, maybe without its zone) as epoch milliseconds. */
export function parseServerTime(iso: string): number {
  return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`);
}

export function when(iso: string | null | undefined): string {
  return iso ? localTime(iso) : "—";
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** The first block of a run id: enough to tell runs apart in a list. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
