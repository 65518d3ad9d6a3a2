import { beforeEach, describe, expect, it } from "vitest";
import type { Block } from "../api/types";
import { useGraph } from "./graph";

const port = (name: string, type = "any") => ({ name, type, required: true, description: "" });
const template: Block = {
  type: "text.template", version: 1, title: "Template", description: "", category: "text", execution: "inline",
  trigger: false, side_effects: false, inputs: [port("text")], outputs: [port("text", "string")],
  dynamic_ports: "One input port per variable the template reads.", config_schema: {},
};

beforeEach(() => {
  useGraph.getState().setBlocks([template]);
  useGraph.getState().load({
    nodes: [
      { id: "a", type: "text.template", config: { template: "{{ text }}" }, position: { x: 0, y: 0 } },
      { id: "b", type: "text.template", config: { template: "{{ text }}" }, position: { x: 300, y: 0 } },
    ],
    edges: [{ source: "a", source_port: "text", target: "b", target_port: "text" }],
  });
});

describe("graph store", () => {
  it("drops the wires of a port the server no longer reports, and says which", () => {
    const dropped = useGraph.getState().setPorts({
      b: { inputs: [port("customer")], outputs: [port("text", "string")] },
    });
    expect(dropped).toEqual(["a.text → b.text"]);
    expect(useGraph.getState().edges).toHaveLength(0);
  });

  it("keeps wires when the ports are the block's own", () => {
    const before = useGraph.getState().edits;
    const dropped = useGraph.getState().setPorts({
      a: { inputs: [port("text")], outputs: [port("text", "string")] },
      b: { inputs: [port("text")], outputs: [port("text", "string")] },
    });
    expect(dropped).toEqual([]);
    expect(useGraph.getState().edges).toHaveLength(1);
    expect(useGraph.getState().edits).toBe(before);
  });

  it("makes a burst of config edits one undo step", () => {
    const { setConfig } = useGraph.getState();
    setConfig("a", { template: "H" });
    setConfig("a", { template: "Hi" });
    setConfig("a", { template: "Hi {{ x }}" });
    expect(useGraph.getState().history.past).toHaveLength(1);
    expect(useGraph.getState().undo()).toBe("edit config");
    expect(useGraph.getState().nodes[0]?.data.config).toEqual({ template: "{{ text }}" });
    useGraph.getState().redo();
    expect(useGraph.getState().nodes[0]?.data.config).toEqual({ template: "Hi {{ x }}" });
  });

  it("counts every change to the saved graph, not selection", () => {
    const start = useGraph.getState().edits;
    useGraph.getState().select("a");
    expect(useGraph.getState().edits).toBe(start);
    useGraph.getState().addBlock("text.template", { x: 0, y: 200 });
    expect(useGraph.getState().edits).toBe(start + 1);
    expect(useGraph.getState().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["template_1"]);
  });
});
