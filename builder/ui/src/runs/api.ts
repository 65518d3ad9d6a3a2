/** The run routes the builder calls, each answering the data or throwing the API's sentence. */
import { api, errorMessage } from "../api/client";
import type { RunGraph, RunRead, RunSummary } from "../api/types";
import type { RunStatus } from "../store/run";

export type RunKindFilter = "all" | "run" | "node_test";

export interface RunPage {
  items: RunSummary[];
  total: number;
}

/** A refused request: its sentence, and the API's error body (whose `loc`s name fields). */
export class ApiError extends Error {
  constructor(message: string, readonly body: unknown) {
    super(message);
  }
}

function must<T>(data: T | undefined, error: unknown, fallback: string): T {
  if (data === undefined) throw new ApiError(errorMessage(error, fallback), error);
  return data;
}

export async function getRun(runId: string): Promise<RunRead> {
  const { data, error } = await api.GET("/v1/runs/{run_id}", { params: { path: { run_id: runId } } });
  return must(data, error, "The run could not be read.");
}

export async function getRunGraph(runId: string): Promise<RunGraph> {
  const { data, error } = await api.GET("/v1/runs/{run_id}/graph", { params: { path: { run_id: runId } } });
  return must(data, error, "The run's graph could not be read.");
}

export async function startDraftRun(appId: string, inputs: Record<string, unknown>): Promise<RunRead> {
  const { data, error } = await api.POST("/v1/apps/{app_id}/draft/runs", {
    params: { path: { app_id: appId } }, body: { inputs },
  });
  return must(data, error, "The draft could not be run.");
}

export async function testNode(appId: string, nodeId: string, inputs: Record<string, unknown>,
  sideEffects: boolean): Promise<RunRead> {
  const { data, error } = await api.POST("/v1/apps/{app_id}/draft/nodes/{node_id}/test", {
    params: { path: { app_id: appId, node_id: nodeId } }, body: { inputs, side_effects: sideEffects },
  });
  return must(data, error, "The node could not be tested.");
}

export async function runAgain(runId: string, how: "retry" | "rerun"): Promise<RunRead> {
  const path = how === "retry" ? "/v1/runs/{run_id}/retry" : "/v1/runs/{run_id}/rerun";
  const { data, error } = await api.POST(path, { params: { path: { run_id: runId } } });
  return must(data, error, how === "retry" ? "The run could not be retried." : "The run could not be run again.");
}

export async function cancelRun(runId: string): Promise<RunRead> {
  const { data, error } = await api.POST("/v1/runs/{run_id}/cancel", { params: { path: { run_id: runId } } });
  return must(data, error, "The run could not be cancelled.");
}

export async function listRuns(appId: string, filter: { status: RunStatus | ""; kind: RunKindFilter }, offset: number,
  limit = 25): Promise<RunPage> {
  const { data, error } = await api.GET("/v1/apps/{app_id}/runs", {
    params: {
      path: { app_id: appId },
      query: { kind: filter.kind, offset, limit, ...(filter.status ? { status: filter.status } : {}) },
    },
  });
  return must(data, error, "The runs could not be listed.");
}

/** How many review items of the app wait for a decision (null when the caller may not see the queue). */
export async function pendingReviews(appId: string): Promise<number | null> {
  const { data } = await api.GET("/v1/reviews", { params: { query: { status: "pending", app_id: appId, limit: 1 } } });
  return data ? data.total : null;
}
