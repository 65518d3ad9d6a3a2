/** One document: its name, format and size, its ingestion status in words (live), chunks, and its actions. */
import { useState } from "react";
import { ConfirmButton } from "../common/ConfirmButton";
import { T } from "../testids";
import { localTime } from "../versions/format";
import { formatBytes, type KnowledgeDocument, PENDING, statusIcon, statusText } from "./documents";

interface Props {
  doc: KnowledgeDocument;
  onReindex: (doc: KnowledgeDocument) => Promise<string>;
  onDelete: (doc: KnowledgeDocument) => Promise<string>;
}

export function DocumentRow({ doc, onReindex, onDelete }: Props) {
  const [said, setSaid] = useState("");
  const busy = PENDING.has(doc.status);

  async function reindex() {
    setSaid("");
    setSaid(await onReindex(doc));
  }

  return (
    <tr className={`doc-row doc-${doc.status}`} data-testid={T.documentRow} data-status={doc.status}>
      <th scope="row">
        <span className="doc-name">{doc.filename}</span>
        <span className="doc-meta">{doc.format} · {formatBytes(doc.size_bytes)}
          {doc.indexed_at ? ` · indexed ${localTime(doc.indexed_at)}` : ""}</span>
      </th>
      <td>
        <span className={`doc-status status-${doc.status}`} data-testid={T.documentStatus}>
          <span aria-hidden="true">{statusIcon(doc.status)} </span>{statusText(doc)}
        </span>
        {doc.status === "failed" && doc.error && <p className="doc-error" data-testid={T.documentError}>{doc.error}</p>}
      </td>
      <td className="doc-chunks" data-testid={T.documentChunks}>{doc.status === "ready" ? doc.chunks : "–"}</td>
      <td>
        <div className="button-row">
          <button type="button" disabled={busy} onClick={() => void reindex()}
            aria-label={`Re-index ${doc.filename}`}>Re-index</button>
          <ConfirmButton label="Delete" ariaLabel={`Delete ${doc.filename}`} title={`Delete ${doc.filename}?`}
            confirmLabel="Delete document" onConfirm={() => onDelete(doc)}>
            <p>The document and its {doc.chunks} chunks leave the knowledge base; searches no longer find them.</p>
          </ConfirmButton>
        </div>
        {said && <p role="alert" className="error">{said}</p>}
      </td>
    </tr>
  );
}
