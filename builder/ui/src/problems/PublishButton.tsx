/** Publish the draft as a new version (with a note); disabled, with the reason, while problems remain. */
import { type FormEvent, useState } from "react";
import { api, errorMessage } from "../api/client";
import { Dialog } from "../common/Dialog";
import { useProblems } from "../store/problems";
import { useUi } from "../store/ui";
import { T } from "../testids";
import { useDraftSync } from "./draftSync";

export function PublishButton({ appId }: { appId: string }) {
  const count = useProblems((s) => s.problems.length);
  const conflict = useUi((s) => s.save.status === "conflict");
  const sync = useDraftSync();
  const [open, setOpen] = useState(false);
  const [note, setNote] = useState("");
  const [error, setError] = useState("");
  const [version, setVersion] = useState<number | null>(null);

  const reason = count > 0 ? `Fix ${count} problem${count === 1 ? "" : "s"} first`
    : conflict ? "Resolve the save conflict first" : "";

  async function publish(event: FormEvent) {
    event.preventDefault();
    setError("");
    await sync.flush();
    if (sync.queue.isStopped) return setError("The draft could not be saved, so it was not published.");
    const { data, error: failure } = await api.POST("/v1/apps/{app_id}/publish", {
      params: { path: { app_id: appId } }, body: { note },
    });
    if (!data) return setError(errorMessage(failure, "Publishing failed."));
    setVersion(data.number);
    setOpen(false);
    setNote("");
    useUi.getState().say(`Published version ${data.number}.`);
  }

  return (
    <div className="publish">
      {version !== null && <span className="published" data-testid={T.publishedVersion}>Published version {version}</span>}
      {reason && <span id="publish-reason" className="publish-reason">{reason}</span>}
      <button type="button" className="primary" disabled={Boolean(reason)} onClick={() => setOpen(true)}
        aria-describedby={reason ? "publish-reason" : undefined} data-testid={T.publish}>Publish</button>
      <Dialog title="Publish a new version" open={open} onClose={() => setOpen(false)} testId={T.publishDialog}>
        <form onSubmit={publish}>
          <label htmlFor="publish-note">Note (what changed)</label>
          <textarea id="publish-note" rows={3} maxLength={2000} value={note} onChange={(e) => setNote(e.target.value)} />
          {error && <p role="alert" className="error">{error}</p>}
          <div className="dialog-buttons">
            <button type="submit" className="primary">Publish</button>
            <button type="button" onClick={() => setOpen(false)}>Cancel</button>
          </div>
        </form>
      </Dialog>
    </div>
  );
}
