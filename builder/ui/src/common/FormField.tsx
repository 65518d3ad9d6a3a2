/** A labelled form field with its hint and its error from the API (said to screen readers too). */
import type { ReactNode } from "react";

interface Props {
  id: string;
  label: string;
  hint?: string;
  error?: string;
  children: ReactNode;
}

/** The props that tie an input to its hint and error: give them to the field's input. */
export function describedBy(id: string, error?: string, hint?: string) {
  const ids = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return { id, "aria-invalid": error ? true : undefined, "aria-describedby": ids || undefined };
}

export function FormField({ id, label, hint, error, children }: Props) {
  return (
    <div className={`form-field${error ? " has-error" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && <p id={`${id}-hint`} className="field-desc">{hint}</p>}
      {error && <p id={`${id}-error`} className="field-error">{error}</p>}
    </div>
  );
}
