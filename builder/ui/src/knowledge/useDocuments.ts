/**
 * One knowledge base's documents, kept live: listed once, then moved along by the ingestion events
 * while any is queued, parsing or embedding, and read again when the stream ends (the list is the
 * record; the events only bring it forward between reads). Uploads, re-index and delete go through
 * the API and say the API's reason when refused.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { api, errorMessage } from "../api/client";
import { anyPending, applyEvents, type KnowledgeDocument, type KnowledgeEvent } from "./documents";
import { followKnowledge } from "./follow";

/** A file the server refused, with its reason. */
export interface Refused {
  filename: string;
  message: string;
}

export function useDocuments(kbId: string) {
  const [docs, setDocs] = useState<KnowledgeDocument[] | null>(null);
  const [error, setError] = useState("");
  const current = useRef<KnowledgeDocument[]>([]);
  const lastEventId = useRef(0);
  const following = useRef<AbortController | null>(null);
  const again = useRef(false);
  const alive = useRef(true);

  const show = useCallback((next: KnowledgeDocument[]) => {
    current.current = next;
    if (alive.current) setDocs(next);
  }, []);

  /** Read the list; resolves to whether any document is still being ingested. */
  const load = useCallback(async (): Promise<boolean> => {
    const { data, error: failure } = await api.GET("/v1/knowledge/{kb_id}/documents", { params: { path: { kb_id: kbId } } });
    if (!data) {
      setError(errorMessage(failure, "The documents could not be listed."));
      return false;
    }
    show(data.items);
    return anyPending(data.items);
  }, [kbId, show]);

  const onEvents = useCallback((events: KnowledgeEvent[]) => {
    lastEventId.current = Math.max(lastEventId.current, events.at(-1)?.id ?? 0);
    const { docs: next, unknown } = applyEvents(current.current, events);
    show(next);
    if (unknown) void load();
  }, [load, show]);

  /** Follow the events until nothing is left to ingest; asked again while following, it goes on after. */
  const follow = useCallback(() => {
    if (following.current) {
      again.current = true;
      return;
    }
    const controller = new AbortController();
    following.current = controller;
    again.current = false;
    followKnowledge({ kbId, signal: controller.signal, after: () => lastEventId.current, onEvents, pending: load })
      .catch((e: unknown) => setError(errorMessage(e, "The progress could not be followed.")))
      .finally(() => {
        if (following.current === controller) following.current = null;
        if (again.current && !controller.signal.aborted) follow();
      });
  }, [kbId, load, onEvents]);

  useEffect(() => {
    alive.current = true;
    lastEventId.current = 0;
    load().then((pending) => pending && follow()).catch((e: unknown) => setError(errorMessage(e)));
    return () => {
      alive.current = false;
      following.current?.abort();
      following.current = null;
    };
  }, [load, follow]);

  /** Upload each file in turn; resolves to those the server refused, with its reasons. */
  const upload = useCallback(async (files: File[]): Promise<Refused[]> => {
    const refused: Refused[] = [];
    for (const file of files) {
      const form = new FormData();
      form.append("file", file, file.name);
      const { data, error: failure } = await api.POST("/v1/knowledge/{kb_id}/documents", {
        params: { path: { kb_id: kbId } },
        body: { file: file.name },
        bodySerializer: () => form,
      }).catch((e: unknown) => ({ data: undefined, error: e }));
      if (data) show([...current.current.filter((d) => d.id !== data.id), data]);
      else refused.push({ filename: file.name, message: errorMessage(failure, "The upload failed.") });
    }
    if (refused.length < files.length) follow();
    return refused;
  }, [kbId, follow, show]);

  /** Parse and embed a document again; resolves to an error sentence, or "". */
  const reindex = useCallback(async (doc: KnowledgeDocument): Promise<string> => {
    const { data, error: failure } = await api.POST("/v1/knowledge/{kb_id}/documents/{document_id}/reindex", {
      params: { path: { kb_id: kbId, document_id: doc.id } },
    });
    if (!data) return errorMessage(failure, "Re-indexing failed.");
    show(current.current.map((d) => (d.id === data.id ? data : d)));
    follow();
    return "";
  }, [kbId, follow, show]);

  /** Delete a document with its chunks; resolves to an error sentence, or "". */
  const remove = useCallback(async (doc: KnowledgeDocument): Promise<string> => {
    const { error: failure, response } = await api.DELETE("/v1/knowledge/{kb_id}/documents/{document_id}", {
      params: { path: { kb_id: kbId, document_id: doc.id } },
    });
    if (!response.ok) return errorMessage(failure, "Deleting failed.");
    show(current.current.filter((d) => d.id !== doc.id));
    return "";
  }, [kbId, show]);

  /** Read the list again (the base's settings changed) and follow what is being indexed. */
  const refresh = useCallback(async () => {
    if (await load()) follow();
  }, [load, follow]);

  return { docs, error, upload, reindex, remove, refresh };
}
