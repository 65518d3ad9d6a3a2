import { describe, expect, it } from "vitest";
import { appChoices, knowledgeChoices, nodeChoices, nodeSetChoices, versionChoices, versionValue } from "./sources";

const bases: { id: string; name: string; documents: Record<string, number> }[] = [
  { id: "kb-1", name: "handbook", documents: { ready: 3, failed: 1 } },
  { id: "kb-2", name: "empty one", documents: {} },
];

describe("knowledge base choices", () => {
  it("lists each base by name with how many documents are ready", () => {
    expect(knowledgeChoices(bases, undefined)).toEqual({
      selected: "",
      choices: [{ value: "handbook", label: "handbook (3 ready)" }, { value: "empty one", label: "empty one (no ready documents)" }],
    });
  });

  it("selects the base a config names by name or by id", () => {
    expect(knowledgeChoices(bases, "handbook").selected).toBe("handbook");
    expect(knowledgeChoices(bases, "kb-2").selected).toBe("empty one");
  });

  it("keeps a base that is gone, selected and marked, instead of changing the config", () => {
    const found = knowledgeChoices(bases, "old docs");
    expect(found.selected).toBe("old docs");
    expect(found.choices[0]).toEqual({ value: "old docs", label: "old docs (knowledge base not found)" });
    expect(found.choices).toHaveLength(3);
  });
});

describe("app choices", () => {
  const apps = [
    { id: "a", name: "Summarize", latest_version: 2 },
    { id: "b", name: "Draft only", latest_version: 0 },
    { id: "c", name: "Caller", latest_version: 1 },
  ];

  it("offers the published apps, and shows the unpublished and the app itself as not choosable", () => {
    expect(appChoices(apps, "a", "c")).toEqual({
      selected: "a",
      choices: [
        { value: "a", label: "Summarize (version 2)" },
        { value: "b", label: "Draft only (not published)", disabled: true },
        { value: "c", label: "Caller (this app)", disabled: true },
      ],
    });
  });

  it("marks an app id the organization does not have", () => {
    expect(appChoices(apps, "zzz", null).choices[0]).toEqual({ value: "zzz", label: "zzz (app not found)" });
    expect(appChoices(apps, undefined, null).selected).toBe("");
  });
});

describe("version choices", () => {
  const versions = [{ number: 1, note: "first" }, { number: 3, note: "" }, { number: 2, note: "fix" }];

  it("offers latest first, then every version newest first", () => {
    expect(versionChoices(versions, undefined)).toEqual({
      selected: "latest",
      choices: [
        { value: "latest", label: "Latest published (now version 3)" },
        { value: "3", label: "Version 3" }, { value: "2", label: "Version 2: fix" }, { value: "1", label: "Version 1: first" },
      ],
    });
  });

  it("selects a pinned version, and keeps one that does not exist", () => {
    expect(versionChoices(versions, 2).selected).toBe("2");
    expect(versionChoices(versions, 9).choices[0]).toEqual({ value: "9", label: "9 (version not found)" });
    expect(versionChoices([], "latest").choices).toEqual([{ value: "latest", label: "Latest published" }]);
  });

  it("saves a choice as the block takes it", () => {
    expect(versionValue("latest")).toBe("latest");
    expect(versionValue("3")).toBe(3);
  });
});

describe("node choices (a map's body, the node it collects from)", () => {
  const nodes = [{ id: "map", title: "Map" }, { id: "ask", title: "Prompt a model" }, { id: "tidy", title: "Template" }];

  it("offers the graph's other nodes, titled by their block", () => {
    expect(nodeChoices(nodes, "map", "ask")).toEqual({
      selected: "ask", choices: [{ value: "ask", label: "ask (Prompt a model)" }, { value: "tidy", label: "tidy (Template)" }],
    });
    expect(nodeChoices(nodes, "map", "gone").choices[0]).toEqual({ value: "gone", label: "gone (node not found)" });
  });

  it("keeps a ticked node the graph no longer has, marked", () => {
    expect(nodeSetChoices(nodes, "map", ["tidy", "deleted"]).map((c) => c.label))
      .toEqual(["ask (Prompt a model)", "tidy (Template)", "deleted (node not found)"]);
  });
});
