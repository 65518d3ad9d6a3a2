/**
 * Reading a run's Server-Sent Events from a fetch stream (not EventSource): the caller opens the
 * request (through the typed client, with an AbortController), and a stream that ends before the
 * run does is opened again after the last event seen (Last-Event-ID). The SSE framing itself is
 * parsed by eventsource-parser. No network here, so all of it is unit-tested.
 */
import { type EventSourceMessage, EventSourceParserStream } from "eventsource-parser/stream";
import type { RunEvent } from "./events";

/** The JSON object one SSE message carries, or null when it carries anything else. */
export function messageObject(message: EventSourceMessage): Record<string, unknown> | null {
  let body: unknown;
  try {
    body = JSON.parse(message.data);
  } catch {
    return null;
  }
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : null;
}

/** The run event in one SSE message, or null for anything else (a malformed message is skipped). */
export function parseMessage(message: EventSourceMessage): RunEvent | null {
  const body = messageObject(message);
  if (body === null) return null;
  const e = body as Partial<RunEvent>;
  if (typeof e.id !== "number" || typeof e.type !== "string") return null;
  return { id: e.id, type: e.type, node_id: e.node_id ?? null, at: String(e.at ?? ""),
    data: typeof e.data === "object" && e.data !== null ? e.data : {} };
}

/** Every SSE message of one response body, in order, until the server closes it. */
export async function readMessages(body: ReadableStream<BufferSource>,
  onMessage: (message: EventSourceMessage) => void): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onMessage(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** Every run event of one response body, in order, until the server closes it. */
export async function readEvents(body: ReadableStream<BufferSource>, onEvent: (event: RunEvent) => void): Promise<void> {
  await readMessages(body, (message) => {
    const event = parseMessage(message);
    if (event) onEvent(event);
  });
}

/** Opens the run's event stream after event `after` (0: from the start). */
export type OpenStream = (after: number) => Promise<ReadableStream<BufferSource>>;

export interface FollowOptions {
  signal: AbortSignal;
  onEvent: (event: RunEvent) => void;
  /** The id of the last event already applied (0: from the start). */
  after: () => number;
  /** Whether the run has ended (asked when a stream closes without `run_finished`). */
  ended: () => Promise<boolean>;
}

/** Openings in a row that bring no event before giving up. */
export const MAX_EMPTY_OPENINGS = 5;

/** Follow the run's events until `run_finished`, the run's end, or `signal` aborts. */
export async function followEvents(open: OpenStream, options: FollowOptions): Promise<void> {
  let finished = false;
  let empty = 0;
  while (!finished && !options.signal.aborted) {
    const from = options.after();
    await readEvents(await open(from), (event) => {
      if (event.type === "run_finished") finished = true;
      options.onEvent(event);
    });
    if (finished || options.signal.aborted || (await options.ended())) return;
    empty = options.after() > from ? 0 : empty + 1;
    if (empty >= MAX_EMPTY_OPENINGS) throw new Error("The run's event stream keeps closing; reload to see how it went.");
  }
}
