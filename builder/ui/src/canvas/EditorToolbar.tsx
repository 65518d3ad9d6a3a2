/** The editor's toolbar: undo, redo, delete, the save state (zoom and fit are the canvas's controls), extra buttons, Publish. */
import { toolbarItems } from "../extensions";
import { PublishButton } from "../problems/PublishButton";
import { SaveState } from "../problems/SaveState";
import { useGraph } from "../store/graph";
import { T } from "../testids";
import { redo, removeSelected, undo } from "./commands";

export function EditorToolbar({ appId }: { appId: string }) {
  const canUndo = useGraph((s) => s.history.past.length > 0);
  const canRedo = useGraph((s) => s.history.future.length > 0);
  const mod = navigator.platform.startsWith("Mac") ? "⌘" : "Ctrl+";

  return (
    <div className="toolbar" role="toolbar" aria-label="Editor" data-testid={T.toolbar}>
      <button type="button" onClick={undo} disabled={!canUndo} data-testid={T.undo} aria-keyshortcuts="Control+Z Meta+Z"
        title={`Undo (${mod}Z)`}>Undo</button>
      <button type="button" onClick={redo} disabled={!canRedo} data-testid={T.redo}
        aria-keyshortcuts="Control+Shift+Z Meta+Shift+Z" title={`Redo (${mod}Shift+Z)`}>Redo</button>
      <button type="button" onClick={removeSelected} data-testid={T.deleteSelected} aria-keyshortcuts="Delete"
        title="Delete the selected blocks and wires (Delete)">Delete selected</button>
      <SaveState />
      <span className="toolbar-spacer" />
      {toolbarItems.map((Item, i) => <Item key={i} appId={appId} />)}
      <PublishButton appId={appId} />
    </div>
  );
}
