/** Restore a version into the draft, after a confirmation; then the editor opens on it. */
import { useState } from "react";
import { useLocation } from "wouter";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { Dialog } from "../common/Dialog";
import { useUi } from "../store/ui";
import { T } from "../testids";

interface Props {
  appId: string;
  number: number;
}

export function RestoreButton({ appId, number }: Props) {
  const [, navigate] = useLocation();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  async function restore() {
    setBusy(true);
    setError("");
    const { data, error: failure } = await api.POST("/v1/apps/{app_id}/versions/{number}/restore", {
      params: { path: { app_id: appId, number } },
    });
    setBusy(false);
    if (!data) return setError(errorMessage(failure, "Restoring failed."));
    setOpen(false);
    useUi.getState().say(`Restored version ${number} into the draft (revision ${data.revision}).`);
    navigate(`/apps/${appId}`);
  }

  return (
    <>
      <button type="button" onClick={() => setOpen(true)} data-testid={T.restoreVersion}
        aria-label={`Restore version ${number} into the draft`}>Restore</button>
      <Dialog title={`Restore version ${number}?`} open={open} onClose={() => setOpen(false)} testId={T.restoreDialog}>
        <p>The draft is replaced by version {number}'s graph. Published versions do not change, so
          you can restore the current draft only if it was published.</p>
        {error && <p role="alert" className="error">{error}</p>}
        <div className="dialog-buttons">
          <button type="button" className="primary" onClick={() => void restore()} disabled={busy}>Restore version {number}</button>
          <button type="button" onClick={() => setOpen(false)} autoFocus>Cancel</button>
        </div>
      </Dialog>
    </>
  );
}
