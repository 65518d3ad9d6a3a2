/**
 * Typed input forms from ports: the draft's trigger (its output ports are the run's inputs) and a
 * node tested alone (one field per input port). What is typed is turned into the JSON the API
 * takes, each field by its port's type; the API's own refusals are mapped back to their field.
 */
import type { Port } from "../api/types";

export type FieldKind = "text" | "number" | "integer" | "boolean" | "json" | "any";

export interface InputField {
  name: string;
  label: string;
  kind: FieldKind;
  /** The port's type as the API names it (`string`, `object`...). */
  type: string;
  required: boolean;
  description: string;
}

export type InputValues = Record<string, string | boolean>;

const KINDS: Record<string, FieldKind> = {
  string: "text", number: "number", integer: "integer", boolean: "boolean", object: "json", array: "json",
};

/** One field per port; `labels` by port name where the block's config gives them (form fields). */
export function fieldsFromPorts(ports: readonly Port[], labels: Record<string, string> = {}): InputField[] {
  return ports.map((p) => ({
    name: p.name, label: labels[p.name] || p.name, kind: KINDS[p.type] ?? "any", type: p.type,
    required: p.required, description: p.description ?? "",
  }));
}

/** The labels a trigger's config gives its fields (`trigger.api` and `webapp.input` have `fields`). */
export function fieldLabels(config: Record<string, unknown>): Record<string, string> {
  const fields = Array.isArray(config.fields) ? config.fields as { name?: unknown; label?: unknown }[] : [];
  return Object.fromEntries(fields.filter((f) => typeof f.name === "string" && typeof f.label === "string" && f.label)
    .map((f) => [f.name as string, f.label as string]));
}

export function emptyValues(fields: readonly InputField[]): InputValues {
  return Object.fromEntries(fields.map((f) => [f.name, f.kind === "boolean" ? false : ""]));
}

/** What a person types into a field of this kind, said next to it. */
export function hint(field: InputField): string {
  if (field.kind === "json") return field.type === "array" ? "JSON list, e.g. [\"a\", \"b\"]" : "JSON object, e.g. {\"key\": \"value\"}";
  if (field.kind === "any") return "Text, or JSON for a number, true/false, a list or an object";
  return "";
}

function parseJson(text: string): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { error: `Not valid JSON (${e instanceof Error ? e.message : "parse error"}).` };
  }
}

/** One field's value as JSON, `undefined` to leave it out, or the reason it cannot be sent. */
function convert(field: InputField, raw: string | boolean): { value?: unknown; error?: string } {
  if (field.kind === "boolean") return { value: raw === true };
  const text = String(raw);
  if (text.trim() === "") {
    // An empty text field is an empty string when the port needs one; any other empty field is left
    // out, and the server says if it was required.
    return field.kind === "text" && field.required ? { value: "" } : {};
  }
  switch (field.kind) {
    case "text":
      return { value: text };
    case "number":
    case "integer": {
      const n = Number(text);
      if (!Number.isFinite(n)) return { error: "Enter a number." };
      if (field.kind === "integer" && !Number.isInteger(n)) return { error: "Enter a whole number." };
      return { value: n };
    }
    case "json": {
      const parsed = parseJson(text);
      if (parsed.error) return parsed;
      const isList = Array.isArray(parsed.value);
      const isObject = typeof parsed.value === "object" && parsed.value !== null && !isList;
      if (field.type === "array" && !isList) return { error: "Enter a JSON list ([...])." };
      if (field.type === "object" && !isObject) return { error: "Enter a JSON object ({...})." };
      return parsed;
    }
    default: {
      // A port of any type: JSON when it reads as JSON (3, true, [1], {"a": 1}), else the text itself.
      const parsed = parseJson(text);
      return parsed.error ? { value: text } : parsed;
    }
  }
}

/** The inputs to send, or the problem of each field that cannot be sent. */
export function toInputs(fields: readonly InputField[], values: InputValues
): { inputs: Record<string, unknown>; errors: Record<string, string> } {
  const inputs: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const { value, error } = convert(field, values[field.name] ?? "");
    if (error) errors[field.name] = error;
    else if (value !== undefined) inputs[field.name] = value;
  }
  return { inputs, errors };
}

interface Detail {
  loc?: (string | number)[];
  msg?: string;
}

/** The API's refusal split into messages by input (`loc` `["body", "inputs", <name>, ...]`) and the rest. */
export function inputErrors(body: unknown, fallback: string): { fields: Record<string, string>; form: string } {
  const detail = (body as { detail?: unknown } | undefined)?.detail;
  if (!Array.isArray(detail)) return { fields: {}, form: typeof detail === "string" ? detail : fallback };
  const fields: Record<string, string> = {};
  const rest: string[] = [];
  for (const d of detail as Detail[]) {
    const [where, what, name] = d.loc ?? [];
    const msg = d.msg ?? fallback;
    if (where === "body" && what === "inputs" && name !== undefined) {
      const key = String(name);
      fields[key] = fields[key] ? `${fields[key]}; ${msg}` : msg;
    } else rest.push(msg);
  }
  return { fields, form: rest.join("; ") };
}
