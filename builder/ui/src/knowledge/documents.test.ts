import { describe, expect, it } from "vitest";
import {
  anyPending, applyEvents, countByStatus, countsSummary, formatBytes, type KnowledgeDocument, type KnowledgeEvent,
  parseKnowledgeEvent, settingsChanges, statusText,
} from "./documents";

function doc(id: string, over: Partial<KnowledgeDocument> = {}): KnowledgeDocument {
  return {
    id, kb_id: "kb", filename: `${id}.md`, format: "markdown", size_bytes: 10, sha256: "x", metadata: {},
    status: "queued", error: null, chunks: 0, chunks_embedded: 0, embedding_model: null, indexed_at: null,
    created_at: "t0", updated_at: "t0", ...over,
  };
}

const event = (id: number, documentId: string, type: KnowledgeEvent["type"], data: KnowledgeEvent["data"] = {}): KnowledgeEvent =>
  ({ id, type, document_id: documentId, at: `t${id}`, data });

describe("a knowledge base's events", () => {
  it("parses the stream's messages, skipping what is not an ingestion event", () => {
    const data = JSON.stringify({ id: 4, type: "embedding", document_id: "d", at: "t", data: { chunks: 9, chunks_embedded: 3 } });
    expect(parseKnowledgeEvent({ id: "4", event: "embedding", data })).toEqual(
      { id: 4, type: "embedding", document_id: "d", at: "t", data: { chunks: 9, chunks_embedded: 3 } });
    expect(parseKnowledgeEvent({ id: undefined, event: undefined, data: "not json" })).toBeNull();
    const odd = JSON.stringify({ id: 5, type: "exploded", document_id: "d" });
    expect(parseKnowledgeEvent({ id: "5", event: "exploded", data: odd })).toBeNull();
  });

  it("moves each document through its statuses with its chunk counts", () => {
    const { docs, unknown } = applyEvents([doc("a"), doc("b")], [
      event(1, "a", "parsing"), event(2, "a", "embedding", { chunks: 12, chunks_embedded: 0 }),
      event(3, "a", "embedding", { chunks: 12, chunks_embedded: 8 }), event(4, "b", "parsing"),
    ]);
    expect(unknown).toBe(false);
    expect(docs.map((d) => [d.id, d.status, d.chunks, d.chunks_embedded])).toEqual([["a", "embedding", 12, 8], ["b", "parsing", 0, 0]]);
    expect(statusText(docs[0]!)).toBe("Embedding 8 of 12 chunks");
    expect(anyPending(docs)).toBe(true);

    const done = applyEvents(docs, [event(5, "a", "ready", { chunks: 12 }), event(6, "b", "failed", { error: "the PDF cannot be read" })]).docs;
    expect(done.map((d) => [d.status, d.chunks_embedded, d.error])).toEqual([["ready", 12, null], ["failed", 0, "the PDF cannot be read"]]);
    expect(statusText(done[0]!)).toBe("Ready: 12 chunks");
    expect(anyPending(done)).toBe(false);
  });

  it("clears a failure's reason when the document is queued again", () => {
    const failed = doc("a", { status: "failed", error: "bad" });
    expect(applyEvents([failed], [event(7, "a", "queued", { reason: "re-index" })]).docs[0]).toMatchObject({ status: "queued", error: null });
  });

  it("says when an event names a document the list does not have (uploaded elsewhere)", () => {
    const { docs, unknown } = applyEvents([doc("a")], [event(1, "z", "parsing")]);
    expect(unknown).toBe(true);
    expect(docs).toEqual([doc("a")]);
  });
});

describe("how documents read", () => {
  it("counts documents by status in one line", () => {
    expect(countsSummary({})).toBe("No documents yet");
    expect(countsSummary({ failed: 1, ready: 2 })).toBe("3 documents: 2 ready, 1 failed");
    expect(countsSummary(countByStatus([doc("a", { status: "ready" })]))).toBe("1 document: 1 ready");
  });

  it("gives sizes in bytes, kB and MB", () => {
    expect([formatBytes(1), formatBytes(999), formatBytes(1500), formatBytes(2_500_000)]).toEqual(["1 byte", "999 bytes", "1.5 kB", "2.5 MB"]);
  });
});

describe("a knowledge base's settings form", () => {
  const kb = { description: "Docs", embedding_model: "wordllama-l2-256", chunk_size: 800, chunk_overlap: 100 };
  const same = { description: "Docs", embedding_model: "wordllama-l2-256", chunk_size: "800", chunk_overlap: "100" };

  it("sends only what changed, and says when that indexes every document again", () => {
    expect(settingsChanges(kb, same)).toEqual({ body: {}, reindexes: false });
    expect(settingsChanges(kb, { ...same, description: "Product docs" })).toEqual({ body: { description: "Product docs" }, reindexes: false });
    expect(settingsChanges(kb, { ...same, chunk_size: "400", embedding_model: " wordllama-l2-64 " })).toEqual({
      body: { chunk_size: 400, embedding_model: "wordllama-l2-64" }, reindexes: true });
  });

  it("keeps an emptied number as it was", () => {
    expect(settingsChanges(kb, { ...same, chunk_overlap: "" }).body).toEqual({});
  });
});
