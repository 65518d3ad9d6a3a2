/**
 * A run's full trace beside its graph: every node in the graph's order, its status (live, from
 * the run store) and, opened, what it received and emitted. The node selected on the canvas opens.
 */
import { useEffect, useRef } from "react";
import type { NodeTrace } from "../api/types";
import { useRun } from "../store/run";
import { T } from "../testids";
import { nodeFromTrace } from "./events";
import { duration } from "./format";
import { NodeTraceView } from "./NodeTraceView";
import { nodeIcon, nodeLabel } from "./status";

function Entry({ entry, open, onSelect }: { entry: NodeTrace; open: boolean; onSelect: (id: string) => void }) {
  const live = useRun((s) => s.nodes[entry.node_id]) ?? nodeFromTrace(entry);
  const ref = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    if (open) ref.current?.scrollIntoView({ block: "nearest" });
  }, [open]);
  return (
    <li>
      <details ref={ref} open={open} data-testid={T.traceEntry} data-node-id={entry.node_id} data-status={live.status}
        onToggle={(e) => e.currentTarget.open && !open && onSelect(entry.node_id)}>
        <summary className={`run-${live.status}`}>
          <span aria-hidden="true">{nodeIcon(live)}</span> <code>{entry.node_id}</code> {nodeLabel(live)}
          <span className="muted"> · {entry.block_type} · {duration(entry.duration_ms)}</span>
        </summary>
        <NodeTraceView entry={entry} headingLevel={4} />
      </details>
    </li>
  );
}

export function TracePanel({ trace, selected, onSelect }: {
  trace: NodeTrace[]; selected: string | null; onSelect: (id: string) => void;
}) {
  return (
    <section className="trace-panel" aria-labelledby="trace-title">
      <h3 id="trace-title">Trace</h3>
      <ol className="trace-list">
        {trace.map((t) => <Entry key={t.node_id} entry={t} open={t.node_id === selected} onSelect={onSelect} />)}
      </ol>
    </section>
  );
}
