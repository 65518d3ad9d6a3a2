import { describe, expect, it } from "vitest";
import { copySelection, freshId, pasteClip } from "./clipboard";
import type { BlockFlowNode, WireEdge } from "./types";

const node = (id: string, type: string, selected = false): BlockFlowNode => ({
  id, type: "block", position: { x: 10, y: 20 }, selected, data: { blockType: type, config: { template: id }, extra: {} },
});
const edge = (s: string, t: string): WireEdge => ({
  id: `${s}->${t}`, source: s, sourceHandle: "text", target: t, targetHandle: "text", data: { extra: {} },
});

describe("freshId", () => {
  it("uses the block's last name part and the first free number", () => {
    expect(freshId("text.template", new Set())).toBe("template_1");
    expect(freshId("text.template", new Set(["template_1", "template_2"]))).toBe("template_3");
    expect(freshId("output", new Set())).toBe("output_1");
  });
});

describe("copy and paste", () => {
  const nodes = [node("a", "text.template", true), node("b", "llm.prompt", true), node("c", "output")];
  const edges = [edge("a", "b"), edge("b", "c")];

  it("copies the selected nodes and only the wires between them", () => {
    const clip = copySelection(nodes, edges);
    expect(clip.nodes.map((n) => n.id)).toEqual(["a", "b"]);
    expect(clip.edges.map((e) => [e.source, e.target])).toEqual([["a", "b"]]);
  });

  it("pastes with new ids, offset positions, and the wire remapped", () => {
    const clip = copySelection(nodes, edges);
    const pasted = pasteClip(clip, new Set(["a", "b", "c", "template_1"]), { x: 40, y: 40 });
    expect(pasted.nodes.map((n) => n.id)).toEqual(["template_2", "prompt_1"]);
    expect(pasted.nodes[0]?.position).toEqual({ x: 50, y: 60 });
    expect(pasted.nodes[0]?.data.config).toEqual({ template: "a" });
    expect(pasted.edges).toHaveLength(1);
    expect(pasted.edges[0]).toMatchObject({ source: "template_2", target: "prompt_1", id: "template_2:text->prompt_1:text" });
  });

  it("gives a second paste of the same clip other ids", () => {
    const clip = copySelection(nodes, edges);
    const first = pasteClip(clip, new Set(["a", "b", "c"]), { x: 40, y: 40 });
    const taken = new Set(["a", "b", "c", ...first.nodes.map((n) => n.id)]);
    const second = pasteClip(clip, taken, { x: 80, y: 80 });
    expect(second.nodes.map((n) => n.id)).toEqual(["template_2", "prompt_2"]);
  });

  it("does not share config objects with the copied nodes", () => {
    const clip = copySelection(nodes, edges);
    const pasted = pasteClip(clip, new Set(), { x: 0, y: 0 });
    (pasted.nodes[0]?.data.config as Record<string, unknown>).template = "changed";
    expect(nodes[0]?.data.config).toEqual({ template: "a" });
  });
});
