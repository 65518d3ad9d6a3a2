import { describe, expect, it } from "vitest";
import type { GraphDoc, GraphNode } from "../api/types";
import { changeCount, diffGraphs, sameJson, wireLabel } from "./diff";

const v1: GraphDoc = {
  schema_version: 1,
  nodes: [
    { id: "form", type: "webapp.input", config: { fields: [{ name: "name" }] }, position: { x: 0, y: 0 } },
    { id: "greet", type: "text.template", config: { template: "Hi {{ name }}" }, position: { x: 200, y: 0 } },
    { id: "out", type: "output", config: {}, position: { x: 400, y: 0 } },
  ],
  edges: [
    { source: "form", source_port: "name", target: "greet", target_port: "name" },
    { source: "greet", source_port: "text", target: "out", target_port: "text" },
  ],
};

function clone(g: GraphDoc): GraphDoc {
  return JSON.parse(JSON.stringify(g)) as GraphDoc;
}

function nodeOf(g: GraphDoc, id: string): GraphNode {
  const found = g.nodes.find((n) => n.id === id);
  if (!found) throw new Error(`no node ${id}`);
  return found;
}

describe("diffGraphs", () => {
  it("finds nothing between a graph and itself, even moved and reordered", () => {
    const moved = clone(v1);
    moved.nodes.reverse();
    nodeOf(moved, "out").position = { x: 999, y: 5 };
    nodeOf(moved, "greet").config = { template: "Hi {{ name }}" };
    moved.edges.reverse();
    expect(changeCount(diffGraphs(v1, moved))).toBe(0);
  });

  it("lists a node added with its wires, and a changed config key", () => {
    const v2 = clone(v1);
    nodeOf(v2, "greet").config = { template: "Hello {{ name }}", strict: true };
    v2.nodes.push({ id: "shout", type: "text.upper", config: {} });
    v2.edges[1] = { source: "greet", source_port: "text", target: "shout", target_port: "text" };
    v2.edges.push({ source: "shout", source_port: "text", target: "out", target_port: "text" });
    const diff = diffGraphs(v1, v2);
    expect(diff.nodes.added.map((n) => n.id)).toEqual(["shout"]);
    expect(diff.nodes.removed).toEqual([]);
    expect(diff.nodes.changed).toEqual([{ id: "greet", type: "text.template", keys: ["strict", "template"], fields: [] }]);
    expect(diff.edges.added.map(wireLabel)).toEqual(["greet.text → shout.text", "shout.text → out.text"]);
    expect(diff.edges.removed.map(wireLabel)).toEqual(["greet.text → out.text"]);
    expect(changeCount(diff)).toBe(5);
  });

  it("reads the other way as the reverse", () => {
    const v2 = clone(v1);
    v2.nodes = v2.nodes.filter((n) => n.id !== "out");
    v2.edges = v2.edges.slice(0, 1);
    const back = diffGraphs(v2, v1);
    expect(back.nodes.added.map((n) => n.id)).toEqual(["out"]);
    expect(back.edges.added.map(wireLabel)).toEqual(["greet.text → out.text"]);
    expect(diffGraphs(v1, v2).nodes.removed.map((n) => n.id)).toEqual(["out"]);
  });

  it("notes a changed block type, a node's policy and the graph's settings", () => {
    const v2 = clone(v1);
    Object.assign(nodeOf(v2, "out"), { type: "output.json", policy: { retries: 2 } });
    v2.settings = { deadline_s: 60 };
    const diff = diffGraphs(v1, v2);
    expect(diff.nodes.changed).toEqual([{ id: "out", type: "output.json", typeBefore: "output", keys: [], fields: ["policy"] }]);
    expect(diff.graph).toEqual(["settings"]);
  });
});

describe("sameJson", () => {
  it("ignores key order and tells arrays from objects", () => {
    expect(sameJson({ a: [1, { b: 2, c: 3 }] }, { a: [1, { c: 3, b: 2 }] })).toBe(true);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson([], {})).toBe(false);
    expect(sameJson(null, {})).toBe(false);
    expect(sameJson({ a: undefined }, {})).toBe(true);
  });
});
