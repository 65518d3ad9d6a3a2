/** One knowledge base: its settings, uploads (file input or drop), its documents live, and deleting it. */
import { useEffect, useState } from "react";
import { Link, useLocation } from "wouter";
import { api, errorMessage } from "../api/client";
import { ConfirmButton } from "../common/ConfirmButton";
import { T } from "../testids";
import { DocumentRow } from "./DocumentRow";
import { countByStatus, countsSummary, type KnowledgeBase } from "./documents";
import { SettingsForm } from "./SettingsForm";
import { UploadArea } from "./UploadArea";
import { useDocuments } from "./useDocuments";
import "./knowledge.css";

export function KnowledgeBaseView({ kbId }: { kbId: string }) {
  const [, navigate] = useLocation();
  const [kb, setKb] = useState<KnowledgeBase | null>(null);
  const [failure, setFailure] = useState("");
  const { docs, error, upload, reindex, remove, refresh } = useDocuments(kbId);

  useEffect(() => {
    api.GET("/v1/knowledge/{kb_id}", { params: { path: { kb_id: kbId } } }).then(({ data, error: e }) => {
      if (data) setKb(data);
      else setFailure(errorMessage(e, "This knowledge base could not be opened."));
    }).catch((e: unknown) => setFailure(errorMessage(e)));
  }, [kbId]);

  async function deleteBase(): Promise<string> {
    const { error: e, response } = await api.DELETE("/v1/knowledge/{kb_id}", { params: { path: { kb_id: kbId } } });
    if (!response.ok) return errorMessage(e, "Deleting failed.");
    navigate("/knowledge");
    return "";
  }

  if (failure) {
    return <main className="notice"><h1>Knowledge base not found</h1><p role="alert">{failure}</p>
      <Link href="/knowledge">Back to the knowledge bases</Link></main>;
  }
  if (!kb) return <main className="notice"><p role="status">Opening the knowledge base…</p></main>;

  return (
    <main className="knowledge-page" data-testid={T.knowledgeBase}>
      <p className="crumbs"><Link href="/knowledge">Knowledge</Link> ›</p>
      <div className="kb-title">
        <h1>{kb.name}</h1>
        <ConfirmButton label="Delete knowledge base" title={`Delete the knowledge base ${kb.name}?`}
          confirmLabel="Delete knowledge base" onConfirm={deleteBase} testId={T.deleteKnowledge}>
          <p>Its documents and their chunks are deleted. Apps whose Retrieve block names it fail until it is
            replaced.</p>
        </ConfirmButton>
      </div>
      {kb.description && <p className="kb-description">{kb.description}</p>}
      <p className="kb-meta">Embedded with {kb.embedding_model} ({kb.dimensions} dimensions) · chunks of about{" "}
        {kb.chunk_size} characters, {kb.chunk_overlap} repeated</p>
      <SettingsForm kb={kb} onSaved={(saved, reindexing) => {
        setKb(saved);
        if (reindexing) void refresh();
      }} />
      <UploadArea onFiles={upload} />
      <section aria-labelledby="docs-title" className="kb-docs">
        <h2 id="docs-title">Documents</h2>
        {error && <p role="alert" className="error">{error}</p>}
        {docs === null ? (!error && <p role="status">Loading documents…</p>) : (
          <>
            <p role="status" className="count">{countsSummary(countByStatus(docs))}</p>
            {docs.length === 0 ? <p className="empty">Upload a document above to fill this knowledge base.</p> : (
              <table className="doc-table" data-testid={T.documentList}>
                <caption className="visually-hidden">Documents of {kb.name}, oldest first</caption>
                <thead>
                  <tr><th scope="col">Document</th><th scope="col">Status</th><th scope="col">Chunks</th>
                    <th scope="col">Actions</th></tr>
                </thead>
                <tbody>
                  {docs.map((d) => <DocumentRow key={d.id} doc={d} onReindex={reindex} onDelete={remove} />)}
                </tbody>
              </table>
            )}
          </>
        )}
      </section>
    </main>
  );
}
