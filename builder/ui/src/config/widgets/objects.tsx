/** Widgets for nested objects (an optional one can be switched on and off) and lists of objects. */
import type { Problem } from "../../api/types";
import { Field } from "../Field";
import { type JsonSchema, initialValue, objectFields, titleOf } from "../schema";
import type { WidgetProps } from "./types";

interface FieldsProps {
  schema: JsonSchema;
  root: JsonSchema;
  value: Record<string, unknown>;
  onChange: (value: Record<string, unknown>) => void;
  path: string;
  nodeId: string;
  problems: Problem[];
}

/** The fields of an object schema; a field set to `undefined` is removed (its default applies). */
export function ObjectFields({ schema, root, value, onChange, path, nodeId, problems }: FieldsProps) {
  return (
    <>
      {objectFields(schema, root).map((spec) => (
        <Field key={spec.name} spec={spec} value={value[spec.name]} root={root} nodeId={nodeId} problems={problems}
          path={`${path}.${spec.name}`} parent={value}
          onChange={(v) => {
            const next = { ...value };
            if (v === undefined) delete next[spec.name];
            else next[spec.name] = v;
            onChange(next);
          }} />
      ))}
    </>
  );
}

const asObject = (v: unknown): Record<string, unknown> =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

export function ObjectWidget({ spec, value, onChange, inputId, root, nodeId, path, problems }: WidgetProps) {
  const on = value !== undefined && value !== null;
  if (spec.nullable) {
    return (
      <>
        <div className="check">
          <input id={inputId} type="checkbox" checked={on}
            onChange={(e) => onChange(e.target.checked ? initialValue(spec.schema, root) : undefined)} />
          <label htmlFor={inputId}>Use {spec.title.toLowerCase()}</label>
        </div>
        {on && <ObjectFields schema={spec.schema} root={root} value={asObject(value)} onChange={onChange}
          path={path} nodeId={nodeId} problems={problems} />}
      </>
    );
  }
  return (
    <div id={inputId} tabIndex={-1}>
      <ObjectFields schema={spec.schema} root={root} value={asObject(value ?? spec.default)} onChange={onChange}
        path={path} nodeId={nodeId} problems={problems} />
    </div>
  );
}

export function ObjectListWidget({ spec, value, onChange, inputId, root, nodeId, path, problems }: WidgetProps) {
  const items = Array.isArray(value) ? value.map(asObject) : [];
  const itemSchema = spec.schema.items ?? {};
  const noun = titleOf("item", { title: spec.title.replace(/s$/, "").toLowerCase() });
  const max = spec.schema.maxItems ?? Infinity;
  return (
    <div id={inputId} tabIndex={-1} className="object-list">
      {items.map((item, i) => {
        const name = typeof item.name === "string" && item.name ? item.name : `${noun} ${i + 1}`;
        return (
          <fieldset key={i} className="object-item">
            <legend>{name}</legend>
            <ObjectFields schema={itemSchema} root={root} value={item} path={`${path}.${i}`} nodeId={nodeId}
              problems={problems} onChange={(v) => onChange(items.map((it, j) => (j === i ? v : it)))} />
            <button type="button" onClick={() => onChange(items.filter((_, j) => j !== i))}
              aria-label={`Remove ${name}`}>Remove</button>
          </fieldset>
        );
      })}
      <button type="button" disabled={items.length >= max}
        onClick={() => onChange([...items, initialValue(itemSchema, root)])}>Add {noun}</button>
    </div>
  );
}
