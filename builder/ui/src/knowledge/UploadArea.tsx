/** Adding documents: a file input (keyboard and screen readers) and a drop zone for files dragged in. */
import { type DragEvent, useRef, useState } from "react";
import { T } from "../testids";
import { ACCEPTED_FILES, plural } from "./documents";
import type { Refused } from "./useDocuments";

export function UploadArea({ onFiles }: { onFiles: (files: File[]) => Promise<Refused[]> }) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const [said, setSaid] = useState("");
  const [refused, setRefused] = useState<Refused[]>([]);

  async function send(files: File[]) {
    if (files.length === 0) return;
    setBusy(true);
    setSaid(`Uploading ${plural(files.length, "file")}…`);
    const failed = await onFiles(files).finally(() => setBusy(false));
    const sent = files.length - failed.length;
    setRefused(failed);
    setSaid(sent > 0 ? `${plural(sent, "file")} uploaded: ingestion follows below.` : "");
    if (input.current) input.current.value = "";
  }

  function drop(event: DragEvent) {
    event.preventDefault();
    setOver(false);
    void send([...event.dataTransfer.files]);
  }

  return (
    <section aria-labelledby="upload-title" className={`kb-upload${over ? " is-over" : ""}`} data-testid={T.uploadArea}
      onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; setOver(true); }}
      onDragLeave={() => setOver(false)} onDrop={drop}>
      <h2 id="upload-title">Upload documents</h2>
      <p id="upload-hint" className="field-desc">Drop files here, or choose them: plain text (.txt), Markdown (.md),
        HTML (.html) or PDF (.pdf).</p>
      <label htmlFor="kb-files">Files to upload</label>
      <input ref={input} id="kb-files" type="file" multiple accept={ACCEPTED_FILES} disabled={busy}
        aria-describedby="upload-hint" onChange={(e) => void send([...(e.target.files ?? [])])} />
      <p role="status" className="said">{said}</p>
      {refused.length > 0 && (
        <div role="alert" className="error">
          <p>{refused.length === 1 ? "This file was refused:" : "These files were refused:"}</p>
          <ul>{refused.map((r, i) => <li key={i}><strong>{r.filename}</strong>: {r.message}</li>)}</ul>
        </div>
      )}
    </section>
  );
}
