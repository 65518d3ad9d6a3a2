/** The diff as a list: nodes added, removed and changed (with the config keys), wires added and removed. */
import type { ReactNode } from "react";
import { T } from "../testids";
import { changeCount, type GraphDiff, wireLabel } from "./diff";

function Group({ title, items, kind }: { title: string; items: ReactNode[]; kind: string }) {
  if (items.length === 0) return null;
  return (
    <section className={`diff-group diff-${kind}`} aria-label={title}>
      <h3>{title} ({items.length})</h3>
      <ul>{items}</ul>
    </section>
  );
}

export function DiffList({ diff, from, to }: { diff: GraphDiff; from: string; to: string }) {
  const count = changeCount(diff);
  const { nodes, edges } = diff;
  return (
    <div className="diff-list" data-testid={T.diffList}>
      <p role="status">{count === 0 ? `No changes from ${from} to ${to}.`
        : `${count} change${count === 1 ? "" : "s"} from ${from} to ${to}.`}</p>
      <Group title="Blocks added" kind="added" items={nodes.added.map((n) => (
        <li key={n.id} data-change="added" data-node-id={n.id}><span className="diff-mark" aria-hidden="true">+</span>
          <code>{n.id}</code> ({n.type})</li>))} />
      <Group title="Blocks removed" kind="removed" items={nodes.removed.map((n) => (
        <li key={n.id} data-change="removed" data-node-id={n.id}><span className="diff-mark" aria-hidden="true">−</span>
          <code>{n.id}</code> ({n.type})</li>))} />
      <Group title="Blocks changed" kind="changed" items={nodes.changed.map((c) => (
        <li key={c.id} data-change="changed" data-node-id={c.id}><span className="diff-mark" aria-hidden="true">~</span>
          <code>{c.id}</code> ({c.typeBefore ? `${c.typeBefore} → ${c.type}` : c.type})
          {c.keys.length > 0 && <>: config {c.keys.map((k, i) => <span key={k}>{i ? ", " : " "}<code className="diff-key">{k}</code></span>)}</>}
          {c.fields.length > 0 && <>; also {c.fields.join(", ")}</>}
        </li>))} />
      <Group title="Wires added" kind="added" items={edges.added.map((e) => {
        const label = wireLabel(e);
        return <li key={label} data-change="added"><span className="diff-mark" aria-hidden="true">+</span><code>{label}</code></li>;
      })} />
      <Group title="Wires removed" kind="removed" items={edges.removed.map((e) => {
        const label = wireLabel(e);
        return <li key={label} data-change="removed"><span className="diff-mark" aria-hidden="true">−</span><code>{label}</code></li>;
      })} />
      {diff.graph.length > 0 && <p>Graph settings changed: {diff.graph.join(", ")}.</p>}
    </div>
  );
}
