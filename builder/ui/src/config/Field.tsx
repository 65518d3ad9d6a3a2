/**
 * One config field: its label, widget (picked by kind from a small registry), description,
 * default, limits, and the validation problems whose `path` names it.
 */
import type { ComponentType } from "react";
import type { Problem } from "../api/types";
import { type FieldKind, type FieldSpec, type JsonSchema, fieldDomId } from "./schema";
import { EnumSetWidget, JsonWidget, ListWidget, MapWidget } from "./widgets/collections";
import { ObjectListWidget, ObjectWidget } from "./widgets/objects";
import { BooleanWidget, EnumWidget, NumberWidget, TextWidget } from "./widgets/scalars";
import { NodesWidget } from "./widgets/nodes";
import { SourceWidget } from "./widgets/sources";
import type { WidgetProps } from "./widgets/types";

const WIDGETS: Record<FieldKind, ComponentType<WidgetProps>> = {
  text: TextWidget, textarea: TextWidget, integer: NumberWidget, number: NumberWidget, boolean: BooleanWidget,
  enum: EnumWidget, "enum-set": EnumSetWidget, list: ListWidget, map: MapWidget, json: JsonWidget,
  object: ObjectWidget, "object-list": ObjectListWidget, source: SourceWidget, nodes: NodesWidget,
};

/** Kinds drawn as a group (fieldset) with a legend instead of a label. */
const GROUPS = new Set<FieldKind>(["object", "object-list"]);

export interface FieldProps {
  spec: FieldSpec;
  value: unknown;
  onChange: (value: unknown) => void;
  path: string;
  nodeId: string;
  root: JsonSchema;
  problems: Problem[];
  /** The object holding this field (its siblings' values). */
  parent?: Record<string, unknown>;
}

function defaultText(spec: FieldSpec): string {
  if (spec.default === undefined || spec.default === null || GROUPS.has(spec.kind)) return "";
  if (typeof spec.default === "string") return spec.default === "" ? "" : `Default: “${spec.default}”.`;
  if (Array.isArray(spec.default) && spec.default.length === 0) return "";
  return `Default: ${JSON.stringify(spec.default)}.`;
}

export function Field({ spec, value, onChange, path, nodeId, root, problems, parent }: FieldProps) {
  const Widget = WIDGETS[spec.kind];
  const inputId = fieldDomId(nodeId, path);
  const own = problems.filter((p) => p.path === path);
  const notes = [spec.description, defaultText(spec), spec.limits ? `Limits: ${spec.limits}.` : ""].filter(Boolean).join(" ");
  const describedBy = [notes ? `${inputId}-desc` : "", own.length ? `${inputId}-err` : ""].filter(Boolean).join(" ") || undefined;
  const widget = (
    <Widget spec={spec} value={value} onChange={onChange} inputId={inputId} describedBy={describedBy}
      invalid={own.length > 0} root={root} nodeId={nodeId} path={path} problems={problems} parent={parent} />
  );
  const label = <>{spec.title}{spec.required && <span aria-hidden="true"> *</span>}</>;

  return (
    <div className={`field field-${spec.kind}${own.length ? " has-problem" : ""}`} data-path={path}>
      {GROUPS.has(spec.kind) ? (
        <fieldset aria-describedby={describedBy}>
          <legend>{label}</legend>
          {notes && <p id={`${inputId}-desc`} className="field-desc">{notes}</p>}
          {widget}
        </fieldset>
      ) : (
        <>
          {spec.kind === "boolean" ? (
            <div className="check">{widget}<label htmlFor={inputId}>{label}</label></div>
          ) : (
            <>
              <label htmlFor={inputId}>{label}</label>
              {widget}
            </>
          )}
          {notes && <p id={`${inputId}-desc`} className="field-desc">{notes}</p>}
        </>
      )}
      {own.length > 0 && (
        <p id={`${inputId}-err`} className="field-error"><span aria-hidden="true">⚠ </span>
          {own.map((p) => p.message).join("; ")}</p>
      )}
    </div>
  );
}
