/** Widgets for collections: a set of enum values, a list of strings or numbers, a string map, raw JSON. */
import { useEffect, useState } from "react";
import { show, type WidgetProps } from "./types";

export function EnumSetWidget({ spec, value, onChange, inputId, describedBy }: WidgetProps) {
  const options = spec.schema.items?.enum ?? [];
  const chosen = Array.isArray(value) ? value : Array.isArray(spec.default) ? spec.default : [];
  return (
    <div id={inputId} role="group" aria-label={spec.title} aria-describedby={describedBy} className="enum-set" tabIndex={-1}>
      {options.map((o, i) => (
        <label key={show(o)} className="check">
          <input type="checkbox" id={i === 0 ? `${inputId}-first` : undefined} checked={chosen.includes(o)}
            onChange={(e) => onChange(e.target.checked ? [...chosen, o] : chosen.filter((c) => c !== o))} />
          {show(o)}
        </label>
      ))}
    </div>
  );
}

export function ListWidget({ spec, value, onChange, inputId, describedBy, invalid }: WidgetProps) {
  const numeric = spec.schema.items?.type === "number" || spec.schema.items?.type === "integer";
  const items = Array.isArray(value) ? value : [];
  return (
    <textarea id={inputId} rows={3} value={items.map(show).join("\n")} aria-describedby={describedBy}
      aria-invalid={invalid || undefined} placeholder="One per line"
      onChange={(e) => {
        const lines = e.target.value.split("\n");
        // Keep a trailing empty line while typing so Enter starts a new item.
        const kept = lines.filter((l, i) => l !== "" || i === lines.length - 1);
        const list = numeric ? kept.filter((l) => l.trim() !== "").map(Number) : kept;
        onChange(list.length === 1 && list[0] === "" ? undefined : list);
      }} />
  );
}

export function MapWidget({ spec, value, onChange, inputId, describedBy }: WidgetProps) {
  const entries = Object.entries(value && typeof value === "object" ? (value as Record<string, string>) : {});
  const set = (next: [string, string][]) => onChange(next.length ? Object.fromEntries(next) : undefined);
  return (
    <div id={inputId} role="group" aria-label={spec.title} aria-describedby={describedBy} className="map" tabIndex={-1}>
      {entries.map(([k, v], i) => (
        <div key={i} className="map-row">
          <input aria-label={`${spec.title} ${i + 1}: name`} value={k}
            onChange={(e) => set(entries.map((en, j) => (j === i ? [e.target.value, en[1]] : en)))} />
          <input aria-label={`${spec.title} ${i + 1}: value`} value={v}
            onChange={(e) => set(entries.map((en, j) => (j === i ? [en[0], e.target.value] : en)))} />
          <button type="button" onClick={() => set(entries.filter((_, j) => j !== i))}
            aria-label={`Remove ${spec.title} ${k || i + 1}`}>Remove</button>
        </div>
      ))}
      <button type="button" onClick={() => set([...entries, [`name${entries.length + 1}`, ""]])}>Add entry</button>
    </div>
  );
}

/** Any JSON value (fields whose schema has no type, e.g. a condition's comparison value). */
export function JsonWidget({ spec, value, onChange, inputId, describedBy, invalid }: WidgetProps) {
  const [text, setText] = useState(value === undefined ? "" : JSON.stringify(value, null, 1));
  const [bad, setBad] = useState(false);
  useEffect(() => {
    // Follow changes made elsewhere (undo), unless the text already means this value.
    setText((t) => { try { return JSON.stringify(JSON.parse(t)) === JSON.stringify(value) ? t : show(value); } catch { return t; } });
  }, [value]);
  return (
    <>
      <textarea id={inputId} rows={2} value={text} spellCheck={false} aria-describedby={describedBy}
        aria-invalid={invalid || bad || undefined}
        placeholder={spec.default === undefined ? "JSON, e.g. \"text\" or 42" : `Default: ${JSON.stringify(spec.default)}`}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === "") { setBad(false); return onChange(undefined); }
          try { onChange(JSON.parse(e.target.value)); setBad(false); } catch { setBad(true); }
        }} />
      {bad && <p className="field-error">Not valid JSON yet: write a string in quotes, a number, true/false, a list or an object.</p>}
    </>
  );
}
