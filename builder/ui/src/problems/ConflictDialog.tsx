/** Shown when a save finds the draft changed elsewhere (409): reload theirs or overwrite with ours. */
import { useState } from "react";
import { errorMessage } from "../api/client";
import { Dialog } from "../common/Dialog";
import { useUi } from "../store/ui";
import { T } from "../testids";
import { useDraftSync } from "./draftSync";

export function ConflictDialog() {
  const open = useUi((s) => s.save.status === "conflict");
  const sync = useDraftSync();
  const [error, setError] = useState("");

  async function reload() {
    setError("");
    await sync.reload().catch((e: unknown) => setError(errorMessage(e)));
  }

  return (
    <Dialog title="This draft was changed elsewhere" open={open} onClose={() => undefined} mustChoose testId={T.conflictDialog}>
      <p>Someone (or this app in another tab) saved the draft after you opened it, so your latest changes
        were not saved. Choose which version to keep.</p>
      <ul>
        <li><strong>Reload</strong> shows the saved draft and discards your unsaved changes.</li>
        <li><strong>Overwrite</strong> saves your version over the other one.</li>
      </ul>
      {error && <p role="alert" className="error">{error}</p>}
      <div className="dialog-buttons">
        <button type="button" onClick={reload}>Reload</button>
        <button type="button" className="danger" onClick={sync.overwrite}>Overwrite</button>
      </div>
    </Dialog>
  );
}
