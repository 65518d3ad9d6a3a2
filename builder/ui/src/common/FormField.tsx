/** A labelled form field with its hint and its error from the API (said to screen readers too). */
import { type ReactNode, type RefObject, useEffect, useRef } from "react";
import type { FormErrors } from "./fieldErrors";

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


/**
 * After a refused submit, the focus goes to the form's first field marked invalid (its error is read
 * with it). Give the returned ref to the form; `errors` is a new object after each answer.
 */
export function useFocusOnErrors(errors: FormErrors): RefObject<HTMLFormElement | null> {
  const ref = useRef<HTMLFormElement>(null);
  useEffect(() => {
    if (Object.keys(errors.fields).length > 0) ref.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [errors]);
  return ref;
}
