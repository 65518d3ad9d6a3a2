/**
 * The selected block's inputs, each with the output that feeds it: wiring without a mouse.
 * A select lists only the outputs the wiring rule accepts for that input.
 */
import { useMemo } from "react";
import { wireProblem } from "../canvas/connect";
import { edgeId } from "../canvas/types";
import { portsOf, useGraph } from "../store/graph";
import { useRun } from "../store/run";
import { useUi } from "../store/ui";

const NONE = "";

function useChoices(nodeId: string) {
  // Recomputed when blocks, wires or ports change, not on every frame of a drag (positions).
  const ids = useGraph((s) => s.nodes.map((n) => n.id).join("\n"));
  const edges = useGraph((s) => s.edges);
  const ports = useGraph((s) => s.ports);
  const blocks = useGraph((s) => s.blocks);
  return useMemo(() => {
    const nodes = useGraph.getState().nodes;
    const state = { nodes, ports, blocks };
    const inputs = portsOf(state, nodeId)?.inputs ?? [];
    return inputs.map((input) => {
      const current = edges.find((e) => e.target === nodeId && e.targetHandle === input.name);
      // The rule is checked as if this input were free, since choosing replaces its wire.
      const others = edges.filter((e) => e !== current);
      const options: { value: string; label: string }[] = [];
      for (const n of nodes) {
        if (n.id === nodeId) continue;
        for (const out of portsOf(state, n.id)?.outputs ?? []) {
          const wire = { source: n.id, sourceHandle: out.name, target: nodeId, targetHandle: input.name };
          if (wireProblem(wire, { edges: others, portsOf: (id) => portsOf(state, id) }) === null) {
            options.push({ value: `${n.id}\n${out.name}`, label: `${n.id}.${out.name} (${out.type})` });
          }
        }
      }
      const value = current ? `${current.source}\n${current.sourceHandle}` : NONE;
      return { input, value, options };
    });
  }, [nodeId, ids, edges, ports, blocks]);
}

/** Feed `nodeId.port` from the chosen output (or from nothing): one undo step. */
function rewire(nodeId: string, port: string, choice: string): void {
  const graph = useGraph.getState();
  graph.checkpoint(choice === NONE ? "disconnect" : "connect");
  const kept = graph.edges.filter((e) => !(e.target === nodeId && e.targetHandle === port));
  if (choice === NONE) {
    useGraph.setState((s) => ({ edges: kept, edits: s.edits + 1 }));
    useUi.getState().say(`Disconnected ${nodeId}.${port}.`);
    return;
  }
  const [source, sourceHandle] = choice.split("\n") as [string, string];
  const wire = { id: edgeId(source, sourceHandle, nodeId, port), source, sourceHandle, target: nodeId, targetHandle: port,
    data: { extra: {} } };
  useGraph.setState((s) => ({ edges: [...kept, wire], edits: s.edits + 1 }));
  useUi.getState().say(`Connected ${source}.${sourceHandle} to ${nodeId}.${port}.`);
}

export function PortWiring({ nodeId }: { nodeId: string }) {
  const rows = useChoices(nodeId);
  const live = useRun((s) => s.live);
  if (rows.length === 0) return null;
  return (
    <fieldset className="port-wiring" disabled={live}>
      <legend>Inputs</legend>
      {rows.map(({ input, value, options }) => {
        const id = `wire-${nodeId}-${input.name}`;
        return (
          <div key={input.name} className="field">
            <label htmlFor={id}>{input.name} <span className="port-type">({input.type}{input.required ? ", required" : ""})</span> from</label>
            <select id={id} value={value} onChange={(e) => rewire(nodeId, input.name, e.target.value)}>
              <option value={NONE}>Not connected</option>
              {value !== NONE && !options.some((o) => o.value === value) && (
                <option value={value}>{value.replace("\n", ".")} (does not fit)</option>
              )}
              {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
            </select>
          </div>
        );
      })}
    </fieldset>
  );
}
