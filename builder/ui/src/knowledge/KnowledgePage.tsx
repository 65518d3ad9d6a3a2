/** The organization's knowledge bases: each with its documents by status, and a form to create one. */
import { useCallback, useEffect, useState } from "react";
import { Link } from "wouter";
import { api, errorMessage } from "../api/client";
import { T } from "../testids";
import { CreateKnowledgeForm } from "./CreateKnowledgeForm";
import { countsSummary, type KnowledgeBase } from "./documents";
import "./knowledge.css";

export function KnowledgePage() {
  const [bases, setBases] = useState<KnowledgeBase[] | null>(null);
  const [error, setError] = useState("");

  const load = useCallback(async () => {
    const { data, error: failure } = await api.GET("/v1/knowledge");
    if (data) {
      setBases(data.items);
      setError("");
    } else {
      setError(errorMessage(failure, "The knowledge bases could not be listed."));
    }
  }, []);

  useEffect(() => {
    load().catch((e: unknown) => setError(errorMessage(e)));
  }, [load]);

  return (
    <main className="knowledge-page" data-testid={T.knowledgePage}>
      <h1>Knowledge</h1>
      <p className="lead">Documents your apps search with the <strong>Retrieve from knowledge</strong> block: upload text,
        Markdown, HTML or PDF files; Mantle cuts them into chunks and indexes them for search.</p>
      <div className="knowledge-layout">
        <section aria-labelledby="kb-list-title" className="kb-list-section">
          <h2 id="kb-list-title">Knowledge bases</h2>
          {error && <p role="alert" className="error">{error}</p>}
          {bases === null ? (!error && <p role="status">Loading knowledge bases…</p>) : bases.length === 0 ? (
            <p className="empty">No knowledge base yet: create one with the form, then upload documents into it.</p>
          ) : (
            <ul className="kb-list" data-testid={T.knowledgeList}>
              {bases.map((kb) => (
                <li key={kb.id} className="kb-row" data-testid={T.knowledgeRow}>
                  <Link href={`/knowledge/${kb.id}`} className="kb-name">{kb.name}</Link>
                  {kb.description && <p className="kb-description">{kb.description}</p>}
                  <p className="kb-meta">{countsSummary(kb.documents ?? {})} · {kb.embedding_model} · chunks of about{" "}
                    {kb.chunk_size} characters</p>
                </li>
              ))}
            </ul>
          )}
        </section>
        <CreateKnowledgeForm />
      </div>
    </main>
  );
}
