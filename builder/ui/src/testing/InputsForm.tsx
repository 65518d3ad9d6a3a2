/** Typed fields for a run's or a node test's inputs (text, number, yes/no, JSON), with their errors. */
import { type InputField, type InputValues, hint } from "./inputs";

interface Props {
  fields: readonly InputField[];
  values: InputValues;
  errors: Record<string, string>;
  onChange: (values: InputValues) => void;
  /** Makes the fields' DOM ids unique on the page. */
  idPrefix: string;
}

function FieldInput({ field, value, id, described, invalid, set }: {
  field: InputField; value: string | boolean; id: string; described: string | undefined; invalid: boolean;
  set: (value: string | boolean) => void;
}) {
  const common = { id, "aria-describedby": described, "aria-invalid": invalid || undefined, name: field.name };
  switch (field.kind) {
    case "boolean":
      return <input type="checkbox" {...common} checked={value === true} onChange={(e) => set(e.target.checked)} />;
    case "number":
    case "integer":
      return <input type="number" step={field.kind === "integer" ? 1 : "any"} {...common} value={String(value)}
        onChange={(e) => set(e.target.value)} />;
    case "text":
      return <textarea rows={2} {...common} value={String(value)} onChange={(e) => set(e.target.value)} />;
    default:
      return <textarea rows={3} className="code" spellCheck={false} {...common} value={String(value)}
        onChange={(e) => set(e.target.value)} />;
  }
}

export function InputsForm({ fields, values, errors, onChange, idPrefix }: Props) {
  if (fields.length === 0) return <p className="muted">It takes no inputs.</p>;
  return (
    <>
      {fields.map((field) => {
        const id = `${idPrefix}-${field.name}`;
        const help = [field.description, hint(field)].filter(Boolean).join(" ");
        const error = errors[field.name];
        const described = [help && `${id}-help`, error && `${id}-error`].filter(Boolean).join(" ") || undefined;
        const input = <FieldInput field={field} value={values[field.name] ?? ""} id={id} described={described}
          invalid={Boolean(error)} set={(v) => onChange({ ...values, [field.name]: v })} />;
        return (
          <div key={field.name} className={`field${error ? " has-problem" : ""}`}>
            {field.kind === "boolean" ? <div className="check">{input}<label htmlFor={id}>{field.label}</label></div> : (
              <>
                <label htmlFor={id}>{field.label}{field.required ? <span aria-hidden="true"> *</span> : null}
                  <span className="port-type"> {field.type}</span></label>
                {input}
              </>
            )}
            {help && <p id={`${id}-help`} className="field-desc">{help}</p>}
            {error && <p id={`${id}-error`} className="field-error">{error}</p>}
          </div>
        );
      })}
    </>
  );
}
