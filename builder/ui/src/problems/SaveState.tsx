/** Whether the draft is saved, in words (the autosave's state). */
import { useUi } from "../store/ui";
import { T } from "../testids";

const TEXT = {
  saved: "All changes saved",
  pending: "Unsaved changes…",
  saving: "Saving…",
  conflict: "Not saved: the draft changed elsewhere",
  failed: "Not saved",
} as const;

export function SaveState() {
  const save = useUi((s) => s.save);
  return (
    <span className={`save-state save-${save.status}`} data-testid={T.saveState} data-status={save.status}>
      {TEXT[save.status]}{save.status === "failed" && save.message ? `: ${save.message}` : ""}
    </span>
  );
}
