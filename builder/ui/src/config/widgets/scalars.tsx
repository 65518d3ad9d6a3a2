/** Widgets for single values: text, template (textarea), numbers with limits, booleans, enums. */
import { show, type WidgetProps } from "./types";

export function TextWidget({ spec, value, onChange, inputId, describedBy, invalid }: WidgetProps) {
  const multiline = spec.kind === "textarea";
  const common = {
    id: inputId,
    value: typeof value === "string" ? value : show(value ?? spec.default),
    maxLength: spec.schema.maxLength,
    "aria-describedby": describedBy,
    "aria-invalid": invalid || undefined,
    placeholder: typeof spec.schema.examples?.[0] === "string" ? `e.g. ${spec.schema.examples[0]}` : undefined,
  };
  // An emptied optional (nullable) field is unset; any other emptied field is saved as "", so the
  // default shown in it does not come back behind the person's back.
  const change = (text: string) => onChange(text === "" && spec.nullable ? undefined : text);
  return multiline
    ? <textarea {...common} rows={5} spellCheck={false} onChange={(e) => change(e.target.value)} />
    : <input {...common} type="text" onChange={(e) => change(e.target.value)} />;
}

export function NumberWidget({ spec, value, onChange, inputId, describedBy, invalid }: WidgetProps) {
  const s = spec.schema;
  const integer = spec.kind === "integer";
  const current = typeof value === "number" ? String(value) : "";
  return (
    <input id={inputId} type="number" inputMode={integer ? "numeric" : "decimal"} step={integer ? 1 : "any"}
      min={s.minimum ?? s.exclusiveMinimum} max={s.maximum ?? s.exclusiveMaximum} value={current}
      placeholder={typeof spec.default === "number" ? String(spec.default) : undefined}
      aria-describedby={describedBy} aria-invalid={invalid || undefined}
      onChange={(e) => {
        const text = e.target.value;
        if (text === "") return onChange(undefined);
        const n = Number(text);
        if (Number.isFinite(n)) onChange(integer ? Math.trunc(n) : n);
      }} />
  );
}

export function BooleanWidget({ spec, value, onChange, inputId, describedBy }: WidgetProps) {
  const checked = typeof value === "boolean" ? value : spec.default === true;
  return (
    <input id={inputId} type="checkbox" checked={checked} aria-describedby={describedBy}
      onChange={(e) => onChange(e.target.checked)} />
  );
}

export function EnumWidget({ spec, value, onChange, inputId, describedBy, invalid }: WidgetProps) {
  const options = spec.schema.enum ?? [];
  const current = value ?? spec.default;
  const index = options.findIndex((o) => o === current);
  return (
    <select id={inputId} value={index < 0 ? "" : String(index)} aria-describedby={describedBy}
      aria-invalid={invalid || undefined}
      onChange={(e) => onChange(e.target.value === "" ? undefined : options[Number(e.target.value)])}>
      {(index < 0 || spec.nullable) && <option value="">{spec.nullable ? "(none)" : "Choose…"}</option>}
      {options.map((o, i) => <option key={show(o)} value={String(i)}>{show(o)}</option>)}
    </select>
  );
}
