/**
 * One node of a run, as the node inspector shows it: status, timing, tokens, error, and the
 * inputs it received and outputs it emitted (from GET /v1/runs/{id}).
 */
import type { NodeTrace } from "../api/types";
import { T } from "../testids";
import { nodeFromTrace } from "./events";
import { duration, when } from "./format";
import { nodeIcon, nodeLabel } from "./status";

/** `value` as indented JSON (a long value arrives from the API already shortened, with a preview). */
export function Json({ value, label }: { value: unknown; label: string }) {
  if (value === null || value === undefined) return <p className="muted">None</p>;
  return <pre className="json" aria-label={label} tabIndex={0}>{JSON.stringify(value, null, 2)}</pre>;
}

function tokens(entry: NodeTrace): string | null {
  for (const source of [entry.result, entry.outputs]) {
    const s = source as Record<string, unknown> | null | undefined;
    if (s && typeof s.prompt_tokens === "number" && typeof s.completion_tokens === "number") {
      return `${s.prompt_tokens} in, ${s.completion_tokens} out`;
    }
  }
  return null;
}


export function NodeTraceView({ entry, headingLevel = 3 }: { entry: NodeTrace; headingLevel?: 3 | 4 }) {
  const run = nodeFromTrace(entry);
  const used = tokens(entry);
  const timing = (entry.result as { timing?: unknown } | null | undefined)?.timing;
  const Heading = headingLevel === 3 ? "h3" : "h4";
  const Sub = headingLevel === 3 ? "h4" : "h5";
  return (
    <div className="node-trace" data-testid={T.nodeInspector} data-node-id={entry.node_id}>
      <Heading className="node-trace-title">{entry.node_id} <span className="node-id">{entry.block_type}</span></Heading>
      <p className={`trace-status run-${run.status}`}>
        <span aria-hidden="true">{nodeIcon(run)}</span> {nodeLabel(run)}
      </p>
      <dl className="trace-facts">
        <dt>Started</dt><dd>{when(entry.started_at)}</dd>
        <dt>Took</dt><dd>{duration(entry.duration_ms)}</dd>
        <dt>Attempts</dt><dd>{entry.attempts}</dd>
        {used && (<><dt>Tokens</dt><dd>{used}</dd></>)}
        {entry.waiting_for && (<><dt>Waits for</dt><dd>{entry.waiting_for}</dd></>)}
      </dl>
      {entry.reused && <p className="muted">Not run again: its outputs were reused from the run this one retries.</p>}
      {entry.error && <p className="error" role="note"><strong>Error:</strong> {entry.error}</p>}
      <Sub>Inputs</Sub>
      <Json value={entry.inputs} label={`Inputs of ${entry.node_id}`} />
      <Sub>Outputs</Sub>
      <Json value={entry.outputs} label={`Outputs of ${entry.node_id}`} />
      {timing !== undefined && (<><Sub>Model timing</Sub><Json value={timing} label={`Model timing of ${entry.node_id}`} /></>)}
    </div>
  );
}
