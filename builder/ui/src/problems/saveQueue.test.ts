import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type SaveOutcome, SaveQueue, type SaveStatus } from "./saveQueue";

interface Call {
  payload: string;
  revision: number | null;
  keepalive: boolean;
  finish: (o: SaveOutcome) => void;
}

function harness(revision: number | null = 1) {
  const calls: Call[] = [];
  const statuses: SaveStatus[] = [];
  const queue = new SaveQueue<string>({
    delayMs: 300,
    save: (payload, rev, keepalive) => new Promise((finish) => calls.push({ payload, revision: rev, keepalive, finish })),
    onStatus: (s) => statuses.push(s),
  }, revision);
  return { queue, calls, statuses };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("SaveQueue", () => {
  it("debounces edits into one PUT of the latest state", () => {
    const { queue, calls } = harness();
    queue.schedule("a");
    vi.advanceTimersByTime(200);
    queue.schedule("b");
    vi.advanceTimersByTime(299);
    expect(calls).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(calls.map((c) => [c.payload, c.revision])).toEqual([["b", 1]]);
  });

  it("sends one PUT at a time, the next with the revision the last returned", async () => {
    const { queue, calls, statuses } = harness();
    queue.schedule("a");
    vi.advanceTimersByTime(300);
    queue.schedule("b");
    queue.schedule("c");
    vi.advanceTimersByTime(300);
    expect(calls).toHaveLength(1);
    calls[0]!.finish({ kind: "saved", revision: 2 });
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[1]).toMatchObject({ payload: "c", revision: 2 });
    calls[1]!.finish({ kind: "saved", revision: 3 });
    await queue.idle();
    expect(queue.revision).toBe(3);
    expect(statuses.at(-1)).toBe("saved");
  });

  it("stops on a conflict and keeps the unsaved state until the person chooses", async () => {
    const { queue, calls, statuses } = harness();
    queue.schedule("a");
    vi.advanceTimersByTime(300);
    calls[0]!.finish({ kind: "conflict" });
    await queue.idle();
    expect(statuses.at(-1)).toBe("conflict");
    queue.schedule("b");
    vi.advanceTimersByTime(1000);
    expect(calls).toHaveLength(1);
    expect(queue.hasUnsaved).toBe(true);
    queue.resume(null, "b");
    expect(calls[1]).toMatchObject({ payload: "b", revision: null });
  });

  it("flushes at once, with keepalive when the tab hides", () => {
    const { queue, calls } = harness();
    queue.schedule("a");
    void queue.flush(true);
    expect(calls[0]).toMatchObject({ payload: "a", keepalive: true });
  });

  it("keeps a failed save to send again with the next flush", async () => {
    const { queue, calls, statuses } = harness();
    queue.schedule("a");
    vi.advanceTimersByTime(300);
    calls[0]!.finish({ kind: "failed", message: "offline" });
    await queue.idle();
    expect(statuses.at(-1)).toBe("failed");
    void queue.flush();
    expect(calls[1]?.payload).toBe("a");
  });

  it("forgets unsent edits when discarded", () => {
    const { queue, calls } = harness();
    queue.schedule("a");
    queue.discard();
    vi.advanceTimersByTime(1000);
    expect(calls).toHaveLength(0);
    expect(queue.hasUnsaved).toBe(false);
  });
});
