/** What every config widget receives. */
import type { Problem } from "../../api/types";
import type { FieldSpec, JsonSchema } from "../schema";

export interface WidgetProps {
  spec: FieldSpec;
  /** The field's value; `undefined` when unset (the block's default applies). */
  value: unknown;
  onChange: (value: unknown) => void;
  /** The id of the input (from the field's config path), for its label and for focusing a problem. */
  inputId: string;
  /** The ids of the description and problem texts. */
  describedBy: string | undefined;
  invalid: boolean;
  root: JsonSchema;
  nodeId: string;
  /** The config path of this field ("config.fields.0.name"). */
  path: string;
  /** The node's problems, for nested fields to show theirs. */
  problems: Problem[];
  /** The object holding this field, for a field whose choices depend on a sibling's value. */
  parent?: Record<string, unknown>;
}

export function show(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}
