/** The editor's commands, shared by the toolbar buttons and the keyboard shortcuts. */
import { useGraph } from "../store/graph";
import { useRun } from "../store/run";
import { useUi } from "../store/ui";
import { describe } from "./describe";
import { type Clip, copySelection, pasteClip } from "./clipboard";

let clip: Clip | null = null;
let pastes = 0;
const PASTE_OFFSET = 40;

const say = (text: string) => useUi.getState().say(text);
const locked = () => {
  if (!useRun.getState().live) return false;
  say("A run is in progress: the graph can be edited once it ends.");
  return true;
};

export function undo(): void {
  if (locked()) return;
  const label = useGraph.getState().undo();
  say(label ? `Undid: ${label}.` : "Nothing to undo.");
}

export function redo(): void {
  if (locked()) return;
  const label = useGraph.getState().redo();
  say(label ? `Redid: ${label}.` : "Nothing to redo.");
}

export function removeSelected(): void {
  if (locked()) return;
  const { nodes, edges } = useGraph.getState();
  const n = nodes.filter((x) => x.selected).length;
  const ids = new Set(nodes.filter((x) => x.selected).map((x) => x.id));
  const e = edges.filter((x) => x.selected || ids.has(x.source) || ids.has(x.target)).length;
  if (useGraph.getState().removeSelected() === 0) return say("Select blocks or wires to delete.");
  say(`Deleted ${describe(n, e)}.`);
}

export function copy(): void {
  const { nodes, edges } = useGraph.getState();
  const next = copySelection(nodes, edges);
  if (next.nodes.length === 0) return say("Select blocks to copy.");
  clip = next;
  pastes = 0;
  say(`Copied ${describe(next.nodes.length, next.edges.length)}.`);
}

export function paste(): void {
  if (locked()) return;
  if (!clip) return say("Nothing to paste: copy blocks first.");
  pastes += 1;
  const taken = new Set(useGraph.getState().nodes.map((n) => n.id));
  const pasted = pasteClip(clip, taken, { x: PASTE_OFFSET * pastes, y: PASTE_OFFSET * pastes });
  useGraph.getState().paste(pasted);
  say(`Pasted ${describe(pasted.nodes.length, pasted.edges.length)}: ${pasted.nodes.map((n) => n.id).join(", ")}.`);
}
