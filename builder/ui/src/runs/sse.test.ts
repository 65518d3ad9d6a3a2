import { describe, expect, it } from "vitest";
import type { RunEvent } from "./events";
import { MAX_EMPTY_OPENINGS, followEvents, readEvents } from "./sse";

/** A byte stream that hands out `chunks` one by one (as the network would). */
function stream(chunks: string[]): ReadableStream<BufferSource> {
  const bytes = chunks.map((c) => new TextEncoder().encode(c));
  return new ReadableStream<BufferSource>({
    pull(controller) {
      const next = bytes.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

const message = (id: number, type: string, nodeId: string | null = null, data: object = {}) =>
  `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify({ id, type, node_id: nodeId, at: "t", data })}\n\n`;

async function read(chunks: string[]): Promise<RunEvent[]> {
  const seen: RunEvent[] = [];
  await readEvents(stream(chunks), (e) => seen.push(e));
  return seen;
}

describe("reading a run's Server-Sent Events", () => {
  it("parses events split anywhere across chunks, skipping comments and the retry field", async () => {
    const text = "retry: 1000\n\n" + message(1, "run_started") + ": keep-alive\n\n"
      + message(2, "node_progress", "gen", { delta: "Héllo ✓" });
    const bytes = new TextEncoder().encode(text);
    // Split inside a multi-byte character too: the decoder must join it back.
    const cut = [7, 40, bytes.indexOf(0xc3) + 1, bytes.length - 3];
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const at of [...cut, bytes.length]) {
      chunks.push(bytes.slice(from, at));
      from = at;
    }
    const seen: RunEvent[] = [];
    await readEvents(new ReadableStream<BufferSource>({ start(c) { chunks.forEach((x) => c.enqueue(x as BufferSource)); c.close(); } }),
      (e) => seen.push(e));
    expect(seen.map((e) => e.type)).toEqual(["run_started", "node_progress"]);
    expect(seen[1]).toMatchObject({ id: 2, node_id: "gen", data: { delta: "Héllo ✓" } });
  });

  it("skips a message whose data is not a run event", async () => {
    const seen = await read(["event: x\ndata: not json\n\n", "data: {\"hello\": 1}\n\n", message(3, "run_waiting")]);
    expect(seen.map((e) => e.id)).toEqual([3]);
  });

  it("opens the stream again after the last event seen until the run finishes", async () => {
    const opened: number[] = [];
    const parts = [[message(1, "run_started"), message(2, "node_started", "a")],
      [message(3, "run_finished", null, { status: "succeeded" })]];
    const seen: RunEvent[] = [];
    await followEvents(async (after) => {
      opened.push(after);
      return stream(parts.shift() ?? []);
    }, {
      signal: new AbortController().signal,
      onEvent: (e) => seen.push(e),
      after: () => seen.at(-1)?.id ?? 0,
      ended: async () => false,
    });
    expect(opened).toEqual([0, 2]);
    expect(seen.map((e) => e.id)).toEqual([1, 2, 3]);
  });

  it("stops when the run has ended without a last event, and gives up on a stream that brings nothing", async () => {
    let openings = 0;
    const base = { signal: new AbortController().signal, onEvent: () => {}, after: () => 0 };
    await followEvents(async () => { openings += 1; return stream([]); }, { ...base, ended: async () => true });
    expect(openings).toBe(1);

    openings = 0;
    await expect(followEvents(async () => { openings += 1; return stream([]); }, { ...base, ended: async () => false }))
      .rejects.toThrow("keeps closing");
    expect(openings).toBe(MAX_EMPTY_OPENINGS);
  });
});
