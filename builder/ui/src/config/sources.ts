/**
 * The choices of a field picked from the organization's own things (a block's `"x-mantle-source"`
 * hint): its knowledge bases, its apps, an app's published versions. A value the list does not hold
 * (a base since deleted, an app of an imported graph) stays shown and selected, marked as not found,
 * so opening a form never changes a config behind the person's back. No network here: unit-tested.
 */
import type { components } from "../api/schema";

type Schemas = components["schemas"];

export interface Choice {
  value: string;
  label: string;
  disabled?: boolean;
}

export interface Choices {
  choices: Choice[];
  /** The choice shown selected ("" for none). */
  selected: string;
}

function missing(choices: Choice[], current: string, what: string): Choices {
  if (!current) return { choices, selected: "" };
  return { choices: [{ value: current, label: `${current} (${what} not found)` }, ...choices], selected: current };
}

/**
 * Knowledge bases by name: names are unique in an organization and never change, and a graph that
 * names its base travels to another organization (export, import) where an id would not. A config
 * holding an id (the block takes either) shows that base selected.
 */
export function knowledgeChoices(bases: Pick<Schemas["KnowledgeRead"], "id" | "name" | "documents">[], current: unknown): Choices {
  const choices = bases.map((kb) => {
    const ready = kb.documents?.ready ?? 0;
    return { value: kb.name, label: ready > 0 ? `${kb.name} (${ready} ready)` : `${kb.name} (no ready documents)` };
  });
  const value = typeof current === "string" ? current : "";
  const found = bases.find((kb) => kb.name === value || kb.id === value);
  return found ? { choices, selected: found.name } : missing(choices, value, "knowledge base");
}

/** The organization's apps by id; only a published one can be called, and never the app itself. */
export function appChoices(apps: Pick<Schemas["AppSummary"], "id" | "name" | "latest_version">[], current: unknown,
  self: string | null): Choices {
  const choices = apps.map((app) => {
    if (app.id === self) return { value: app.id, label: `${app.name} (this app)`, disabled: true };
    if (app.latest_version < 1) return { value: app.id, label: `${app.name} (not published)`, disabled: true };
    return { value: app.id, label: `${app.name} (version ${app.latest_version})` };
  });
  const value = typeof current === "string" ? current : "";
  return apps.some((a) => a.id === value) ? { choices, selected: value } : missing(choices, value, "app");
}

/** `latest` or a pinned version, newest first. */
export function versionChoices(versions: Pick<Schemas["VersionSummary"], "number" | "note">[], current: unknown): Choices {
  const newest = versions.reduce((n, v) => Math.max(n, v.number), 0);
  const choices: Choice[] = [{ value: "latest", label: newest ? `Latest published (now version ${newest})` : "Latest published" }];
  for (const v of [...versions].sort((a, b) => b.number - a.number)) {
    choices.push({ value: String(v.number), label: v.note ? `Version ${v.number}: ${v.note}` : `Version ${v.number}` });
  }
  if (current === undefined || current === null || current === "latest") return { choices, selected: "latest" };
  const value = String(current);
  return versions.some((v) => String(v.number) === value) ? { choices, selected: value } : missing(choices, value, "version");
}

/** The config value of a version choice: `latest` or the version's number. */
export function versionValue(choice: string): number | "latest" {
  return choice === "latest" ? "latest" : Number(choice);
}

/** Other nodes of the graph by id (a map's body, the node it collects from), titled by their block. */
export function nodeChoices(nodes: { id: string; title: string }[], self: string, current: unknown): Choices {
  const choices = nodes.filter((n) => n.id !== self).map((n) => ({ value: n.id, label: `${n.id} (${n.title})` }));
  const value = typeof current === "string" ? current : "";
  return choices.some((c) => c.value === value) ? { choices, selected: value } : missing(choices, value, "node");
}

/** A list of node ids with those the graph no longer has kept, marked, so unticking is the person's call. */
export function nodeSetChoices(nodes: { id: string; title: string }[], self: string, current: unknown): Choice[] {
  const choices = nodeChoices(nodes, self, undefined).choices;
  const chosen = Array.isArray(current) ? current.filter((v): v is string => typeof v === "string") : [];
  const gone = chosen.filter((id) => !choices.some((c) => c.value === id));
  return [...choices, ...gone.map((id) => ({ value: id, label: `${id} (node not found)` }))];
}
