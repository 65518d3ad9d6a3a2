/**
 * What changed between two graphs (two versions, or a version and the draft): nodes and edges
 * added and removed, and for each node kept, which config keys (and other saved fields) changed.
 *
 * Nodes are matched by id (ids are stable, chosen by the builder) and edges by their four ends.
 * A node's `position` is layout, not meaning: moving a node is no change.
 */
import type { GraphDoc, GraphEdge, GraphNode } from "../api/types";
import { edgeId } from "../canvas/types";

export interface NodeChange {
  id: string;
  type: string;
  /** The block type before, when it changed. */
  typeBefore?: string;
  /** Config keys whose value differs (added, removed or changed), sorted. */
  keys: string[];
  /** Other saved fields of the node that differ (its `policy`, say), sorted. */
  fields: string[];
}

export interface GraphDiff {
  nodes: { added: GraphNode[]; removed: GraphNode[]; changed: NodeChange[] };
  edges: { added: GraphEdge[]; removed: GraphEdge[] };
  /** Graph-level fields (run `settings`, say) that differ, sorted. */
  graph: string[];
}

type Json = unknown;
const NOT_MEANING = new Set(["id", "type", "config", "position"]);
const NOT_GRAPH = new Set(["nodes", "edges", "schema_version"]);

/**
 * Whether two JSON values are equal (object key order ignored). Hand-written because the values
 * are plain JSON from the API, where a dozen lines cover every case a library would.
 */
export function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  const ao = a as Record<string, Json>;
  const bo = b as Record<string, Json>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) if (!sameJson(ao[k], bo[k])) return false;
  return true;
}

/** The keys of two objects whose values differ, sorted (`skip` left out). */
function changedKeys(a: Record<string, Json>, b: Record<string, Json>, skip?: Set<string>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => !skip?.has(k) && !sameJson(a[k], b[k])).sort();
}

const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
const edgeKey = (e: GraphEdge) => edgeId(e.source, e.source_port, e.target, e.target_port);

export function diffGraphs(before: GraphDoc, after: GraphDoc): GraphDiff {
  const old = new Map(before.nodes.map((n) => [n.id, n]));
  const now = new Map(after.nodes.map((n) => [n.id, n]));
  const changed: NodeChange[] = [];
  for (const node of after.nodes) {
    const was = old.get(node.id);
    if (!was) continue;
    const keys = changedKeys(was.config ?? {}, node.config ?? {});
    const fields = changedKeys(was, node, NOT_MEANING);
    if (was.type !== node.type || keys.length || fields.length) {
      changed.push({ id: node.id, type: node.type, ...(was.type !== node.type ? { typeBefore: was.type } : {}), keys, fields });
    }
  }
  const oldEdges = new Set(before.edges.map(edgeKey));
  const newEdges = new Set(after.edges.map(edgeKey));
  return {
    nodes: {
      added: after.nodes.filter((n) => !old.has(n.id)).sort(byId),
      removed: before.nodes.filter((n) => !now.has(n.id)).sort(byId),
      changed: changed.sort(byId),
    },
    edges: {
      added: after.edges.filter((e) => !oldEdges.has(edgeKey(e))).sort((a, b) => edgeKey(a).localeCompare(edgeKey(b))),
      removed: before.edges.filter((e) => !newEdges.has(edgeKey(e))).sort((a, b) => edgeKey(a).localeCompare(edgeKey(b))),
    },
    graph: changedKeys(before, after, NOT_GRAPH),
  };
}

/** How many changes the diff holds (0: the graphs mean the same). */
export function changeCount(diff: GraphDiff): number {
  const { nodes, edges } = diff;
  return nodes.added.length + nodes.removed.length + nodes.changed.length + edges.added.length
    + edges.removed.length + diff.graph.length;
}

/** A wire as people read it: `form.name → greet.name`. */
export function wireLabel(e: GraphEdge): string {
  return `${e.source}.${e.source_port} → ${e.target}.${e.target_port}`;
}
