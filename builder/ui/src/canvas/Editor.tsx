/** The editor tab: palette, canvas, configuration and problems, kept saved as you work. */
import { ReactFlowProvider } from "@xyflow/react";
import { ConfigPanel } from "../config/ConfigPanel";
import { type AppTabProps, sidePanels } from "../extensions";
import { ConflictDialog } from "../problems/ConflictDialog";
import { DraftContext, useDraftSession } from "../problems/draftSync";
import { useLiveValidation } from "../problems/liveValidation";
import { ProblemsPanel } from "../problems/ProblemsPanel";
import { useUi } from "../store/ui";
import { T } from "../testids";
import { Canvas } from "./Canvas";
import { EditorToolbar } from "./EditorToolbar";
import { Palette } from "./Palette";
import { useShortcuts } from "./useShortcuts";

function StatusLine() {
  const status = useUi((s) => s.status);
  return <p role="status" aria-live="polite" className="status-line" data-testid={T.canvasStatus}>{status}</p>;
}

export function Editor({ appId }: AppTabProps) {
  const { sync, error } = useDraftSession(appId);
  useLiveValidation(sync !== null);
  useShortcuts();

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!sync) return <p role="status">Loading the draft…</p>;
  return (
    <DraftContext.Provider value={sync}>
      <ReactFlowProvider>
        <div className="editor" data-testid={T.editor}>
          <EditorToolbar appId={appId} />
          <StatusLine />
          <div className="editor-body">
            <Palette />
            <Canvas />
            <aside className="side" aria-label="Block settings and problems">
              {sidePanels.map((Panel, i) => <Panel key={i} appId={appId} />)}
              <ConfigPanel />
              <ProblemsPanel />
            </aside>
          </div>
          <ConflictDialog />
        </div>
      </ReactFlowProvider>
    </DraftContext.Provider>
  );
}
