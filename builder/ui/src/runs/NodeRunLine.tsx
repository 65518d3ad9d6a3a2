/** A node's line in a run, drawn inside BlockNode: icon and status in words, streamed text, error. */
import type { NodeRun } from "../store/run";
import { T } from "../testids";
import { nodeIcon, nodeLabel } from "./status";
import "./runs.css";

export function NodeRunLine({ run }: { run: NodeRun }) {
  return (
    <div className={`block-run run-${run.status}`} data-run-status={run.status}>
      <p className="block-run-status" data-testid={T.nodeRunStatus}>
        <span className="run-icon" aria-hidden="true">{nodeIcon(run)}</span> {nodeLabel(run)}
      </p>
      {run.text ? <p className="block-run-text nowheel" data-testid={T.nodeRunText}>{run.text}</p> : null}
      {run.error && (run.status === "failed" || run.status === "retrying")
        ? <p className="block-run-error" title={run.error}>{run.error}</p> : null}
    </div>
  );
}
