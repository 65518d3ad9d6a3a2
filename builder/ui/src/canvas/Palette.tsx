/**
 * The block palette from GET /v1/blocks: grouped by category, searchable, each block with its
 * description. Drag an item onto the canvas, or press Enter (or click) to add it at the centre.
 */
import { useReactFlow } from "@xyflow/react";
import { type DragEvent, useMemo, useState } from "react";
import type { Block } from "../api/types";
import { useGraph } from "../store/graph";
import { useUi } from "../store/ui";
import { T } from "../testids";
import { BLOCK_MIME } from "./Canvas";

const CATEGORY_ORDER = ["triggers", "ai", "text", "logic", "data", "governance", "integrations", "outputs"];

function groups(blocks: Block[], query: string): [string, Block[]][] {
  const q = query.trim().toLowerCase();
  const byCategory = new Map<string, Block[]>();
  for (const b of blocks) {
    const text = `${b.type} ${b.title} ${b.description} ${b.category}`.toLowerCase();
    if (q && !text.includes(q)) continue;
    const list = byCategory.get(b.category) ?? [];
    list.push(b);
    byCategory.set(b.category, list);
  }
  const rank = (c: string) => (CATEGORY_ORDER.includes(c) ? CATEGORY_ORDER.indexOf(c) : CATEGORY_ORDER.length);
  return [...byCategory.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

export function Palette() {
  const blocks = useGraph((s) => s.blocks);
  const [query, setQuery] = useState("");
  const { screenToFlowPosition } = useReactFlow();
  const shown = useMemo(() => groups(Object.values(blocks), query), [blocks, query]);

  function addAtCentre(blockType: string) {
    const rect = document.querySelector(`[data-testid="${T.canvas}"]`)?.getBoundingClientRect();
    if (!rect) return;
    const n = useGraph.getState().nodes.length;
    const at = screenToFlowPosition({ x: rect.left + rect.width / 2, y: rect.top + rect.height / 2 });
    const id = useGraph.getState().addBlock(blockType, { x: at.x - 90 + (n % 5) * 24, y: at.y - 20 + (n % 5) * 24 });
    useUi.getState().say(`Added ${blockType} as ${id}.`);
  }

  function onDragStart(event: DragEvent, blockType: string) {
    event.dataTransfer.setData(BLOCK_MIME, blockType);
    event.dataTransfer.effectAllowed = "copy";
  }

  return (
    <nav className="palette" aria-label="Blocks" data-testid={T.palette}>
      <label htmlFor="palette-search">Find a block</label>
      <input id="palette-search" type="search" value={query} onChange={(e) => setQuery(e.target.value)}
        data-testid={T.paletteSearch} placeholder="sms, template, policy…" />
      <p className="hint">Drag a block onto the canvas, or press Enter on it.</p>
      {shown.length === 0 && <p role="status">No block matches “{query}”.</p>}
      {shown.map(([category, list]) => (
        <section key={category} aria-labelledby={`palette-${category}`}>
          <h3 id={`palette-${category}`}>{category}</h3>
          <ul>
            {list.map((b) => (
              <li key={b.type}>
                <button type="button" draggable className="palette-item" data-testid={T.paletteItem}
                  data-block-type={b.type} onDragStart={(e) => onDragStart(e, b.type)}
                  onClick={() => addAtCentre(b.type)} aria-describedby={`palette-desc-${b.type}`}>
                  <span className="palette-title">{b.title}</span>
                  <span className="palette-type">{b.type}</span>
                </button>
                <p id={`palette-desc-${b.type}`} className="palette-desc">{b.description}</p>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </nav>
  );
}
