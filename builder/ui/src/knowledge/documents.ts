/**
 * A knowledge base's documents as the screen shows them: their ingestion events (read from the
 * `/v1/knowledge/{id}/events` stream) applied to the listed documents, each status in words and
 * an icon (never colour alone), and the counts by status in one line. No network here: unit-tested.
 */
import type { EventSourceMessage } from "eventsource-parser/stream";
import type { components } from "../api/schema";
import { messageObject } from "../runs/sse";

export type KnowledgeBase = components["schemas"]["KnowledgeRead"];
export type KnowledgeDocument = components["schemas"]["DocumentRead"];
export type DocumentStatus = KnowledgeDocument["status"];

/** One ingestion event: a document's new status, with its chunk counts or its failure's reason. */
export interface KnowledgeEvent {
  id: number;
  type: DocumentStatus;
  document_id: string;
  at: string;
  data: { chunks?: number; chunks_embedded?: number; error?: string; reason?: string };
}

const STATUSES: readonly DocumentStatus[] = ["queued", "parsing", "embedding", "ready", "failed"];

/** Statuses a document leaves on its own (a worker is on it, or will be). */
export const PENDING: ReadonlySet<DocumentStatus> = new Set(["queued", "parsing", "embedding"]);

/** Embedding models to suggest; the server knows its own, and its refusal of another names them. */
export const EMBEDDING_MODELS = ["wordllama-l2-256", "wordllama-l2-128", "wordllama-l2-64"];

/** The file types the server reads (it also tells by media type and by a PDF's first bytes). */
export const ACCEPTED_FILES = ".txt,.text,.md,.markdown,.html,.htm,.pdf";

const LOOK: Record<DocumentStatus, { icon: string; label: string }> = {
  queued: { icon: "○", label: "Queued" },
  parsing: { icon: "◔", label: "Parsing" },
  embedding: { icon: "◑", label: "Embedding" },
  ready: { icon: "✓", label: "Ready" },
  failed: { icon: "✕", label: "Failed" },
};

/** The knowledge event in one SSE message, or null for anything else (a malformed one is skipped). */
export function parseKnowledgeEvent(message: EventSourceMessage): KnowledgeEvent | null {
  const body = messageObject(message);
  if (body === null) return null;
  const e = body as Partial<KnowledgeEvent>;
  if (typeof e.id !== "number" || typeof e.document_id !== "string") return null;
  if (!STATUSES.includes(e.type as DocumentStatus)) return null;
  const data = typeof e.data === "object" && e.data !== null ? e.data : {};
  return { id: e.id, type: e.type as DocumentStatus, document_id: e.document_id, at: String(e.at ?? ""), data };
}

/**
 * The documents after `events`, in order; `unknown` says an event named a document not in the list
 * (uploaded from elsewhere), so the list should be read again.
 */
export function applyEvents(docs: KnowledgeDocument[], events: KnowledgeEvent[]): { docs: KnowledgeDocument[]; unknown: boolean } {
  const byId = new Map(docs.map((d) => [d.id, d]));
  let unknown = false;
  for (const e of events) {
    const doc = byId.get(e.document_id);
    if (!doc) {
      unknown = true;
      continue;
    }
    const next: KnowledgeDocument = { ...doc, status: e.type, updated_at: e.at || doc.updated_at };
    if (e.type === "failed") next.error = e.data.error ?? doc.error ?? "Ingestion failed.";
    else next.error = null;
    if (typeof e.data.chunks === "number") next.chunks = e.data.chunks;
    if (e.type === "ready" && typeof e.data.chunks === "number") next.chunks_embedded = e.data.chunks;
    else if (typeof e.data.chunks_embedded === "number") next.chunks_embedded = e.data.chunks_embedded;
    byId.set(doc.id, next);
  }
  return { docs: docs.map((d) => byId.get(d.id) ?? d), unknown };
}

/** Whether any document is still being ingested. */
export function anyPending(docs: KnowledgeDocument[]): boolean {
  return docs.some((d) => PENDING.has(d.status));
}

export function statusIcon(status: DocumentStatus): string {
  return LOOK[status]?.icon ?? "?";
}

/** "Ready: 12 chunks", "Embedding 4 of 12 chunks", "Failed", "Queued"... */
export function statusText(doc: Pick<KnowledgeDocument, "status" | "chunks" | "chunks_embedded">): string {
  const label = LOOK[doc.status]?.label ?? doc.status;
  if (doc.status === "ready") return `${label}: ${plural(doc.chunks, "chunk")}`;
  if (doc.status === "embedding" && doc.chunks > 0) return `${label} ${doc.chunks_embedded} of ${plural(doc.chunks, "chunk")}`;
  return label;
}

/** A knowledge base's documents by status in one line: "3 documents: 2 ready, 1 failed". */
export function countsSummary(counts: Record<string, number | undefined>): string {
  const parts = STATUSES.filter((s) => (counts[s] ?? 0) > 0).map((s) => `${counts[s]} ${s}`);
  const total = STATUSES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  return total === 0 ? "No documents yet" : `${plural(total, "document")}: ${parts.join(", ")}`;
}

/** The documents' counts by status, as the knowledge base's own `documents` field has them. */
export function countByStatus(docs: KnowledgeDocument[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const d of docs) counts[d.status] = (counts[d.status] ?? 0) + 1;
  return counts;
}

/** "1.2 MB", "800 bytes". */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} byte${n === 1 ? "" : "s"}`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

export interface SettingsDraft {
  description: string;
  embedding_model: string;
  chunk_size: string;
  chunk_overlap: string;
}

export type SettingsPatch = components["schemas"]["KnowledgeUpdate"];

/**
 * What the settings form changes (only fields that differ are sent) and whether saving it re-indexes
 * every document, as the server does for a new model or chunking. An emptied number field keeps its
 * value, as an absent field does for the server.
 */
export function settingsChanges(kb: Pick<KnowledgeBase, "description" | "embedding_model" | "chunk_size" | "chunk_overlap">,
  draft: SettingsDraft): { body: SettingsPatch; reindexes: boolean } {
  const body: SettingsPatch = {};
  if (draft.description !== kb.description) body.description = draft.description;
  const model = draft.embedding_model.trim();
  if (model !== kb.embedding_model) body.embedding_model = model;
  const size = Number(draft.chunk_size.trim() || kb.chunk_size);
  const overlap = Number(draft.chunk_overlap.trim() || kb.chunk_overlap);
  if (Number.isFinite(size) && size !== kb.chunk_size) body.chunk_size = size;
  if (Number.isFinite(overlap) && overlap !== kb.chunk_overlap) body.chunk_overlap = overlap;
  return { body, reindexes: "embedding_model" in body || "chunk_size" in body || "chunk_overlap" in body };
}
