/**
 * From a block's `config_schema` (JSON Schema written by pydantic) to the fields of its form.
 *
 * A small mapping of our own rather than @rjsf: config fields here sit beside ports and
 * validation problems (a problem's `path` must focus its field), which is why Dify, Langflow and
 * Flowise each keep a small widget registry keyed by field kind. This covers what pydantic emits
 * for our blocks: scalars with limits, enums, `anyOf [X, null]` for optionals, `$ref` into
 * `$defs`, arrays of scalars, enums or objects, nested objects and string maps.
 */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  examples?: unknown[];
  /** Where the field's choices come from (a block's hint): see `SOURCES`. */
  "x-mantle-source"?: string;
  /** For `app-versions`: the sibling field holding the app's id. */
  "x-mantle-app-field"?: string;
}

/** The option lists a field may be picked from (`"x-mantle-source"` in a block's config schema). */
export const SOURCES = ["knowledge", "apps", "app-versions", "nodes"] as const;
export type Source = (typeof SOURCES)[number];
/** The sources read from the API (`nodes` comes from the graph being edited). */
export type ApiSource = Exclude<Source, "nodes">;

/** The field's source of choices, if its schema names one this builder knows. */
export function sourceOf(s: JsonSchema): Source | null {
  const named = s["x-mantle-source"];
  return (SOURCES as readonly string[]).includes(named ?? "") ? (named as Source) : null;
}

export type FieldKind =
  | "text" | "textarea" | "integer" | "number" | "boolean" | "enum"
  | "enum-set" | "list" | "object" | "object-list" | "map" | "json" | "source" | "nodes";

export interface FieldSpec {
  name: string;
  kind: FieldKind;
  /** The field's own schema, `$ref` and the null branch of an optional resolved away. */
  schema: JsonSchema;
  title: string;
  description: string;
  /** `anyOf [X, null]`: the field may be left unset. */
  nullable: boolean;
  required: boolean;
  default: unknown;
  /** The schema's limits in words ("1 to 8192", "at most 32000 characters"). */
  limits: string;
}

const TEMPLATE_NAMES = new Set(["template", "system", "instructions", "help_text", "body"]);

/** `schema` with a `$ref` (into the root's `$defs`) followed; an unknown ref leaves it as is. */
export function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let s = schema;
  for (let hops = 0; s.$ref && hops < 20; hops++) {
    const name = s.$ref.replace(/^#\/\$defs\//, "");
    const target = root.$defs?.[name];
    if (!target) break;
    const { $ref: _ref, ...rest } = s;
    s = { ...target, ...rest };
  }
  return s;
}

/** The non-null branch of `anyOf [X, null]`, and whether null was allowed. */
export function unwrapNullable(schema: JsonSchema, root: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  const s = resolve(schema, root);
  const branches = s.anyOf ?? s.oneOf;
  if (!branches) return { schema: s, nullable: s.type === "null" };
  const others = branches.filter((b) => b.type !== "null");
  const nullable = others.length < branches.length;
  if (others.length !== 1) return { schema: { ...s, anyOf: others }, nullable };
  const { anyOf: _a, oneOf: _o, ...outer } = s;
  return { schema: { ...resolve(others[0] as JsonSchema, root), ...outer }, nullable };
}

/** "Max New Tokens" for `max_new_tokens` when the schema has no title. */
export function titleOf(name: string, schema: JsonSchema): string {
  if (schema.title && schema.title !== name) return schema.title;
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function limitsText(s: JsonSchema): string {
  const parts: string[] = [];
  const low = s.minimum !== undefined ? `${s.minimum}` : s.exclusiveMinimum !== undefined ? `more than ${s.exclusiveMinimum}` : null;
  const high = s.maximum !== undefined ? `${s.maximum}` : s.exclusiveMaximum !== undefined ? `less than ${s.exclusiveMaximum}` : null;
  if (low !== null && high !== null) parts.push(s.minimum !== undefined && s.maximum !== undefined ? `${low} to ${high}` : `${low}, ${high}`);
  else if (low !== null) parts.push(s.minimum !== undefined ? `at least ${low}` : low);
  else if (high !== null) parts.push(s.maximum !== undefined ? `at most ${high}` : high);
  if (s.minLength !== undefined && s.minLength > 0) parts.push(`at least ${s.minLength} characters`);
  if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`);
  if (s.minItems !== undefined && s.minItems > 0) parts.push(`at least ${s.minItems} items`);
  if (s.maxItems !== undefined) parts.push(`at most ${s.maxItems} items`);
  return parts.join("; ");
}

/** Which widget draws a (resolved, non-null) schema. */
export function kindOf(name: string, s: JsonSchema, root: JsonSchema): FieldKind {
  const source = sourceOf(s);
  if (source) return source === "nodes" ? "nodes" : "source";
  if (s.enum) return "enum";
  switch (s.type) {
    case "boolean":
      return "boolean";
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "string":
      return TEMPLATE_NAMES.has(name) || (s.maxLength ?? 0) > 2000 ? "textarea" : "text";
    case "array": {
      const items = unwrapNullable(s.items ?? {}, root).schema;
      if (items.enum) return "enum-set";
      if (items.type === "object" && items.properties) return "object-list";
      if (items.type === "string" || items.type === "number" || items.type === "integer") return "list";
      return "json";
    }
    case "object":
      if (s.properties) return "object";
      if (typeof s.additionalProperties === "object" && s.additionalProperties.type === "string") return "map";
      return "json";
    default:
      return "json";
  }
}

function resolvedTitle(raw: JsonSchema, schema: JsonSchema): JsonSchema {
  const viaRef = Boolean(raw.$ref || raw.anyOf?.some((b) => b.$ref) || raw.oneOf?.some((b) => b.$ref));
  return viaRef ? { title: raw.title } : schema;
}

export function fieldSpec(name: string, raw: JsonSchema, root: JsonSchema, required: boolean): FieldSpec {
  const { schema, nullable } = unwrapNullable(raw, root);
  const kind = kindOf(name, schema, root);
  return {
    name,
    kind,
    schema,
    // A `$ref`'s target is titled after its class ("PiiRule"): only the property's own title names it.
    title: titleOf(name, resolvedTitle(raw, schema)),
    description: schema.description ?? "",
    nullable,
    required,
    default: schema.default,
    // A picked value is one of the listed choices: its length limits say nothing to the person.
    limits: kind === "source" || kind === "nodes" ? "" : limitsText(schema),
  };
}

/** The fields of an object schema, in the schema's order. */
export function objectFields(schema: JsonSchema, root: JsonSchema): FieldSpec[] {
  const s = resolve(schema, root);
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {}).map(([name, sub]) => fieldSpec(name, sub, root, required.has(name)));
}

/** A starting value for a new item or a newly enabled optional object: its defaults, filled in. */
export function initialValue(schema: JsonSchema, root: JsonSchema): unknown {
  const s = unwrapNullable(schema, root).schema;
  if (s.default !== undefined && s.default !== null) return structuredClone(s.default);
  if (s.enum) return s.enum[0];
  switch (s.type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const f of objectFields(s, root)) {
        if (f.required) out[f.name] = initialValue(f.schema, root);
      }
      return out;
    }
    case "array":
      return [];
    case "boolean":
      return false;
    case "integer":
    case "number":
      return s.minimum ?? 0;
    case "string":
      return "";
    default:
      return null;
  }
}

/** The DOM id of the input for a config `path` ("config.fields.0.name"), so a problem can focus it. */
export function fieldDomId(nodeId: string, path: string): string {
  return `cfg-${nodeId}-${path}`;
}
