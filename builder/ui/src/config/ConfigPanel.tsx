/**
 * The side panel of the selected block: what it is, and a form generated from its `config_schema`.
 * Each change goes to the graph store at once (autosave and live validation follow); a problem
 * clicked in the list focuses the field its `path` names.
 */
import { useEffect } from "react";
import type { Problem } from "../api/types";
import { nodeActions } from "../extensions";
import { useGraph } from "../store/graph";
import { useProblems } from "../store/problems";
import { useRun } from "../store/run";
import { useUi } from "../store/ui";
import { T } from "../testids";
import { type JsonSchema, fieldDomId } from "./schema";
import { PortWiring } from "./PortWiring";
import { ObjectFields } from "./widgets/objects";

const NONE: Problem[] = [];

/** The selected node's id when exactly one is selected. */
function useSelectedId(): string | null {
  return useGraph((s) => {
    let found: string | null = null;
    for (const n of s.nodes) {
      if (!n.selected) continue;
      if (found !== null) return null;
      found = n.id;
    }
    return found;
  });
}

/** Focus the field a clicked problem names (or its closest drawn parent). */
function useFocusRequest(nodeId: string): void {
  const focus = useUi((s) => s.focus);
  useEffect(() => {
    if (!focus || focus.nodeId !== nodeId) return;
    const parts = focus.path.split(".");
    for (let n = parts.length; n > 1; n--) {
      const el = document.getElementById(fieldDomId(nodeId, parts.slice(0, n).join(".")));
      if (el) {
        el.focus();
        el.scrollIntoView({ block: "nearest" });
        break;
      }
    }
    useUi.getState().focusField(null);
  }, [focus, nodeId]);
}

function NodeConfig({ nodeId }: { nodeId: string }) {
  const node = useGraph((s) => s.nodes.find((n) => n.id === nodeId));
  const block = useGraph((s) => (node ? s.blocks[node.data.blockType] : undefined));
  const problems = useProblems((s) => s.byNode[nodeId]) ?? NONE;
  const live = useRun((s) => s.live);
  useFocusRequest(nodeId);
  if (!node) return null;
  const schema = (block?.config_schema ?? {}) as JsonSchema;
  const general = problems.filter((p) => !p.path?.startsWith("config."));

  return (
    <>
      <h2 id="config-title">{block?.title ?? node.data.blockType} <span className="node-id">{nodeId}</span></h2>
      {block && <p className="block-description">{block.description}</p>}
      {block?.dynamic_ports && <p className="dynamic-ports">{block.dynamic_ports}</p>}
      {block && <div className="node-actions">{nodeActions.map((Action, i) => <Action key={i} nodeId={nodeId} />)}</div>}
      {general.length > 0 && (
        <ul className="node-problems" aria-label="Problems of this block">
          {general.map((p, i) => <li key={i}><span aria-hidden="true">⚠ </span>{p.message}</li>)}
        </ul>
      )}
      <PortWiring nodeId={nodeId} />
      {!block ? <p>This block type is unknown to the server, so it cannot be configured here.</p> : (
        <form onSubmit={(e) => e.preventDefault()} aria-labelledby="config-title">
          <fieldset disabled={live} className="config-fields">
            {Object.keys(schema.properties ?? {}).length === 0 && <p>This block has nothing to configure.</p>}
            <ObjectFields schema={schema} root={schema} value={node.data.config} path="config" nodeId={nodeId}
              problems={problems} onChange={(config) => useGraph.getState().setConfig(nodeId, config)} />
          </fieldset>
        </form>
      )}
    </>
  );
}

export function ConfigPanel() {
  const nodeId = useSelectedId();
  return (
    <section className="config-panel" aria-labelledby={nodeId ? "config-title" : "config-empty"} data-testid={T.configPanel}>
      {nodeId ? <NodeConfig key={nodeId} nodeId={nodeId} /> : (
        <>
          <h2 id="config-empty">Configure</h2>
          <p>Select one block to configure it.</p>
        </>
      )}
    </section>
  );
}
