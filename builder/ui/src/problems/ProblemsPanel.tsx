/** Every validation problem of the draft; clicking one selects and centres its node and focuses its field. */
import { useReactFlow } from "@xyflow/react";
import type { Problem } from "../api/types";
import { useGraph } from "../store/graph";
import { nodesOf, useProblems } from "../store/problems";
import { useUi } from "../store/ui";
import { T } from "../testids";

export function ProblemsPanel() {
  const problems = useProblems((s) => s.problems);
  const { setCenter, getInternalNode, getZoom } = useReactFlow();

  function focus(p: Problem) {
    const nodeId = nodesOf(p)[0];
    if (!nodeId) return;
    useGraph.getState().select(nodeId);
    const node = getInternalNode(nodeId);
    if (node) {
      const { x, y } = node.internals.positionAbsolute;
      void setCenter(x + (node.measured.width ?? 0) / 2, y + (node.measured.height ?? 0) / 2,
        { zoom: Math.max(getZoom(), 0.8), duration: 200 });
    }
    useUi.getState().focusField(p.path ? { nodeId, path: p.path } : null);
  }

  return (
    <section className="problems" aria-labelledby="problems-title" data-testid={T.problemsPanel}>
      <h2 id="problems-title">Problems <span className="count">({problems.length})</span></h2>
      {problems.length === 0 ? <p className="ok">No problems: the draft can be published.</p> : (
        <ul>
          {problems.map((p, i) => {
            const where = nodesOf(p).length ? `${nodesOf(p).join(" → ")}${p.port ? `.${p.port}` : ""}` : "app";
            return (
              <li key={`${p.code}-${p.node_id}-${p.port}-${p.path}-${i}`}>
                {nodesOf(p).length === 0 ? (
                  <span className="problem" data-testid={T.problemItem} data-code={p.code}>
                    <span aria-hidden="true">⚠</span> <span className="problem-where">{where}</span>{" "}
                    <span className="problem-message">{p.message}</span>
                  </span>
                ) : (
                  <button type="button" className="problem" onClick={() => focus(p)} data-testid={T.problemItem}
                    data-code={p.code} data-node-id={p.node_id ?? ""}>
                    <span aria-hidden="true">⚠</span> <span className="problem-where">{where}</span>{" "}
                    <span className="problem-message">{p.message}</span>
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
