/** A run's status in words and icon, and once it ends, its outputs or error. */
import { useRun } from "../store/run";
import { T } from "../testids";
import { Json } from "./NodeTraceView";
import { RUN_ICONS, runLabel } from "./status";

/** `details`: the outputs or error too, once the run ends (else only the status). */
export function RunOutcome({ outputsLabel = "Outputs", details = true }: { outputsLabel?: string; details?: boolean }) {
  const status = useRun((s) => s.status);
  const live = useRun((s) => s.live);
  const outputs = useRun((s) => s.outputs);
  const error = useRun((s) => s.error);
  const problem = useRun((s) => s.problem);
  const ended = details && !live && ["succeeded", "failed", "blocked", "cancelled"].includes(status);
  return (
    <div className="run-outcome">
      <p className={`run-status run-${status}`} role="status" data-testid={T.runStatus} data-status={status}>
        <span aria-hidden="true">{RUN_ICONS[status] ?? "?"}</span> {live ? `${runLabel(status)}…` : runLabel(status)}
      </p>
      {problem && <p role="alert" className="error">{problem}</p>}
      {ended && error && <p className="error"><strong>Error:</strong> {error}</p>}
      {ended && outputs !== undefined && outputs !== null && (
        <div data-testid={T.runOutputs}>
          <h4>{outputsLabel}</h4>
          <Json value={outputs} label={outputsLabel} />
        </div>
      )}
    </div>
  );
}
