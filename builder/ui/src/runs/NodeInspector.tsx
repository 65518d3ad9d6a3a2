/** The node inspector: the selected block's entry in the watched run's trace. */
import { useGraph } from "../store/graph";
import { useRun } from "../store/run";
import { NodeTraceView } from "./NodeTraceView";

/** The one selected node's id, else null. */
export function useSelectedNode(): string | null {
  return useGraph((s) => {
    const selected = s.nodes.filter((n) => n.selected);
    return selected.length === 1 ? selected[0]!.id : null;
  });
}

export function NodeInspector() {
  const selected = useSelectedNode();
  const trace = useRun((s) => s.trace);
  if (!trace) return null;
  const entry = trace.trace.find((t) => t.node_id === selected);
  return (
    <section className="node-inspector" aria-label="Node inspector">
      {entry ? <NodeTraceView entry={entry} /> : (
        <p className="muted">{selected ? `${selected} was not part of this run.`
          : "Click a block on the canvas to see what it received and emitted, its timing and any error."}</p>
      )}
    </section>
  );
}
