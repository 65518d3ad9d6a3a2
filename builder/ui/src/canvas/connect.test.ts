import { describe, expect, it } from "vitest";
import type { NodePorts } from "../api/types";
import { findPath, typesCompatible, wireProblem } from "./connect";

const port = (name: string, type: string) => ({ name, type, required: true, description: "" });
const ports: Record<string, NodePorts> = {
  sms: { inputs: [], outputs: [port("body", "string"), port("media_urls", "array")] },
  gen: { inputs: [port("text", "any")], outputs: [port("text", "string"), port("prompt_tokens", "integer")] },
  reply: { inputs: [port("to", "string"), port("body", "string")], outputs: [port("parts", "integer")] },
  calc: { inputs: [port("n", "number"), port("i", "integer")], outputs: [port("n", "number")] },
};
const ctx = (edges: { source: string; target: string; targetHandle?: string }[] = []) =>
  ({ edges, portsOf: (id: string) => ports[id] });

describe("typesCompatible", () => {
  it("follows the API's rule: equal, either any, or integer into number", () => {
    expect(typesCompatible("string", "string")).toBe(true);
    expect(typesCompatible("any", "integer")).toBe(true);
    expect(typesCompatible("array", "any")).toBe(true);
    expect(typesCompatible("integer", "number")).toBe(true);
    expect(typesCompatible("number", "integer")).toBe(false);
    expect(typesCompatible("array", "string")).toBe(false);
  });
});

describe("wireProblem", () => {
  it("accepts a wire between fitting ports", () => {
    expect(wireProblem({ source: "sms", sourceHandle: "body", target: "reply", targetHandle: "body" }, ctx())).toBeNull();
    expect(wireProblem({ source: "gen", sourceHandle: "prompt_tokens", target: "calc", targetHandle: "n" }, ctx())).toBeNull();
  });

  it("refuses incompatible types and says which", () => {
    const why = wireProblem({ source: "sms", sourceHandle: "media_urls", target: "reply", targetHandle: "body" }, ctx());
    expect(why).toContain("sms.media_urls (array)");
    expect(why).toContain("reply.body (string)");
  });

  it("refuses a second wire into one input", () => {
    const why = wireProblem({ source: "gen", sourceHandle: "text", target: "reply", targetHandle: "body" },
      ctx([{ source: "sms", target: "reply", targetHandle: "body" }]));
    expect(why).toContain("already has a wire");
  });

  it("refuses a cycle and names its nodes", () => {
    const edges = [{ source: "gen", target: "reply", targetHandle: "body" }];
    const why = wireProblem({ source: "reply", sourceHandle: "parts", target: "gen", targetHandle: "text" }, ctx(edges));
    expect(why).toBe("This wire would make a cycle: gen → reply → gen.");
    expect(wireProblem({ source: "gen", sourceHandle: "text", target: "gen", targetHandle: "text" }, ctx()))
      .toContain("cannot feed itself");
  });

  it("refuses unknown ports", () => {
    expect(wireProblem({ source: "sms", sourceHandle: "nope", target: "reply", targetHandle: "body" }, ctx()))
      .toContain('no output port "nope"');
  });
});

describe("findPath", () => {
  it("walks a long chain without recursion", () => {
    const edges = Array.from({ length: 20000 }, (_, i) => ({ source: `n${i}`, target: `n${i + 1}` }));
    expect(findPath(edges, "n0", "n20000")?.length).toBe(20001);
    expect(findPath(edges, "n5", "n0")).toBeNull();
  });
});
