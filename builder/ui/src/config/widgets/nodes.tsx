/**
 * Fields naming other nodes of the graph (`"x-mantle-source": "nodes"`): a map's body (ticked from
 * the graph's nodes) and the node a map collects from (a select). The choices come from the graph
 * being edited, so a node added on the canvas is offered at once.
 */
import { useShallow } from "zustand/react/shallow";
import { useGraph } from "../../store/graph";
import { nodeChoices, nodeSetChoices } from "../sources";
import type { WidgetProps } from "./types";

function useNodes(): { id: string; title: string }[] {
  // Only ids and types: a node moved on the canvas does not draw the form again.
  const ids = useGraph(useShallow((s) => s.nodes.map((n) => n.id)));
  const types = useGraph(useShallow((s) => s.nodes.map((n) => n.data.blockType)));
  const blocks = useGraph((s) => s.blocks);
  return ids.map((id, i) => {
    const type = types[i] ?? "";
    return { id, title: blocks[type]?.title ?? type };
  });
}

export function NodesWidget({ spec, value, onChange, inputId, describedBy, invalid, nodeId }: WidgetProps) {
  const nodes = useNodes();
  if (spec.schema.type === "array") {
    const chosen = Array.isArray(value) ? value : [];
    const choices = nodeSetChoices(nodes, nodeId, value);
    return (
      <div id={inputId} role="group" aria-label={spec.title} aria-describedby={describedBy} className="enum-set" tabIndex={-1}>
        {choices.length === 0 && <p className="field-desc">Add the nodes to the canvas first.</p>}
        {choices.map((c) => (
          <label key={c.value} className="check">
            <input type="checkbox" checked={chosen.includes(c.value)}
              onChange={(e) => {
                const next = e.target.checked ? [...chosen, c.value] : chosen.filter((v) => v !== c.value);
                onChange(next.length ? next : undefined);
              }} />
            {c.label}
          </label>
        ))}
      </div>
    );
  }
  const { choices, selected } = nodeChoices(nodes, nodeId, value);
  return (
    <select id={inputId} value={selected} aria-describedby={describedBy} aria-invalid={invalid || undefined}
      onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}>
      {selected === "" && <option value="">Choose a node…</option>}
      {choices.map((c) => <option key={c.value} value={c.value}>{c.label}</option>)}
    </select>
  );
}
