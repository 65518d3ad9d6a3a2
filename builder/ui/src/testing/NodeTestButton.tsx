/** "Test this node" in the selected block's settings (a trigger has nothing to test alone). */
import { useState } from "react";
import type { NodeActionProps } from "../extensions";
import { useGraph } from "../store/graph";
import { useRun } from "../store/run";
import { T } from "../testids";
import { NodeTestDialog } from "./NodeTestDialog";

export function NodeTestButton({ nodeId }: NodeActionProps) {
  const trigger = useGraph((s) => s.blocks[s.nodes.find((n) => n.id === nodeId)?.data.blockType ?? ""]?.trigger ?? true);
  const live = useRun((s) => s.live);
  const [open, setOpen] = useState(false);
  const reason = trigger ? "A trigger is tested by running the whole draft (Test in the toolbar)." : "";
  return (
    <>
      <button type="button" onClick={() => setOpen(true)} disabled={Boolean(reason) || live} data-testid={T.testNodeButton}
        title={reason || "Run only this block with inputs you type"} aria-describedby={reason ? "node-test-reason" : undefined}>
        Test this node
      </button>
      {reason && <span id="node-test-reason" className="visually-hidden">{reason}</span>}
      {open && <NodeTestDialog nodeId={nodeId} open={open} onClose={() => setOpen(false)} />}
    </>
  );
}
