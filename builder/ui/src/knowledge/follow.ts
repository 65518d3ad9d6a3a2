/**
 * Following a knowledge base's ingestion: its Server-Sent Events read from a fetch stream (as the
 * runs view reads a run's), stopped by an AbortController. The server ends the stream once nothing
 * is left to ingest; a new upload opens it again after the last event seen (Last-Event-ID), so a
 * document's progress is never replayed twice nor missed.
 */
import { api, errorMessage } from "../api/client";
import { readMessages } from "../runs/sse";
import { type KnowledgeEvent, parseKnowledgeEvent } from "./documents";

/** Openings in a row that bring no event, with documents still pending, before giving up. */
const MAX_EMPTY_OPENINGS = 5;

export interface FollowKnowledge {
  kbId: string;
  signal: AbortSignal;
  /** The id of the last event already applied (0: from the start). */
  after: () => number;
  onEvents: (events: KnowledgeEvent[]) => void;
  /** Read the documents again; resolves to whether any is still being ingested. */
  pending: () => Promise<boolean>;
}

async function open(kbId: string, after: number, signal: AbortSignal): Promise<ReadableStream<BufferSource>> {
  const { response, error } = await api.GET("/v1/knowledge/{kb_id}/events", {
    params: { path: { kb_id: kbId }, header: after > 0 ? { "last-event-id": after } : {} },
    parseAs: "stream",
    signal,
  });
  if (!response.ok || !response.body) {
    throw new Error(errorMessage(error, `The ingestion events could not be read (${response.status}).`));
  }
  return response.body;
}

/**
 * Apply the knowledge base's events as they come (batched once per animation frame) until nothing
 * is left to ingest or `signal` aborts.
 */
export async function followKnowledge({ kbId, signal, after, onEvents, pending }: FollowKnowledge): Promise<void> {
  let batch: KnowledgeEvent[] = [];
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (batch.length === 0 || signal.aborted) return;
    const events = batch;
    batch = [];
    onEvents(events);
  };
  const lastSeen = () => batch.at(-1)?.id ?? after();
  let empty = 0;
  try {
    while (!signal.aborted) {
      const from = lastSeen();
      await readMessages(await open(kbId, from, signal), (message) => {
        const event = parseKnowledgeEvent(message);
        if (!event) return;
        batch.push(event);
        frame ||= requestAnimationFrame(flush);
      });
      cancelAnimationFrame(frame);
      flush();
      if (signal.aborted || !(await pending())) return;
      empty = after() > from ? 0 : empty + 1;
      if (empty >= MAX_EMPTY_OPENINGS) throw new Error("The ingestion events keep stopping; reload to see how it went.");
    }
  } catch (e) {
    cancelAnimationFrame(frame);
    if (!signal.aborted) throw e;
  }
}
