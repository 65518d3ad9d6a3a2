/**
 * Following one run into the run store: its events are reduced once per animation frame (a
 * model streaming tokens changes the canvas at most once a frame), and when it ends its full
 * trace is read for the node inspector. One run is followed at a time; following another, or
 * `stopFollowing`, aborts the stream.
 */
import { api, errorMessage } from "../api/client";
import type { RunRead } from "../api/types";
import { type RunView, useRun } from "../store/run";
import { getRun } from "./api";
import { ENDED, type RunEvent, reduceAll, viewFromTrace } from "./events";
import { followEvents } from "./sse";

/** GET /v1/runs/{id}/events after event `after`, as a byte stream (401 handled by the client). */
function openEvents(runId: string, signal: AbortSignal) {
  return async (after: number) => {
    const { response, error } = await api.GET("/v1/runs/{run_id}/events", {
      params: { path: { run_id: runId }, header: after > 0 ? { "last-event-id": after } : {} },
      parseAs: "stream",
      signal,
    });
    if (!response.ok || !response.body) {
      throw new Error(errorMessage(error, `The run's events could not be read (${response.status}).`));
    }
    return response.body;
  };
}

let current: AbortController | null = null;

function viewNow(): RunView {
  const { status, nodes, outputs, error, lastEventId } = useRun.getState();
  return { status, nodes, outputs, error, lastEventId };
}

/** The trace's view, keeping the text streamed into a node when the trace has none for it. */
function merged(streamed: RunView, trace: RunRead, lastEventId: number): RunView {
  const view = viewFromTrace(trace, lastEventId);
  for (const [id, node] of Object.entries(view.nodes)) {
    const text = streamed.nodes[id]?.text;
    if (node.text === undefined && text) view.nodes[id] = { ...node, text };
  }
  return view;
}

/**
 * Watch `run` (just started, or already ended) until it ends; `start` is the view to begin from
 * (every node of the graph queued). Resolves with the run as it ended, or null when stopped.
 */
export async function followRun(run: RunRead, start: RunView): Promise<RunRead | null> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const store = useRun.getState();
  store.start(run.id, start);

  let pending: RunEvent[] = [];
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (pending.length === 0 || controller.signal.aborted) return;
    const batch = pending;
    pending = [];
    useRun.getState().show(reduceAll(viewNow(), batch));
  };
  const lastSeen = () => pending.at(-1)?.id ?? useRun.getState().lastEventId;

  try {
    await followEvents(openEvents(run.id, controller.signal), {
      signal: controller.signal,
      onEvent: (event) => {
        pending.push(event);
        frame ||= requestAnimationFrame(flush);
      },
      after: lastSeen,
      ended: async () => ENDED.has((await getRun(run.id)).status),
    });
    cancelAnimationFrame(frame);
    flush();
    const ended = await getRun(run.id);
    if (current !== controller) return null;
    useRun.getState().show(merged(viewNow(), ended, lastSeen()));
    useRun.getState().setTrace(ended);
    useRun.getState().finish();
    current = null;
    return ended;
  } catch (e) {
    cancelAnimationFrame(frame);
    if (controller.signal.aborted) return null;
    useRun.getState().finish(errorMessage(e, "The run could not be followed."));
    current = null;
    return null;
  }
}

/** Stop watching the current run (the run itself goes on). */
export function stopFollowing(note = ""): void {
  if (!current) return;
  current.abort();
  current = null;
  useRun.getState().finish(note);
}

/** Show an ended run without following it (a run opened from the list). */
export function showRun(run: RunRead): void {
  stopFollowing();
  useRun.getState().start(run.id, viewFromTrace(run));
  useRun.getState().setTrace(run);
  useRun.getState().finish();
}
