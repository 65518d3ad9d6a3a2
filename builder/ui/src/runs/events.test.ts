import { describe, expect, it } from "vitest";
import type { RunRead } from "../api/types";
import { type RunEvent, reduce, reduceAll, startView, viewFromTrace } from "./events";
import { nodeLabel } from "./status";

let nextId = 0;
const ev = (type: string, node_id: string | null = null, data: Record<string, unknown> = {}): RunEvent =>
  ({ id: ++nextId, type, node_id, at: "2026-01-01T00:00:00Z", data });

describe("a run's events reduced to what the canvas shows", () => {
  it("lights the nodes up in order and ends with the outputs", () => {
    const view = reduceAll(startView(["in", "gen", "out"]), [
      ev("run_started"),
      ev("node_started", "in", { attempt: 1 }), ev("node_finished", "in", { status: "succeeded" }),
      ev("node_started", "gen", { attempt: 1 }), ev("node_waiting", "gen", { kind: "inference" }),
      ev("run_waiting"),
    ]);
    expect(view.status).toBe("waiting");
    expect(view.nodes.in?.status).toBe("succeeded");
    expect(view.nodes.gen).toMatchObject({ status: "waiting", waitingFor: "inference" });
    expect(nodeLabel(view.nodes.gen!)).toBe("Waiting for the model");
    expect(view.nodes.out?.status).toBe("queued");

    const done = reduceAll(view, [
      ev("node_progress", "gen", { delta: "Hel", completion_tokens: 2 }),
      ev("node_progress", "gen", { delta: "lo!", completion_tokens: 4 }),
      ev("node_finished", "gen", { status: "succeeded" }),
      ev("node_started", "out"), ev("node_finished", "out", { status: "succeeded" }),
      ev("run_finished", null, { status: "succeeded", outputs: { text: "Hello!" }, error: null }),
    ]);
    expect(done.nodes.gen).toMatchObject({ status: "succeeded", text: "Hello!" });
    expect(done).toMatchObject({ status: "succeeded", outputs: { text: "Hello!" }, error: undefined });
    expect(done.lastEventId).toBe(nextId);
  });

  it("shows failures, retries, skipped branches and reused nodes", () => {
    const view = reduceAll(startView(["a", "b", "c", "d"]), [
      ev("node_finished", "a", { status: "succeeded", reused: true }),
      ev("node_started", "b", { attempt: 1 }),
      ev("node_retrying", "b", { error: "connection refused", retry_at: "2026-01-01T00:00:01Z" }),
      ev("node_started", "b", { attempt: 2 }),
      ev("node_finished", "b", { status: "failed", error: "connection refused", continued: false }),
      ev("node_finished", "c", { status: "skipped", reason: "branch not taken" }),
      ev("run_finished", null, { status: "failed", outputs: null,
        error: { type: "node_failed", node_id: "b", message: "node 'b' (http.request) failed: connection refused" } }),
    ]);
    expect(nodeLabel(view.nodes.a!)).toBe("Succeeded (reused)");
    expect(view.nodes.b).toMatchObject({ status: "failed", error: "connection refused", attempt: 2 });
    expect(view.nodes.c).toMatchObject({ status: "skipped", error: undefined });
    expect(view.nodes.d?.status).toBe("queued");
    expect(view.status).toBe("failed");
    expect(view.error).toContain("connection refused");
  });

  it("says a node is retrying, and which attempt failed", () => {
    const view = reduceAll(startView(["b"]), [
      ev("node_started", "b", { attempt: 1 }), ev("node_retrying", "b", { error: "503" })]);
    expect(nodeLabel(view.nodes.b!)).toBe("Retrying (attempt 1 failed)");
  });

  it("ignores an event it has already applied (a resumed stream repeats nothing)", () => {
    const first = ev("node_progress", "gen", { delta: "Hi" });
    const once = reduce(startView(["gen"]), first);
    expect(reduce(once, first)).toBe(once);
    expect(once.nodes.gen?.text).toBe("Hi");
  });

  it("reads an ended run's trace, with a model's answer as its text", () => {
    const run = {
      status: "failed", outputs: null, error: { message: "node 'x' failed" },
      trace: [
        { node_id: "in", block_type: "trigger.api", status: "succeeded", reused: true, attempts: 0 },
        { node_id: "gen", block_type: "llm.prompt", status: "succeeded", outputs: { text: "Hi" }, reused: false, attempts: 1 },
        { node_id: "x", block_type: "http.request", status: "failed", error: "refused", reused: false, attempts: 1 },
        { node_id: "out", block_type: "output", status: "pending", reused: false, attempts: 0 },
      ],
    } as unknown as RunRead;
    const view = viewFromTrace(run);
    expect(view.status).toBe("failed");
    expect(view.error).toBe("node 'x' failed");
    expect(view.nodes.in).toMatchObject({ status: "succeeded", reused: true });
    expect(view.nodes.gen?.text).toBe("Hi");
    expect(view.nodes.x).toMatchObject({ status: "failed", error: "refused" });
    expect(view.nodes.out?.status).toBe("queued");
  });
});
