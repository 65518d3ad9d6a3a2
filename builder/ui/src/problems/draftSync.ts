/**
 * Loading an app's draft into the editor and saving it back as the person works.
 *
 * Saves go through a SaveQueue (debounced, one PUT at a time, `If-Match` with the last revision);
 * when the tab hides, what is pending is sent with `keepalive`. A 409 stops saving and the
 * conflict dialog asks the person to reload the stored draft or overwrite it.
 */
import { createContext, useContext, useEffect, useState } from "react";
import { api, errorMessage } from "../api/client";
import type { Block, DraftRead, GraphDoc } from "../api/types";
import { toGraph } from "../canvas/convert";
import { useGraph } from "../store/graph";
import { useProblems } from "../store/problems";
import { useUi } from "../store/ui";
import { type SaveOutcome, SaveQueue } from "./saveQueue";

export const SAVE_DELAY_MS = 600;

export interface DraftSync {
  appId: string;
  queue: SaveQueue<GraphDoc>;
  /** Send what is unsaved now; resolves when the server has it (or refused it). */
  flush: () => Promise<void>;
  /** Drop local changes and load the stored draft. */
  reload: () => Promise<void>;
  /** Save the local graph over whatever is stored. */
  overwrite: () => void;
}

export const DraftContext = createContext<DraftSync | null>(null);

export function useDraftSync(): DraftSync {
  const sync = useContext(DraftContext);
  if (!sync) throw new Error("useDraftSync is used outside the editor");
  return sync;
}

/** The graph as it is saved (UI-only keys stripped). */
export function currentGraph(): GraphDoc {
  const { nodes, edges, extras } = useGraph.getState();
  return toGraph(nodes, edges, extras);
}

let catalogue: Promise<Block[]> | null = null;

/** GET /v1/blocks, once per page. */
export function loadBlocks(): Promise<Block[]> {
  catalogue ??= api.GET("/v1/blocks").then(({ data, error }) => {
    if (!data) {
      catalogue = null;
      throw new Error(errorMessage(error, "The block catalogue could not be loaded."));
    }
    return data.items;
  });
  return catalogue;
}

async function getDraft(appId: string): Promise<DraftRead> {
  const { data, error } = await api.GET("/v1/apps/{app_id}/draft", { params: { path: { app_id: appId } } });
  if (!data) throw new Error(errorMessage(error, "The draft could not be loaded."));
  return data as unknown as DraftRead;
}

function show(draft: DraftRead): void {
  useGraph.getState().load(draft.graph, draft.ports);
  useProblems.getState().set(draft.problems);
}

async function putDraft(appId: string, graph: GraphDoc, revision: number | null, keepalive: boolean): Promise<SaveOutcome> {
  const { data, error, response } = await api.PUT("/v1/apps/{app_id}/draft", {
    params: { path: { app_id: appId } },
    body: graph as never,
    headers: revision === null ? {} : { "If-Match": `"${revision}"` },
    // A keepalive request's body is limited to 64 KiB; a bigger graph is sent as a plain request.
    keepalive: keepalive && JSON.stringify(graph).length < 60_000,
  });
  if (data) return { kind: "saved", revision: data.revision };
  if (response.status === 409) return { kind: "conflict" };
  return { kind: "failed", message: errorMessage(error, `Saving failed (${response.status}).`) };
}

/** Load `appId`'s draft and keep it saved while the editor is open. */
export function useDraftSession(appId: string): { sync: DraftSync | null; error: string } {
  const [sync, setSync] = useState<DraftSync | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    let alive = true;
    let cleanup = () => {};
    setSync(null);
    Promise.all([loadBlocks(), getDraft(appId)]).then(([blocks, draft]) => {
      if (!alive) return;
      useGraph.getState().setBlocks(blocks);
      show(draft);
      const ui = useUi.getState();
      ui.setSave("saved");
      const queue = new SaveQueue<GraphDoc>({
        delayMs: SAVE_DELAY_MS,
        save: (graph, revision, keepalive) => putDraft(appId, graph, revision, keepalive),
        onStatus: (status, message) => useUi.getState().setSave(status, message),
      }, draft.revision);
      const unsubscribe = useGraph.subscribe((s, prev) => {
        if (s.edits !== prev.edits && s.edits > 0) queue.schedule(currentGraph());
      });
      const onHide = () => {
        if (document.visibilityState === "hidden") void queue.flush(true);
      };
      document.addEventListener("visibilitychange", onHide);
      cleanup = () => {
        unsubscribe();
        document.removeEventListener("visibilitychange", onHide);
        void queue.flush(true);
      };
      setSync({
        appId,
        queue,
        flush: () => queue.flush(),
        reload: async () => {
          queue.discard();
          const fresh = await getDraft(appId);
          show(fresh);
          queue.resume(fresh.revision, null);
          useUi.getState().say("Reloaded the saved draft; your unsaved changes were discarded.");
        },
        overwrite: () => {
          queue.resume(null, currentGraph());
          useUi.getState().say("Saved your version of the draft over the other one.");
        },
      });
    }).catch((e: unknown) => alive && setError(errorMessage(e)));
    return () => {
      alive = false;
      cleanup();
    };
  }, [appId]);

  return { sync, error };
}
